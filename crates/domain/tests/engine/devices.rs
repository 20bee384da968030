//! Remembered browsers and recovery codes.

use crate::harness::{ctx, Engine, PASSWORD};
use chrono::Duration;
use tweestap_domain::mail::Notice;
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::Error;

fn state(o: &LoginOutcome) -> &'static str {
    match o {
        LoginOutcome::Authenticated(_) => "authenticated",
        LoginOutcome::SecondFactor { .. } => "second_factor",
        LoginOutcome::EnrollmentRequired(_) => "enrollment_required",
    }
}

#[tokio::test]
async fn a_remembered_browser_skips_the_code_for_seven_days_and_not_after() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let bo = e.add_user("bo@example.be").await;
    let (app, _) = e.enroll(&an).await;
    e.enroll(&bo).await;

    // A password-only session cannot be remembered; one that passed the code can.
    let session = e.sign_in("an@example.be", &app.secret_base32).await;
    let device = e
        .app
        .remember_device(&session, &ctx())
        .await
        .expect("remembered");
    assert_eq!(e.app.devices(an.id).await.unwrap().len(), 1);

    let from = |email: &'static str, device: Option<String>| {
        let e = &e;
        async move {
            let r = e
                .app
                .login_from(email, PASSWORD, device.as_deref(), &ctx())
                .await
                .expect("an answer");
            state(&r)
        }
    };
    let cookie = Some(device.as_str().to_owned());
    assert_eq!(from("an@example.be", cookie.clone()).await, "authenticated");
    // Bound to the account: someone else on this browser is asked for the code.
    assert_eq!(from("bo@example.be", cookie.clone()).await, "second_factor");
    // Another browser is asked; the password is still needed on this one.
    assert_eq!(from("an@example.be", None).await, "second_factor");
    let wrong = e
        .app
        .login_from("an@example.be", "wrong", cookie.as_deref(), &ctx())
        .await;
    assert!(matches!(wrong, Err(Error::InvalidCredentials)), "{wrong:?}");

    e.advance(Duration::days(7) - Duration::hours(1));
    assert_eq!(from("an@example.be", cookie.clone()).await, "authenticated");
    e.advance(Duration::hours(1));
    assert_eq!(from("an@example.be", cookie).await, "second_factor");
    assert!(e.app.devices(an.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_password_only_session_cannot_be_remembered() {
    let e = Engine::start().await;
    e.add_user("an@example.be").await;
    let LoginOutcome::Authenticated(session) = e.login("an@example.be", PASSWORD).await else {
        panic!("no factor: signed in");
    };
    let r = e.app.remember_device(&session, &ctx()).await;
    assert!(matches!(r, Err(Error::Unauthenticated)), "{r:?}");
}

#[tokio::test]
async fn each_recovery_code_works_once_and_new_ones_end_the_old() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (_, codes) = e.enroll(&an).await;
    assert_eq!(codes.len(), 10);
    assert_eq!(e.app.recovery_codes_left(an.id).await.unwrap(), 10);

    let with = |code: String| {
        let e = &e;
        async move {
            let half = e.password_step("an@example.be").await;
            e.app.verify_recovery_code(&half, &code, &ctx()).await
        }
    };
    // Typed in capitals with a space instead of the dash: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let session = with(typed).await.expect("a recovery code signs in");
    let info = e.app.session(&session).await.unwrap().expect("a session");
    assert_eq!(info.session.amr, "pwd mfa");
    let again = with(codes[0].clone()).await;
    assert!(matches!(again, Err(Error::InvalidCode)), "{again:?}");
    assert_eq!(e.app.recovery_codes_left(an.id).await.unwrap(), 9);
    let used = e.mails("recovery_code_used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].notice, Notice::RecoveryCodeUsed { remaining: 9 });

    // New codes need the password; then the old ones die.
    let refused = e.app.new_recovery_codes(&an, "wrong", &ctx()).await;
    assert!(matches!(refused, Err(Error::WrongPassword)), "{refused:?}");
    let fresh = e
        .app
        .new_recovery_codes(&an, PASSWORD, &ctx())
        .await
        .expect("new codes");
    assert!(matches!(
        with(codes[1].clone()).await,
        Err(Error::InvalidCode)
    ));
    with(fresh[9].clone()).await.expect("a new code works");
}
