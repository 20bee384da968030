//! Passkeys in a real Chromium with its virtual authenticator (the WebAuthn domain
//! of DevTools, which chromedriver's virtual-authenticator commands also use):
//! registering one on My Profile, using it as the second factor on the code page,
//! and signing in without a password from the sign-in page. With JavaScript off the
//! passkey buttons are not there and the pages are as before.

use super::driver::{cdp, click, fill, scripts, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::{Backend, PASSWORD};
use fantoccini::{Client, Locator};
use serde_json::json;
use tweestap_domain::account::Role;

crate::on_both_backends!(
    a_passkey_registered_then_used_with_and_without_a_password,
    a_passkey_chosen_in_the_set_up_journey,
    a_security_key_without_a_pin_registered_then_used_after_the_password,
);

/// Waits until the passkey form `css` is waiting on the browser for a request of
/// this mediation (`conditional`: the autofill; `optional`: the button), as the
/// page's script marks it once the request is made.
async fn wait_request(c: &Client, css: &str, mediation: &str) {
    let mut last = None;
    for _ in 0..200 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.attr("data-passkey-request").await.ok().flatten();
            if last.as_deref() == Some(mediation) {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {mediation} passkey request on {css} (last: {last:?})");
}

/// Whether the element is shown (not `hidden`).
async fn shown(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

async fn a_passkey_registered_then_used_with_and_without_a_password(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    // An IP address cannot be a relying party: the browser uses localhost.
    let base = j.url.replace("127.0.0.1", "localhost");
    let goto = |p: &str| format!("{base}{p}");
    j.add("an@example.be", "An Peeters", Role::User).await;

    // Without JavaScript the sign-in page has no passkey button.
    c.goto(&goto("/login")).await.expect("login");
    assert!(
        !shown(c, "#passkey-button").await,
        "no passkey button without JavaScript"
    );

    scripts(c, true).await;
    cdp(c, "WebAuthn.enable", json!({})).await;
    let added = cdp(
        c,
        "WebAuthn.addVirtualAuthenticator",
        json!({"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true,
            "automaticPresenceSimulation": false,
        }}),
    )
    .await;
    let id = added["authenticatorId"]
        .as_str()
        .expect("authenticator id")
        .to_owned();
    // The person touches the authenticator (or not yet): while they do not, a
    // pending request (the sign-in page's autofill) just waits.
    let touch = |on: bool| {
        let id = id.clone();
        async move {
            cdp(
                c,
                "WebAuthn.setAutomaticPresenceSimulation",
                json!({"authenticatorId": id, "enabled": on}),
            )
            .await;
        }
    };
    let sign_out = || async {
        click(c, "header form button").await;
    };

    // Sign in with the password (no second factor yet) and add a passkey.
    c.goto(&goto("/login")).await.expect("login");
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "home").await;
    c.goto(&goto("/account")).await.expect("account");
    wait_path(c, |p| p == "/account", "My Profile").await;
    assert!(
        shown(c, "#passkey-add").await,
        "the passkey form shows with JavaScript"
    );
    touch(true).await;
    fill(c, "#passkey-name", "laptop").await;
    fill(c, "#passkey-password", PASSWORD).await;
    click(c, "#passkey-add button[type=submit]").await;
    // The first factor: its recovery codes are shown once, then My Profile.
    wait_text(c, "Bewaar je herstelcodes").await;
    let codes = c
        .find_all(Locator::Css("#passkey-codes li"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10);
    click(c, "#passkey-codes a").await;
    wait_path(c, |p| p == "/account", "My Profile").await;
    wait_text(c, "Passkey “laptop”").await;

    // Signing in again: the password, then "Gebruik je passkey".
    touch(false).await;
    sign_out().await;
    wait_path(c, |p| p == "/login", "signed out").await;
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/login/code", "the code step").await;
    assert!(
        shown(c, "#passkey-button").await,
        "the code page offers the passkey"
    );
    touch(true).await;
    click(c, "#passkey-button").await;
    wait_path(c, |p| p == "/", "home after the passkey").await;
    wait_text(c, "An Peeters").await;

    // Without a password: the button on the sign-in page.
    touch(false).await;
    sign_out().await;
    wait_path(c, |p| p == "/login", "signed out").await;
    assert!(shown(c, "#passkey-button").await);
    // The autofill's request was made while nobody touched the key, so it waits
    // for good (the virtual authenticator never resolves a presence test asked
    // while presence is off). The button ends it before asking (the page's script
    // marks a request only once the one before has ended), and its own prompt,
    // made with presence on, is the one answered.
    wait_request(c, "#passkey-form", "conditional").await;
    touch(true).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        super::driver::path(c).await,
        "/login",
        "the autofill's request did not answer"
    );
    click(c, "#passkey-button").await;
    wait_path(c, |p| p == "/", "home without a password").await;
    wait_text(c, "An Peeters").await;

    // And the browser's autofill (conditional mediation): once the person picks the
    // passkey offered in the e-mail field, they are signed in.
    sign_out().await;
    wait_path(c, |p| p == "/", "signed in again through the autofill").await;
    wait_text(c, "An Peeters").await;
    let audit = j.server.app.audit_log(50, None).await.expect("audit");
    let passkey_sign_ins = audit
        .iter()
        .filter(|r| r.detail.as_deref().is_some_and(|d| d.contains("passkey")))
        .count();
    assert!(
        passkey_sign_ins >= 3,
        "three sign-ins with the passkey: {audit:?}"
    );

    // Every other way still works with scripts off: no passkey button.
    touch(false).await;
    scripts(c, false).await;
    sign_out().await;
    wait_path(c, |p| p == "/login", "signed out").await;
    assert!(!shown(c, "#passkey-button").await);
    j.finish().await;
}

/// Two-step verification required: after the password the method page offers the
/// passkey next to the app (with JavaScript), and choosing it sets one up without
/// asking the password again; then the person is signed in.
async fn a_passkey_chosen_in_the_set_up_journey(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    let base = j.url.replace("127.0.0.1", "localhost");
    j.add("beheer@example.be", "Beheer", Role::Admin).await;
    j.add("bo@example.be", "Bo Janssens", Role::User).await;
    let admin = j
        .server
        .app
        .account_by_email("beheer@example.be")
        .await
        .expect("admin");
    j.server
        .app
        .update_policy(
            &admin,
            &json!({"roles": {"user": {"two_factor": "required"}}}),
            &Default::default(),
        )
        .await
        .expect("policy");
    scripts(c, true).await;
    cdp(c, "WebAuthn.enable", json!({})).await;
    cdp(
        c,
        "WebAuthn.addVirtualAuthenticator",
        json!({"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true,
            "automaticPresenceSimulation": true,
        }}),
    )
    .await;
    c.goto(&format!("{base}/login")).await.expect("login");
    fill(c, "#email", "bo@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/account/2fa/enable", "the method page").await;
    // The script shows the choice once it ran (it is deferred).
    let mut offered = false;
    for _ in 0..100 {
        if shown(c, "#method-passkey").await {
            if let Ok(e) = c.find(Locator::Css("#method-passkey")).await {
                if e.click().await.is_ok() && e.is_selected().await.unwrap_or(false) {
                    offered = true;
                    break;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        offered,
        "the passkey is offered with the app, and can be chosen"
    );
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/account/2fa/passkey", "the passkey page").await;
    assert!(
        c.find(Locator::Css("#passkey-password")).await.is_err(),
        "the password was just proven: not asked again"
    );
    fill(c, "#passkey-name", "werkpc").await;
    click(c, "#passkey-add button[type=submit]").await;
    // (The step bar names the recovery codes too: wait for the list itself.)
    let mut codes = false;
    for _ in 0..200 {
        if shown(c, "#passkey-codes").await {
            codes = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(codes, "the recovery codes are shown");
    let listed = c
        .find_all(Locator::Css("#passkey-codes li"))
        .await
        .expect("codes");
    assert_eq!(listed.len(), 10);
    click(c, "#passkey-codes a").await;
    wait_path(c, |p| p == "/", "signed in").await;
    wait_text(c, "Bo Janssens").await;
    let kinds = j
        .server
        .app
        .active_methods(admin.id)
        .await
        .expect("methods");
    assert!(kinds.is_empty(), "the admin set nothing up");
    j.finish().await;
}

/// A USB security key without a PIN (Chromium's virtual authenticator without user
/// verification or resident keys): chosen as "security key" on My Profile, then
/// used after the password on the code page.
async fn a_security_key_without_a_pin_registered_then_used_after_the_password(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    let base = j.url.replace("127.0.0.1", "localhost");
    let goto = |p: &str| format!("{base}{p}");
    j.add("cas@example.be", "Cas Wouters", Role::User).await;
    scripts(c, true).await;
    cdp(c, "WebAuthn.enable", json!({})).await;
    cdp(
        c,
        "WebAuthn.addVirtualAuthenticator",
        json!({"options": {
            "protocol": "ctap2", "transport": "usb", "hasResidentKey": false,
            "hasUserVerification": false, "automaticPresenceSimulation": true,
        }}),
    )
    .await;
    c.goto(&goto("/login")).await.expect("login");
    fill(c, "#email", "cas@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "home").await;
    c.goto(&goto("/account")).await.expect("account");
    wait_path(c, |p| p == "/account", "My Profile").await;
    assert!(shown(c, "#passkey-add").await);
    click(c, "#passkey-kind-security-key").await;
    fill(c, "#passkey-name", "YubiKey").await;
    fill(c, "#passkey-password", PASSWORD).await;
    click(c, "#passkey-add button[type=submit]").await;
    wait_text(c, "Bewaar je herstelcodes").await;
    click(c, "#passkey-codes a").await;
    wait_path(c, |p| p == "/account", "My Profile").await;
    wait_text(c, "Beveiligingssleutel “YubiKey”").await;

    click(c, "header form button").await;
    wait_path(c, |p| p == "/login", "signed out").await;
    fill(c, "#email", "cas@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/login/code", "the code step").await;
    click(c, "#passkey-button").await;
    wait_path(c, |p| p == "/", "home after the key").await;
    wait_text(c, "Cas Wouters").await;
    let audit = j.server.app.audit_log(50, None).await.expect("audit");
    assert!(
        audit.iter().any(|r| r.event.as_str() == "code_succeeded"
            && r.detail
                .as_deref()
                .is_some_and(|d| d.contains("kind=passkey key=security_key"))),
        "{audit:?}"
    );
    j.finish().await;
}
