//! Codes by SMS: as a fallback for the app, and as the only method.

use super::driver::{click, click_and_wait_reload, fill, path, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::{code_in, Backend, PASSWORD};
use fantoccini::Locator;
use tweestap_domain::account::Role;

crate::on_both_backends!(
    sms_as_a_fallback_for_the_app,
    sms_only_for_someone_without_a_smartphone,
);

/// An app first; then My Profile → "Gsm-nummer toevoegen voor sms-codes" (password,
/// number, the code from the SMS). At the code step an SMS instead of the app's code;
/// "Stuur opnieuw" sends another, and only the newest code works.
async fn sms_as_a_fallback_for_the_app(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    let email = "fien@example.be";
    j.add(email, "Fien Wuyts", Role::User).await;
    j.set_up_app(email).await;

    // My Profile → add a phone: password and number, then the code from the SMS.
    let link = c
        .find(Locator::Css("a[href='/account/2fa/sms']"))
        .await
        .expect("the link to add a phone");
    assert_eq!(
        link.text().await.expect("text"),
        "Gsm-nummer toevoegen voor sms-codes"
    );
    link.click().await.expect("click");
    wait_path(c, |p| p == "/account/2fa/sms", "/account/2fa/sms").await;
    fill(c, "#password", PASSWORD).await;
    fill(c, "#phone", "0470 12 34 56").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(
        c,
        |p| p.starts_with("/account/2fa/sms/"),
        "the SMS code page",
    )
    .await;
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let setup_page = path(c).await;
    assert!(
        c.find(Locator::Css(&format!(
            "form[action='{setup_page}/resend'] button[type=submit]"
        )))
        .await
        .is_ok(),
        "a button to send the code again"
    );
    let code = j.nth_sms_code(1).await;
    fill(c, "#code", &code).await;
    click(c, "form.card button[type=submit]").await;
    // Not the first factor: no recovery codes, straight back to My Profile.
    wait_path(c, |p| p == "/account", "/account").await;
    let url = c.current_url().await.expect("url");
    assert_eq!(url.query(), Some("done=enabled"));
    let factors = c
        .find_all(Locator::Css("#twofa ul.factors li"))
        .await
        .expect("factors");
    assert_eq!(factors.len(), 2, "the app and the phone");
    let mut listed = Vec::new();
    for f in &factors {
        listed.push(f.text().await.expect("text"));
    }
    assert!(
        listed
            .iter()
            .any(|t| t.starts_with("Sms naar +32 4•• •• •• 56")),
        "{listed:?}"
    );

    // Signing in: an SMS instead of the app's code.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    let send = c
        .find(Locator::Css("#send-sms"))
        .await
        .expect("the button to send an SMS");
    assert_eq!(
        send.text().await.expect("text"),
        "Stuur mij een code per sms"
    );
    click_and_wait_reload(c, "#send-sms").await;
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let again = c
        .find(Locator::Css("#send-sms"))
        .await
        .expect("the button")
        .text()
        .await
        .expect("text");
    assert_eq!(again, "Stuur opnieuw");
    let code = j.nth_sms_code(2).await;
    j.enter_sms_code(&code, false).await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Fien Wuyts.").await;

    // "Stuur opnieuw": a second SMS, and only its code works.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    click_and_wait_reload(c, "#send-sms").await;
    let older = j.nth_sms_code(3).await;
    click_and_wait_reload(c, "#send-sms").await;
    let newest = j.nth_sms_code(4).await;
    assert_eq!(j.sms_files().len(), 4, "one SMS per press");
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    if older != newest {
        // (One in a million they are the same.)
        j.enter_sms_code(&older, false).await;
        wait_text(c, "Deze code klopt niet").await;
        assert_eq!(path(c).await, "/login/code");
    }
    j.enter_sms_code(&newest, false).await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Fien Wuyts.").await;
    j.finish().await;
}

/// "Beveilig nu je account" with SMS as the only method: a landline is refused, a
/// mobile number gets the code; the recovery codes (the first factor); then signing in
/// with an SMS code, remembering the device.
async fn sms_only_for_someone_without_a_smartphone(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    let email = "gust@example.be";
    j.add(email, "Gust Peeters", Role::User).await;

    j.goto("/login").await;
    click(c, "a[href='/secure']").await;
    wait_path(c, |p| p == "/secure", "/secure").await;
    fill(c, "#email", email).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/secure/code", "/secure/code").await;
    let code = code_in(&j.nth_mail("email-code", 1).await);
    fill(c, "#code", &code).await;

    // SMS, chosen with the code, a landline first: refused, the choice kept.
    click(c, "#method-sms").await;
    fill(c, "#phone", "02 511 11 11").await;
    click_and_wait_reload(c, "form.card button[type=submit]").await;
    wait_text(c, "Dit is geen gsm-nummer").await;
    assert_eq!(path(c).await, "/secure/code");
    assert!(j.sms_files().is_empty(), "no SMS to a landline");
    let sms = c
        .find(Locator::Css("#method-sms"))
        .await
        .expect("the SMS method");
    assert!(sms.is_selected().await.expect("checked?"), "still chosen");
    let phone = c.find(Locator::Css("#phone")).await.expect("the number");
    phone.clear().await.expect("clear");
    phone.send_keys("0470 12 34 56").await.expect("typing");
    click(c, "form.card button[type=submit]").await;
    wait_path(
        c,
        |p| p.starts_with("/account/2fa/sms/"),
        "the SMS code page",
    )
    .await;
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let code = j.nth_sms_code(1).await;
    fill(c, "#code", &code).await;
    click(c, "form.card button[type=submit]").await;

    // The first factor: the recovery codes, then My Profile.
    wait_text(c, "Je herstelcodes").await;
    let codes = c
        .find_all(Locator::Css("ol.recovery-codes code"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10);
    click(c, "a[href='/account?done=enabled']").await;
    wait_path(c, |p| p == "/account", "/account").await;
    let twofa = c
        .find(Locator::Css("#twofa"))
        .await
        .expect("2FA box")
        .text()
        .await
        .expect("text");
    assert!(
        twofa.contains("Tweestapsverificatie is ingeschakeld")
            && twofa.contains("Sms naar +32 4•• •• •• 56"),
        "{twofa}"
    );

    // Signing in: password, an SMS code, "remember this device".
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    let intro = c
        .find(Locator::Css("#code-intro"))
        .await
        .expect("the intro")
        .text()
        .await
        .expect("text");
    assert_eq!(
        intro, "We sturen je code van 6 cijfers per sms naar je gsm. Vul die code hieronder in.",
        "only SMS, in a whole sentence"
    );
    // The first SMS goes out by itself; the button sends another.
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let again = c
        .find(Locator::Css("#send-sms"))
        .await
        .expect("the button")
        .text()
        .await
        .expect("text");
    assert_eq!(again, "Stuur opnieuw");
    let code = j.nth_sms_code(2).await;
    assert_eq!(j.sms_files().len(), 2, "one SMS by itself");
    j.enter_sms_code(&code, true).await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Gust Peeters.").await;

    // Remembered: the password is enough, and no SMS is sent.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/").await;
    wait_text(c, "Welkom, Gust Peeters.").await;
    assert_eq!(j.sms_files().len(), 2);
    j.finish().await;
}

// ---- the example portal (examples/portal) -------------------------------------
