//! What the two-step policy asks: required from a date on, and shared mailboxes.

use crate::harness::{ctx, Engine, PASSWORD};
use chrono::{Duration, NaiveDate};
use tweestap_domain::policy::{Requirement, TwoFactorMode, TwoFactorRule};
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;

/// The engine's clock starts on 2026-03-01.
fn march_11() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 11).expect("a date")
}

#[tokio::test]
async fn two_step_verification_is_required_from_the_deadline_on() {
    let e = Engine::start_with(|s| {
        s.two_factor.general = TwoFactorRule {
            mode: TwoFactorMode::Optional,
            required_from: Some(march_11()),
        };
    })
    .await;
    let an = e.add_user("an@example.be").await;
    assert_eq!(
        e.app.requirement(&an),
        Requirement::Optional {
            required_from: Some(march_11()),
            days_left: Some(10),
        }
    );
    assert!(matches!(
        e.login("an@example.be", PASSWORD).await,
        LoginOutcome::Authenticated(_)
    ));

    // Ten days on, the date has come: the password leads to set-up only.
    e.advance(Duration::days(10));
    assert_eq!(e.app.requirement(&an), Requirement::Required);
    let LoginOutcome::EnrollmentRequired(enrolling) = e.login("an@example.be", PASSWORD).await
    else {
        panic!("set-up is required now");
    };
    let info = e.app.session(&enrolling).await.unwrap().expect("a session");
    assert_eq!(info.session.stage, SessionStage::Enrollment);
    assert!(e
        .events("an@example.be")
        .await
        .contains(&"enrollment_required".to_owned()));
    let (setup, _, full) = e.enroll_in_session(&an, &enrolling).await;
    assert_eq!(
        e.app.session(&full).await.unwrap().map(|i| i.session.stage),
        Some(SessionStage::Authenticated)
    );

    // While required, the last factor stays.
    let r = e
        .app
        .remove_factor(&an, setup.factor_id, PASSWORD, &ctx())
        .await;
    assert!(matches!(r, Err(Error::LastFactorRequired)), "{r:?}");
    assert!(matches!(
        e.login("an@example.be", PASSWORD).await,
        LoginOutcome::SecondFactor { .. }
    ));
}

#[tokio::test]
async fn off_never_asks_even_after_the_date() {
    let e = Engine::start_with(|s| {
        s.two_factor.general = TwoFactorRule {
            mode: TwoFactorMode::Off,
            required_from: Some(march_11()),
        };
    })
    .await;
    let an = e.add_user("an@example.be").await;
    e.advance(Duration::days(400));
    assert_eq!(e.app.requirement(&an), Requirement::NotRequired);
    assert!(matches!(
        e.login("an@example.be", PASSWORD).await,
        LoginOutcome::Authenticated(_)
    ));
}

#[tokio::test]
async fn shared_mailboxes_are_refused_when_the_policy_says_so() {
    let e = Engine::start_with(|s| s.refuse_shared_mailboxes = true).await;
    let info = e.add_user("info@example.be").await;
    let an = e.add_user("an@example.be").await;
    let r = e.app.begin_totp(&info, PASSWORD, &ctx()).await;
    assert!(matches!(r, Err(Error::SharedMailbox)), "{r:?}");
    let r = e
        .app
        .request_enrollment_link(&info, PASSWORD, "https://login.example.be", &ctx())
        .await;
    assert!(matches!(r, Err(Error::SharedMailbox)), "{r:?}");
    assert!(e.app.active_factors(info.id).await.unwrap().is_empty());
    let (personal, _) = e.enroll(&an).await;
    assert!(!personal.shared_mailbox);
}

#[tokio::test]
async fn shared_mailboxes_are_only_warned_by_default() {
    let e = Engine::start().await;
    let info = e.add_user("info+portaal@example.be").await;
    let (setup, _) = e.enroll(&info).await;
    assert!(setup.shared_mailbox, "the page warns");
    assert_eq!(e.app.active_factors(info.id).await.unwrap().len(), 1);
}
