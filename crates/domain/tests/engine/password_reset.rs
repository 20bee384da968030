//! "Forgot your password?": one answer for every address, a link that works once
//! and for an hour, sessions ended, the second factor kept.

use crate::harness::{ctx, token_of, Engine, PASSWORD};
use chrono::Duration;
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::Error;

const BASE: &str = "https://login.example.be";
const NEW: &str = "a brand new sentence to remember";

#[tokio::test]
async fn a_reset_link_works_once_and_ends_every_session() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (app, _) = e.enroll(&an).await;
    let old_session = e.sign_in("an@example.be", &app.secret_base32).await;

    for email in ["an@example.be", "nobody@example.be", "not an address"] {
        e.app
            .request_password_reset(email, BASE, &ctx())
            .await
            .expect("the same answer for every address");
    }
    let mails = e.mails("password_reset").await;
    assert_eq!(mails.len(), 1, "only the known address gets mail");
    assert_eq!(mails[0].to, "an@example.be");
    let link = mails[0].secret.clone().expect("a link");
    assert!(
        link.starts_with(&format!("{BASE}/password/reset/")),
        "{link}"
    );
    let token = token_of(&link);

    e.app
        .check_reset_link(&token, &ctx())
        .await
        .expect("an open link");
    // A weak password leaves the link usable.
    let weak = e.app.complete_password_reset(&token, "short", &ctx()).await;
    assert!(matches!(weak, Err(Error::WeakPassword(_))), "{weak:?}");
    e.app
        .complete_password_reset(&token, NEW, &ctx())
        .await
        .expect("the link works");
    let again = e.app.complete_password_reset(&token, NEW, &ctx()).await;
    assert!(matches!(again, Err(Error::InvalidResetLink)), "{again:?}");
    let check = e.app.check_reset_link(&token, &ctx()).await;
    assert!(matches!(check, Err(Error::InvalidResetLink)), "{check:?}");

    assert!(e.app.session(&old_session).await.unwrap().is_none());
    let old = e.app.login("an@example.be", PASSWORD, &ctx()).await;
    assert!(matches!(old, Err(Error::InvalidCredentials)), "{old:?}");
    assert!(
        matches!(
            e.login("an@example.be", NEW).await,
            LoginOutcome::SecondFactor { .. }
        ),
        "the second factor stays"
    );
    assert_eq!(e.mails("password_changed").await.len(), 1);
}

#[tokio::test]
async fn a_reset_link_expires_after_an_hour_and_a_newer_one_ends_it() {
    let e = Engine::start().await;
    e.add_user("an@example.be").await;
    let here = ctx();
    let ask = || e.app.request_password_reset("an@example.be", BASE, &here);
    ask().await.expect("asked");
    let first = token_of(&e.last_secret("password_reset").await);
    ask().await.expect("asked");
    let second = token_of(&e.last_secret("password_reset").await);
    assert_ne!(first, second);
    let r = e.app.complete_password_reset(&first, NEW, &here).await;
    assert!(
        matches!(r, Err(Error::InvalidResetLink)),
        "the newer link ended the older: {r:?}"
    );

    e.advance(Duration::hours(1) + Duration::seconds(1));
    let r = e.app.complete_password_reset(&second, NEW, &here).await;
    assert!(matches!(r, Err(Error::InvalidResetLink)), "{r:?}");
    assert!(matches!(
        e.login("an@example.be", PASSWORD).await,
        LoginOutcome::Authenticated(_)
    ));
    let events = e.events("an@example.be").await;
    assert!(events.contains(&"password_reset_requested".to_owned()));
}

#[tokio::test]
async fn at_most_three_reset_mails_an_hour() {
    let e = Engine::start().await;
    e.add_user("an@example.be").await;
    for _ in 0..5 {
        e.app
            .request_password_reset("an@example.be", BASE, &ctx())
            .await
            .expect("the same answer when limited");
    }
    assert_eq!(e.mails("password_reset").await.len(), 3);
    let events = e.events("an@example.be").await;
    let requested = events
        .iter()
        .filter(|x| *x == "password_reset_requested")
        .count();
    assert_eq!(requested, 5, "refused requests are audited too");

    e.advance(Duration::hours(1) + Duration::seconds(1));
    e.app
        .request_password_reset("an@example.be", BASE, &ctx())
        .await
        .expect("asked");
    assert_eq!(e.mails("password_reset").await.len(), 4);
}
