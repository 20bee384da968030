//! "Secure your account now": the address proven with a mailed code, then an app set
//! up in a session that may do nothing else, then a full session.

use crate::harness::{ctx, Engine, PASSWORD};
use chrono::Duration;
use tweestap_domain::service::SecureStart;
use tweestap_domain::session::SessionStage;
use tweestap_domain::token::Token;
use tweestap_domain::Error;

async fn start(e: &Engine) -> Token {
    match e
        .app
        .secure_account_start("an@example.be", PASSWORD, &ctx())
        .await
        .expect("started")
    {
        SecureStart::CodeSent(token) => token,
        other => panic!("expected a mailed code, got {other:?}"),
    }
}

#[tokio::test]
async fn a_mailed_code_leads_to_set_up_and_then_a_full_session() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let wrong = e
        .app
        .secure_account_start("an@example.be", "not the password", &ctx())
        .await;
    assert!(matches!(wrong, Err(Error::InvalidCredentials)), "{wrong:?}");

    let half = start(&e).await;
    let info = e.app.session(&half).await.unwrap().expect("a session");
    assert_eq!(info.session.stage, SessionStage::EmailCode);
    let code = e.last_secret("email_code").await;
    assert_eq!(code.len(), 6, "{code}");
    // Not a way around the code step: the session cannot set up an app yet.
    let early = e.app.begin_totp_in_enrollment(&info).await;
    assert!(matches!(early, Err(Error::Unauthenticated)), "{early:?}");

    let other = if code == "000000" { "111111" } else { "000000" };
    let r = e.app.verify_email_code(&half, other, &ctx()).await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
    let enrolling = e
        .app
        .verify_email_code(&half, &code, &ctx())
        .await
        .expect("the mailed code");
    assert!(e.app.session(&half).await.unwrap().is_none(), "a new id");
    let info = e.app.session(&enrolling).await.unwrap().expect("a session");
    assert_eq!(info.session.stage, SessionStage::Enrollment);

    // An enrolment-only session is not finished before a factor is confirmed.
    assert!(e
        .app
        .finish_enrollment(&enrolling, &ctx())
        .await
        .unwrap()
        .is_none());
    let (_, codes, full) = e.enroll_in_session(&an, &enrolling).await;
    assert_eq!(codes.len(), 10);
    let info = e.app.session(&full).await.unwrap().expect("a session");
    assert_eq!(info.session.stage, SessionStage::Authenticated);
    assert!(e.app.session(&enrolling).await.unwrap().is_none());
    let events = e.events("an@example.be").await;
    for want in ["email_code_sent", "email_code_failed", "email_verified"] {
        assert!(events.iter().any(|x| x == want), "{want} in {events:?}");
    }

    // With an app, "secure your account" is an ordinary sign-in.
    let again = e
        .app
        .secure_account_start("an@example.be", PASSWORD, &ctx())
        .await
        .expect("started");
    assert!(
        matches!(
            again,
            SecureStart::SecondFactor {
                recovery_codes_left: 10,
                ..
            }
        ),
        "{again:?}"
    );
    let started: Vec<Option<String>> = e
        .app
        .audit_log(100, Some("an@example.be"))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == "login_succeeded")
        .map(|r| r.detail)
        .collect();
    // Newest first, each once.
    let want =
        ["second_factor", "email_code"].map(|s| Some(format!("stage={s} via=secure_account")));
    assert_eq!(started, want);
}

#[tokio::test]
async fn a_mailed_code_has_five_tries_ten_minutes_and_three_sends() {
    let e = Engine::start().await;
    e.add_user("an@example.be").await;

    let half = start(&e).await;
    let code = e.last_secret("email_code").await;
    let other = if code == "000000" { "111111" } else { "000000" };
    for i in 1..5 {
        let r = e.app.verify_email_code(&half, other, &ctx()).await;
        assert!(matches!(r, Err(Error::InvalidCode)), "try {i}: {r:?}");
    }
    let r = e.app.verify_email_code(&half, other, &ctx()).await;
    assert!(matches!(r, Err(Error::CodeExpired)), "the fifth: {r:?}");
    let r = e.app.verify_email_code(&half, &code, &ctx()).await;
    assert!(
        matches!(r, Err(Error::CodeExpired)),
        "then even the right one: {r:?}"
    );

    // "Send again" gives a new code with its own tries and ten minutes.
    e.app
        .resend_email_code(&half, &ctx())
        .await
        .expect("sent again");
    let second = e.last_secret("email_code").await;
    e.advance(Duration::minutes(10));
    let r = e.app.verify_email_code(&half, &second, &ctx()).await;
    assert!(
        matches!(r, Err(Error::CodeExpired)),
        "ten minutes on: {r:?}"
    );

    // The third mail is the last one for this attempt.
    e.app
        .resend_email_code(&half, &ctx())
        .await
        .expect("sent a third time");
    let r = e.app.resend_email_code(&half, &ctx()).await;
    assert!(matches!(r, Err(Error::TooManyRequests)), "{r:?}");
    assert_eq!(e.mails("email_code").await.len(), 3);
    let third = e.last_secret("email_code").await;
    e.advance(Duration::minutes(9));
    e.app
        .verify_email_code(&half, &third, &ctx())
        .await
        .expect("within its ten minutes");
}
