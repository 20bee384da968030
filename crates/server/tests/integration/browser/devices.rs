//! After the set-up: a support reset and a new app, a remembered device, a recovery
//! code.

use super::driver::{body_text, click, fill, path, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::{enroll_path_in, Backend, PASSWORD};
use chrono::Duration;
use fantoccini::Locator;
use tweestap_domain::account::Role;

crate::on_both_backends!(
    support_reset_then_a_new_app,
    remember_this_device,
    sign_in_with_a_recovery_code,
);

/// A user with an app is signed in (API client); a support person resets the
/// two-step verification from the support pages; the user's session is gone, and the
/// mailed link sets up a new app in the browser.
async fn support_reset_then_a_new_app(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("carla@example.be", "Carla Janssens", Role::User)
        .await;
    j.add("sofie@example.be", "Sofie Support", Role::Support)
        .await;

    // The user sets up an app through the JSON API and stays signed in there.
    let user = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let api = |p: &str| format!("{}/api/v1{p}", j.url);
    let post = |p: &str, body: serde_json::Value| user.post(api(p)).json(&body).send();
    let r = post(
        "/login",
        serde_json::json!({ "email": "carla@example.be", "password": PASSWORD }),
    )
    .await
    .expect("login");
    assert_eq!(r.status(), 200);
    let begun: serde_json::Value = post(
        "/me/factors/totp",
        serde_json::json!({ "password": PASSWORD }),
    )
    .await
    .expect("begin")
    .json()
    .await
    .expect("json");
    let old_key = begun["secret"].as_str().expect("secret").to_owned();
    let id = begun["id"].as_str().expect("id");
    let r = post(
        &format!("/me/factors/totp/{id}/confirm"),
        serde_json::json!({ "code": j.code(&old_key) }),
    )
    .await
    .expect("confirm");
    assert_eq!(r.status(), 200);
    let me = user.get(api("/me")).send().await.expect("me");
    assert_eq!(me.status(), 200, "signed in with an app");

    // Support, without a factor: signs in with the password alone.
    j.sign_in("sofie@example.be").await;
    wait_path(c, |p| p == "/", "/").await;
    click(c, "header nav.user a[href='/support']").await;
    wait_path(c, |p| p == "/support", "/support").await;
    fill(c, "#q", "janss").await;
    click(c, "form[role=search] button[type=submit]").await;
    wait_text(c, "1 account gevonden.").await;
    c.find(Locator::LinkText("carla@example.be"))
        .await
        .expect("the account in the results")
        .click()
        .await
        .expect("click");
    wait_path(c, |p| p.starts_with("/support/accounts/"), "the account").await;
    wait_text(c, "Carla Janssens").await;
    fill(
        c,
        "#reason",
        "Nieuwe telefoon, oude kwijt; gebeld en identiteit gecontroleerd.",
    )
    .await;
    click(c, "form[action$='/reset-2fa'] button[type=submit]").await;
    // A second step says what stops working; only its red button resets.
    wait_text(c, "Dit werkt dan meteen niet meer").await;
    assert!(body_text(c).await.contains("Authenticator-app"));
    click(c, "#confirm-reset").await;
    wait_text(c, "Tweestapsverificatie is opnieuw ingesteld").await;
    let notice = c
        .find(Locator::Css("#support-notice"))
        .await
        .expect("the confirmation")
        .text()
        .await
        .expect("text");
    assert!(notice.contains("overal afgemeld"), "{notice}");
    let url = c.current_url().await.expect("url");
    assert_eq!(url.query(), Some("done=reset"));

    // The user's session is gone; the mail holds a link to a new QR page.
    let me = user.get(api("/me")).send().await.expect("me");
    assert_eq!(me.status(), 401, "signed out everywhere");
    let link = enroll_path_in(&j.nth_mail("two-factor-reset", 1).await);

    // The user, in the browser: password, new QR code, code → signed in.
    j.sign_out().await;
    j.clock.advance(Duration::seconds(30));
    j.goto(&link).await;
    wait_text(c, "carla@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    let new_key = j.confirm_qr_page().await;
    assert_ne!(new_key, old_key, "a new key");
    wait_text(c, "Carla Janssens").await;
    let factors = c
        .find_all(Locator::Css("#twofa ul.factors li"))
        .await
        .expect("factors");
    assert_eq!(factors.len(), 1, "only the new app");
    j.finish().await;
}

/// "Dit toestel 7 dagen onthouden" at the code step: the next sign-in in this browser
/// skips the code; My Profile lists the device and can forget it; after 7 days the
/// code is asked again.
async fn remember_this_device(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    let email = "dirk@example.be";
    j.add(email, "Dirk Wouters", Role::User).await;
    let (key, _) = j.set_up_app(email).await;
    let devices = c
        .find(Locator::Css("#devices"))
        .await
        .expect("the devices section")
        .text()
        .await
        .expect("text");
    assert!(
        devices.contains("Onthouden toestellen") && devices.contains("Geen toestellen onthouden."),
        "{devices}"
    );

    // The code step offers to remember this browser, and the recovery codes.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    let label = c
        .find(Locator::Css("label[for=remember]"))
        .await
        .expect("the label of the checkbox")
        .text()
        .await
        .expect("text");
    assert_eq!(label, "Dit toestel 7 dagen onthouden");
    let recovery = c
        .find(Locator::Css("a[href='/login/recovery']"))
        .await
        .expect("the link to a recovery code")
        .text()
        .await
        .expect("text");
    assert_eq!(
        recovery,
        "Geen toegang tot je app of gsm? Gebruik een herstelcode."
    );
    j.enter_code(&key, true).await;
    wait_text(c, "Welkom, Dirk Wouters.").await;

    // Signing in again in this browser: the password is enough.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/").await;
    wait_text(c, "Welkom, Dirk Wouters.").await;

    // My Profile lists the device; "Vergeten" forgets it.
    j.goto("/account").await;
    let items = c
        .find_all(Locator::Css("#devices ul.devices li"))
        .await
        .expect("devices");
    assert_eq!(items.len(), 1, "one remembered device");
    let item = items[0].text().await.expect("text");
    assert!(
        (item.contains("Chrome") || item.contains("Chromium")) && item.contains("Linux"),
        "the browser and system: {item}"
    );
    assert!(item.contains("onthouden tot"), "{item}");
    let forget = c
        .find(Locator::Css("#devices ul.devices li form button"))
        .await
        .expect("the forget button");
    assert!(forget.text().await.expect("text").starts_with("Vergeten"));
    forget.click().await.expect("click");
    wait_text(
        c,
        "De toestellen zijn vergeten: daar vragen we voortaan weer een code.",
    )
    .await;
    assert_eq!(path(c).await, "/account");
    wait_text(c, "Geen toestellen onthouden.").await;
    assert!(c
        .find(Locator::Css("#devices ul.devices li"))
        .await
        .is_err());

    // Forgotten: the code is asked again. Remember it once more, then "Alle
    // toestellen vergeten" forgets it as well.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    j.enter_code(&key, true).await;
    j.goto("/account").await;
    let items = c
        .find_all(Locator::Css("#devices ul.devices li"))
        .await
        .expect("devices");
    assert_eq!(items.len(), 1, "remembered again");
    let all = c
        .find(Locator::Css(
            "#devices form[action='/account/devices/forget'] button",
        ))
        .await
        .expect("the forget-all button");
    assert_eq!(all.text().await.expect("text"), "Alle toestellen vergeten");
    all.click().await.expect("click");
    wait_text(c, "Geen toestellen onthouden.").await;
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;

    // Remembered for 7 days on the server's clock: still so a minute before, no
    // longer when they are up.
    j.enter_code(&key, true).await;
    j.sign_out().await;
    j.clock.advance(Duration::days(7) - Duration::minutes(1));
    j.sign_in_lands_on(email, "/").await;
    j.sign_out().await;
    j.clock.advance(Duration::minutes(1));
    j.sign_in_lands_on(email, "/login/code").await;
    j.enter_code(&key, false).await;
    j.goto("/account").await;
    wait_text(c, "Geen toestellen onthouden.").await;
    j.finish().await;
}

/// The ten recovery codes from the set-up: one gets in at the code step (typed in
/// upper case), once; a notice is mailed; My Profile counts what is left.
async fn sign_in_with_a_recovery_code(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    let email = "eva@example.be";
    j.add(email, "Eva Maes", Role::User).await;
    let (_key, codes) = j.set_up_app(email).await;
    wait_text(c, "Nog 10 herstelcodes over.").await;

    // No app at hand: the code step → "Gebruik een herstelcode".
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    click(c, "a[href='/login/recovery']").await;
    wait_path(c, |p| p == "/login/recovery", "/login/recovery").await;
    wait_text(c, "Aanmelden met een herstelcode").await;
    fill(c, "#code", &codes[0].to_uppercase()).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Eva Maes.").await;

    j.goto("/account").await;
    let left = c
        .find(Locator::Css("#recovery-left"))
        .await
        .expect("the count")
        .text()
        .await
        .expect("text");
    assert!(left.contains("Nog 9 herstelcodes over."), "{left}");

    // The notice in the mail.
    let mail = j.nth_mail("recovery-code-used", 1).await;
    assert!(mail.contains("met een herstelcode"), "{mail}");
    assert!(mail.contains("nog 9 herstelcodes"), "{mail}");

    // The same code again: refused, and no second notice.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    j.goto("/login/recovery").await;
    fill(c, "#code", &codes[0]).await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Deze herstelcode klopt niet of werd al gebruikt.").await;
    assert_eq!(path(c).await, "/login/recovery");
    assert_eq!(j.mails("recovery-code-used"), 1);

    // Another code still works.
    fill(c, "#code", &codes[1]).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    j.nth_mail("recovery-code-used", 2).await;
    j.goto("/account").await;
    wait_text(c, "Nog 8 herstelcodes over.").await;
    j.finish().await;
}
