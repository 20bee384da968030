//! The password step, the code step, replays and lock-outs.

use crate::harness::{ctx, Engine, PASSWORD};
use chrono::Duration;
use tweestap_domain::factor::FactorKind;
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;

#[tokio::test]
async fn password_then_app_code_signs_in_under_a_new_session() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;

    // Without a factor the password alone signs in.
    assert!(matches!(
        e.login("AN@Example.be", PASSWORD).await,
        LoginOutcome::Authenticated(_)
    ));

    let (app, codes) = e.enroll(&an).await;
    assert_eq!(codes.len(), 10, "the first factor brings recovery codes");
    let LoginOutcome::SecondFactor {
        token: half,
        methods,
        recovery_codes_left,
    } = e.login("an@example.be", PASSWORD).await
    else {
        panic!("a factor asks for its code");
    };
    assert_eq!(methods, vec![FactorKind::Totp]);
    assert_eq!(recovery_codes_left, 10, "read with the account");
    let info = e.app.session(&half).await.unwrap().expect("half a session");
    assert_eq!(info.session.stage, SessionStage::SecondFactor);

    e.next_step();
    let full = e
        .app
        .verify_second_factor(&half, &e.code(&app.secret_base32), &ctx())
        .await
        .expect("the right code");
    assert!(
        e.app.session(&half).await.unwrap().is_none(),
        "the half-finished session is gone, so a fixated id is worthless"
    );
    let info = e.app.session(&full).await.unwrap().expect("a session");
    assert_eq!(info.session.stage, SessionStage::Authenticated);
    assert_eq!(info.session.amr, "pwd otp");
    assert_eq!(info.account.id, an.id);

    let events = e.events("an@example.be").await;
    for want in ["login_succeeded", "factor_added", "code_succeeded"] {
        assert!(events.iter().any(|x| x == want), "{want} in {events:?}");
    }
}

/// A set-up begun and never confirmed is no second factor: the password step
/// neither asks for its code nor lists it, and it asks for the app once confirmed.
#[tokio::test]
async fn an_unconfirmed_app_is_no_second_factor() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let begun = e
        .app
        .begin_totp(&an, PASSWORD, &ctx())
        .await
        .expect("set-up begins");
    assert!(matches!(
        e.login("an@example.be", PASSWORD).await,
        LoginOutcome::Authenticated(_)
    ));
    e.app
        .confirm_totp(&an, begun.factor_id, &e.code(&begun.secret_base32), &ctx())
        .await
        .expect("set-up confirmed");
    let LoginOutcome::SecondFactor {
        methods,
        recovery_codes_left,
        ..
    } = e.login("an@example.be", PASSWORD).await
    else {
        panic!("a confirmed app asks for its code");
    };
    assert_eq!(methods, vec![FactorKind::Totp]);
    assert_eq!(recovery_codes_left, 10);
}

#[tokio::test]
async fn wrong_and_unknown_credentials_answer_alike() {
    let e = Engine::start().await;
    e.add_user("an@example.be").await;
    for (email, password) in [
        ("an@example.be", "not the password"),
        ("nobody@example.be", "not the password"),
        ("not-an-address", PASSWORD),
    ] {
        let r = e.app.login(email, password, &ctx()).await;
        assert!(
            matches!(r, Err(Error::InvalidCredentials)),
            "{email}: {r:?}"
        );
    }
}

#[tokio::test]
async fn a_code_step_is_accepted_once() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (app, _) = e.enroll(&an).await;

    // The code that confirmed the set-up cannot sign in.
    let half = e.password_step("an@example.be").await;
    let r = e
        .app
        .verify_second_factor(&half, &e.code(&app.secret_base32), &ctx())
        .await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");

    // A fresh code signs in once; the same code from a new sign-in is a replay.
    e.next_step();
    let code = e.code(&app.secret_base32);
    e.app
        .verify_second_factor(&half, &code, &ctx())
        .await
        .expect("a fresh code");
    let again = e.password_step("an@example.be").await;
    let r = e.app.verify_second_factor(&again, &code, &ctx()).await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
    let events = e.events("an@example.be").await;
    assert_eq!(
        events.iter().filter(|x| *x == "code_replayed").count(),
        2,
        "{events:?}"
    );

    // Typed as apps show it, with a space, the next step's code works.
    e.next_step();
    let code = e.code(&app.secret_base32);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    e.app
        .verify_second_factor(&again, &spaced, &ctx())
        .await
        .expect("spaces are ignored");
}

