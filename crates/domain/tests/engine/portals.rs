//! What portals hold of a browser sign-in: the sid that survives a step-up of the
//! same person, ends when someone else signs in or the account is disabled, and
//! the logout tokens queued for portals with a back-channel logout URI.

use crate::harness::{ctx, Engine, PASSWORD};
use tweestap_domain::oidc::authorize::{AuthRequest, SignInDemand};
use tweestap_domain::oidc::{ClientOptions, SigningAlg};
use tweestap_domain::service::{Browser, LoginOutcome};
use tweestap_domain::token::Token;
use tweestap_domain::Error;

/// A portal that wants to hear of sign-outs, and a code for `session` issued to it.
async fn code_for_portal(e: &Engine, session: &Token) -> String {
    let new = e
        .app
        .add_client(
            "Loket",
            &["https://loket.example/cb".into()],
            false,
            SigningAlg::Rs256,
            ClientOptions {
                backchannel_logout_uri: Some("https://loket.example/bcl".into()),
                ..ClientOptions::default()
            },
        )
        .await
        .unwrap();
    let client = new.client;
    let params = [("response_type", "code"), ("scope", "openid")];
    let r = AuthRequest::from_params(&client, "https://loket.example/cb", |k| {
        params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    })
    .unwrap();
    let info = e.app.session(session).await.unwrap().unwrap();
    e.app.issue_code(&r, &info, &ctx()).await.unwrap();
    info.session.sid
}

async fn queued_logouts(e: &Engine) -> Vec<(String, String)> {
    e.app
        .claim_logouts(100)
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.sid, q.client_id))
        .collect()
}

#[tokio::test]
async fn a_step_up_keeps_the_sid_and_someone_else_ends_it() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    e.add_user("bo@example.be").await;
    let (app, _) = e.enroll(&an).await;
    let first = e.sign_in("an@example.be", &app.secret_base32).await;
    let sid = code_for_portal(&e, &first).await;

    // The portal asks a fresh sign-in: the same person, password and code again.
    let browser = Browser {
        device: None,
        signed_in: Some(&first),
        demand: SignInDemand {
            skip_remembered_device: true,
            require_second_factor: false,
        },
    };
    let half = match e
        .app
        .sign_in("an@example.be", PASSWORD, browser, &ctx())
        .await
    {
        Ok(LoginOutcome::SecondFactor { token, .. }) => token,
        other => panic!("the code is due: {other:?}"),
    };
    // Half-way, the portal's tokens still stand.
    assert!(e.app.sid_is_live(&sid).await.unwrap());
    e.next_step();
    let second = e
        .app
        .verify_second_factor(&half, &e.code(&app.secret_base32), &ctx())
        .await
        .unwrap();
    let info = e.app.session(&second).await.unwrap().unwrap();
    assert_eq!(info.session.sid, sid, "a step-up keeps the sid");
    assert!(
        e.app.session(&first).await.unwrap().is_none(),
        "the old session went"
    );
    assert!(
        e.app.session(&half).await.unwrap().is_none(),
        "the half-finished one went too"
    );
    assert!(e.app.sid_is_live(&sid).await.unwrap());
    assert!(queued_logouts(&e).await.is_empty());

    // Someone else signs in on this browser: an's sign-in ends, the portal is told.
    let browser = Browser {
        signed_in: Some(&second),
        ..Browser::default()
    };
    let bo = e
        .app
        .sign_in("bo@example.be", PASSWORD, browser, &ctx())
        .await;
    let Ok(LoginOutcome::Authenticated(bo)) = bo else {
        panic!("bo has no second factor");
    };
    let bo_sid = e.app.session(&bo).await.unwrap().unwrap().session.sid;
    assert_ne!(bo_sid, sid);
    assert!(!e.app.sid_is_live(&sid).await.unwrap());
    assert_eq!(queued_logouts(&e).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_password_during_a_step_up_keeps_the_sign_in() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (app, _) = e.enroll(&an).await;
    let first = e.sign_in("an@example.be", &app.secret_base32).await;
    let browser = Browser {
        signed_in: Some(&first),
        ..Browser::default()
    };
    let r = e
        .app
        .sign_in("an@example.be", "not it", browser, &ctx())
        .await;
    assert!(matches!(r, Err(Error::InvalidCredentials)));
    assert!(e.app.session(&first).await.unwrap().is_some());
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_and_its_portals_are_told() {
    let e = Engine::start().await;
    let an = e.add_user("an@example.be").await;
    let (app, _) = e.enroll(&an).await;
    let session = e.sign_in("an@example.be", &app.secret_base32).await;
    let sid = code_for_portal(&e, &session).await;
    e.app
        .set_account_disabled("an@example.be", true)
        .await
        .unwrap();
    assert!(!e.app.sid_is_live(&sid).await.unwrap());
    assert!(e.app.session(&session).await.unwrap().is_none());
    assert_eq!(
        queued_logouts(&e).await,
        vec![(sid, e.app.clients().await.unwrap()[0].id.clone())]
    );
    // The same answer as a wrong password.
    let r = e.app.login("an@example.be", PASSWORD, &ctx()).await;
    assert!(matches!(r, Err(Error::InvalidCredentials)));
    assert!(e
        .events("an@example.be")
        .await
        .contains(&"account_disabled".to_owned()));
    e.app
        .set_account_disabled("an@example.be", false)
        .await
        .unwrap();
    assert!(matches!(
        e.app.login("an@example.be", PASSWORD, &ctx()).await,
        Ok(LoginOutcome::SecondFactor { .. })
    ));
    assert!(matches!(
        e.app.set_account_disabled("nobody@example.be", true).await,
        Err(Error::NotFound)
    ));
}
