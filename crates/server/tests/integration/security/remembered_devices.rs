//! A stolen remembered-device cookie after the person reacts: a browser that skips
//! the code stops skipping it after a new password (through the forgotten-password
//! link, and through an invitation link: tweestap has no other way to change a
//! password), after the removal of a factor, and after a support reset — also a
//! browser remembered on a second node, asked on the first. Other sessions end as
//! documented: every one after a new password and a support reset; removing a
//! factor leaves them (only the devices are forgotten), and the person's own
//! session goes on.

use super::threat_kit::{fresh_client, link_token, mail_after, mail_count, person_with_app, Nodes};
use crate::kit::{Backend, Client, TestApp, PASSWORD};
use serde_json::json;
use tweestap_domain::service::Actor;

crate::on_both_backends!(remembered_devices_die_with_the_password_and_the_factors);

/// What the person does about a stolen device cookie.
#[derive(Debug, Clone, Copy)]
enum Reaction {
    ResetByMail,
    InvitationLink,
    RemovesAFactor,
    SupportReset,
}

/// Password and code on `app`, remembering the browser when asked.
async fn signed_in(app: &TestApp, c: &Client, email: &str, secret: &str, remember: bool) {
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "second_factor"
    );
    app.next_step();
    let code = app.code(secret);
    let body = json!({"method": "totp", "code": code, "remember_device": remember});
    let r = c.post("/api/v1/login/second-factor", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A browser remembered on `app`, signed out.
async fn remembered(app: &TestApp, c: &Client, email: &str, secret: &str) {
    signed_in(app, c, email, secret, true).await;
    assert_eq!(c.post("/api/v1/logout", json!({})).await.status, 200);
}

/// A new password through the link of the `kind` mail, in a browser of its own.
async fn new_password_by_link(app: &TestApp, kind: &str, before: usize, password: &str) {
    let token = link_token(&mail_after(app, kind, before).await, "/password/reset/");
    let body = json!({"token": token, "password": password});
    let r = fresh_client(app).post("/api/v1/password/reset", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Does `reaction` for `email`, whose own signed-in browser is `own`; the password
/// afterwards.
async fn react(app: &TestApp, reaction: Reaction, email: &str, own: &Client) -> String {
    let engine = app.engine();
    let account = engine.account_by_email(email).await.expect("account");
    let ctx = Default::default();
    match reaction {
        Reaction::ResetByMail => {
            let before = mail_count(app, "password-reset");
            let r = own
                .post("/api/v1/password/forgot", json!({ "email": email }))
                .await;
            assert_eq!(r.status, 202);
            let new = "nieuw na het vergeten";
            new_password_by_link(app, "password-reset", before, new).await;
            new.to_owned()
        }
        Reaction::InvitationLink => {
            let before = mail_count(app, "invite");
            engine
                .invite_account(&account, &app.url, &ctx)
                .await
                .expect("invited");
            let new = "nieuw na de uitnodiging";
            new_password_by_link(app, "invite", before, new).await;
            new.to_owned()
        }
        Reaction::RemovesAFactor => {
            // A second app first, so the account keeps a factor.
            let r = own
                .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
                .await;
            let s = r.body["secret"].as_str().expect("secret").to_owned();
            let id = r.body["id"].as_str().expect("id").to_owned();
            let confirm = format!("/api/v1/me/factors/totp/{id}/confirm");
            let r = own.post(&confirm, json!({ "code": app.code(&s) })).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            let r = own
                .delete(
                    &format!("/api/v1/me/factors/{id}"),
                    json!({ "password": PASSWORD }),
                )
                .await;
            assert_eq!(r.status, 204, "{:?}", r.body);
            PASSWORD.to_owned()
        }
        Reaction::SupportReset => {
            engine
                .reset_two_factor(Actor::Console, account.id, "gsm gestolen", &app.url, &ctx)
                .await
                .expect("reset");
            PASSWORD.to_owned()
        }
    }
}

async fn remembered_devices_die_with_the_password_and_the_factors(backend: Backend) {
    let nodes = Nodes::start(backend, |_| {}).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let reactions = [
        Reaction::ResetByMail,
        Reaction::InvitationLink,
        Reaction::RemovesAFactor,
        Reaction::SupportReset,
    ];
    for (i, reaction) in reactions.into_iter().enumerate() {
        let email = format!("persoon{i}@example.be");
        let secret = person_with_app(a, &email).await;
        // The thief's copy of a remembered browser (remembered on node b), another
        // browser of the person signed in, and the person's own signed-in browser.
        let stolen = fresh_client(b);
        remembered(b, &stolen, &email, &secret).await;
        assert_eq!(
            stolen.login(&email, PASSWORD).await.body["state"],
            "authenticated",
            "{reaction:?}: the device skips the code"
        );
        let elsewhere = fresh_client(a);
        remembered(a, &elsewhere, &email, &secret).await;
        assert_eq!(elsewhere.login(&email, PASSWORD).await.status, 200);
        let own = fresh_client(a);
        signed_in(a, &own, &email, &secret, false).await;

        let password = react(a, reaction, &email, &own).await;
        let account = a.engine().account_by_email(&email).await.expect("account");
        let devices = a.engine().devices(account.id).await.expect("devices");
        assert!(
            devices.is_empty(),
            "{reaction:?}: devices kept: {devices:?}"
        );
        if let Reaction::SupportReset = reaction {
            // The person sets up a new app: the old cookies must not skip its code.
            fresh_client(a).enroll(a, &email).await;
            a.next_step();
        }

        // The stolen cookie (and the other remembered one) skip nothing any more,
        // on either node.
        for (who, c, node) in [("stolen", &stolen, a), ("elsewhere", &elsewhere, b)] {
            let c = Client {
                base: node.url.clone(),
                http: c.http.clone(),
            };
            let _ = c.post("/api/v1/logout", json!({})).await;
            let r = c.login(&email, &password).await;
            assert_eq!(
                r.body["state"], "second_factor",
                "{reaction:?}: the {who} device still skips the code: {:?}",
                r.body
            );
        }
        // The sessions: every one ends with a new password and a support reset;
        // removing a factor is done in the person's own, which goes on.
        let own_alive = own.get("/api/v1/me").await.status == 200;
        match reaction {
            Reaction::RemovesAFactor => assert!(own_alive, "{reaction:?}: own session"),
            _ => assert!(!own_alive, "{reaction:?}: a session of before lives"),
        }
    }
}