#[tokio::test]
async fn five_wrong_codes_lock_the_code_step_until_the_lock_ends() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (app, _) = e.enroll(&an).await;
    let half = e.password_step("an@example.be").await;
    for i in 0..5 {
        let r = e.app.verify_second_factor(&half, "000000", &ctx()).await;
        assert!(matches!(r, Err(Error::InvalidCode)), "attempt {i}: {r:?}");
    }
    e.next_step();
    let r = e
        .app
        .verify_second_factor(&half, &e.code(&app.secret_base32), &ctx())
        .await;
    let Err(Error::TooManyAttempts { retry_after }) = r else {
        panic!("even the right code is refused while locked: {r:?}");
    };
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(e.reload(&an).await.code_locked_until.is_some());

    // Once the lock has ended, the right code signs in and clears the count.
    e.advance(Duration::seconds(61));
    e.app
        .verify_second_factor(&half, &e.code(&app.secret_base32), &ctx())
        .await
        .expect("the lock has ended");
    assert_eq!(e.reload(&an).await.code_failures, 0);
    assert!(e
        .events("an@example.be")
        .await
        .contains(&"code_locked_out".to_owned()));
}

#[tokio::test]
async fn the_code_step_says_how_many_tries_are_left_and_a_recovery_code_works_while_locked() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (_, codes) = e.enroll(&an).await;
    let half = e.password_step("an@example.be").await;
    let standing = e.app.code_step_standing(&half).await.expect("standing");
    assert_eq!((standing.tries_left, standing.locked_until), (5, None));
    for left in [4, 3, 2, 1] {
        let r = e.app.verify_second_factor(&half, "000000", &ctx()).await;
        assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
        let standing = e.app.code_step_standing(&half).await.expect("standing");
        assert_eq!((standing.tries_left, standing.locked_until), (left, None));
    }
    let r = e.app.verify_second_factor(&half, "000000", &ctx()).await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
    let standing = e.app.code_step_standing(&half).await.expect("standing");
    assert_eq!(standing.tries_left, 0);
    let until = standing.locked_until.expect("locked");
    assert_eq!(
        until,
        e.reload(&an).await.code_locked_until.expect("stored")
    );

    // The way forward while locked: a recovery code (it cannot be guessed).
    e.app
        .verify_recovery_code(&half, &codes[0], &ctx())
        .await
        .expect("a recovery code works while the code step is locked");
    assert_eq!(e.reload(&an).await.code_failures, 0);
}

#[tokio::test]
async fn ten_wrong_passwords_throttle_even_the_right_one_for_a_while() {
    let e = Engine::start().await;
    e.add_user("an@example.be").await;
    for _ in 0..10 {
        let r = e
            .app
            .login("an@example.be", "not the password", &ctx())
            .await;
        assert!(matches!(r, Err(Error::InvalidCredentials)), "{r:?}");
    }
    let r = e.app.login("an@example.be", PASSWORD, &ctx()).await;
    assert!(
        matches!(r, Err(Error::InvalidCredentials)),
        "throttled, with the same answer as a wrong password: {r:?}"
    );
    assert!(e
        .events("an@example.be")
        .await
        .contains(&"login_throttled".to_owned()));
    e.advance(Duration::seconds(31));
    assert!(matches!(
        e.login("an@example.be", PASSWORD).await,
        LoginOutcome::Authenticated(_)
    ));
}

#[tokio::test]
async fn a_sign_in_waiting_for_its_code_expires() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (app, _) = e.enroll(&an).await;
    let half = e.password_step("an@example.be").await;
    e.advance(Duration::minutes(11));
    let r = e
        .app
        .verify_second_factor(&half, &e.code(&app.secret_base32), &ctx())
        .await;
    assert!(matches!(r, Err(Error::Unauthenticated)), "{r:?}");
}
