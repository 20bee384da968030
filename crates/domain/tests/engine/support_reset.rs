//! Support resets a lost phone: every factor, session and remembered browser of the
//! account is void at once, and a new QR link goes out by mail.

use crate::harness::{ctx, token_of, Engine, PASSWORD};
use tweestap_domain::account::Role;
use tweestap_domain::mail::Notice;
use tweestap_domain::service::{Actor, LoginOutcome};
use tweestap_domain::Error;

const BASE: &str = "https://login.example.be";

#[tokio::test]
async fn a_support_reset_voids_the_old_factor_and_mails_a_new_qr_link() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let sam = e.add("sam@example.be", Role::Support).await;
    let (old_app, _) = e.enroll(&an).await;
    let session = e.sign_in("an@example.be", &old_app.secret_base32).await;
    e.app
        .remember_device(&session, &ctx())
        .await
        .expect("remembered");

    let r = e
        .app
        .reset_two_factor(Actor::Staff(&sam), an.id, "  ", BASE, &ctx())
        .await;
    assert!(matches!(r, Err(Error::ReasonRequired)), "{r:?}");
    e.app
        .reset_two_factor(Actor::Staff(&sam), an.id, "phone lost", BASE, &ctx())
        .await
        .expect("reset");

    assert!(e.app.active_factors(an.id).await.unwrap().is_empty());
    assert!(e.app.session(&session).await.unwrap().is_none());
    assert!(e.app.devices(an.id).await.unwrap().is_empty());
    assert_eq!(e.app.recovery_codes_left(an.id).await.unwrap(), 0);
    let mails = e.mails("two_factor_reset").await;
    assert_eq!(mails.len(), 1, "the way back in is queued with the reset");
    assert_eq!(mails[0].to, "an@example.be");
    assert!(matches!(
        mails[0].notice,
        Notice::TwoFactorReset { valid_days: 5, .. }
    ));
    let link = mails[0].secret.clone().expect("a link");
    assert!(link.starts_with(&format!("{BASE}/enroll/")), "{link}");
    let events = e.events("an@example.be").await;
    assert!(
        events.contains(&"two_factor_reset".to_owned()),
        "{events:?}"
    );

    // The link, with the password, sets up a new app; the old one is worthless.
    let opened = e
        .app
        .open_enrollment_link(&token_of(&link), Some(PASSWORD), None, &ctx())
        .await
        .expect("the link opens");
    assert!(opened.session.is_some(), "an enrolment-only session");
    let new_app = opened.enrollment;
    e.app
        .confirm_totp(
            &an,
            new_app.factor_id,
            &e.code(&new_app.secret_base32),
            &ctx(),
        )
        .await
        .expect("confirmed");
    let used = e
        .app
        .open_enrollment_link(&token_of(&link), Some(PASSWORD), None, &ctx())
        .await;
    assert!(matches!(used, Err(Error::LinkUsed)), "{used:?}");
    let half = e.password_step("an@example.be").await;
    e.next_step();
    let r = e
        .app
        .verify_second_factor(&half, &e.code(&old_app.secret_base32), &ctx())
        .await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
    e.app
        .verify_second_factor(&half, &e.code(&new_app.secret_base32), &ctx())
        .await
        .expect("the new app signs in");
}

#[tokio::test]
async fn only_staff_may_reset_and_support_not_an_admin() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let bo = e.add_user("bo@example.be").await;
    let sam = e.add("sam@example.be", Role::Support).await;
    let boss = e.add("baas@example.be", Role::Admin).await;
    e.enroll(&bo).await;
    e.enroll(&boss).await;

    for (actor, target) in [(&an, &bo), (&sam, &boss)] {
        let r = e
            .app
            .reset_two_factor(Actor::Staff(actor), target.id, "phone lost", BASE, &ctx())
            .await;
        assert!(matches!(r, Err(Error::Forbidden)), "{r:?}");
        assert_eq!(e.app.active_factors(target.id).await.unwrap().len(), 1);
    }
    assert!(e
        .events("sam@example.be")
        .await
        .contains(&"support_denied".to_owned()));
    assert!(e.mails("two_factor_reset").await.is_empty());

    // An admin may; so may the operator at the command line.
    e.app
        .reset_two_factor(Actor::Staff(&boss), bo.id, "phone lost", BASE, &ctx())
        .await
        .expect("an admin resets a user");
    e.app
        .reset_two_factor(Actor::Console, boss.id, "phone lost", BASE, &ctx())
        .await
        .expect("the console resets an admin");
    assert!(matches!(
        e.login("bo@example.be", PASSWORD).await,
        LoginOutcome::Authenticated(_)
    ));
    assert_eq!(e.mails("two_factor_reset").await.len(), 2);
}
