//! Setting up an authenticator app: from My Profile, through "Beveilig nu je
//! account" with a mailed code, and through the mailed link.

use super::driver::{body_text, click, fill, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::{code_in, enroll_path_in, totp, Backend, PASSWORD};
use chrono::Duration;
use fantoccini::Locator;
use tweestap_domain::account::Role;

crate::on_both_backends!(
    set_up_app_sign_out_and_sign_in_with_a_code,
    secure_now_with_a_mailed_code,
    enable_from_profile_with_the_mailed_link,
);

/// The whole way in Dutch: password only, My Profile → enable → the QR page (a wrong
/// code first), the recovery codes, signing out, and in again with a code.
async fn set_up_app_sign_out_and_sign_in_with_a_code(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    j.add("an@example.be", "An Peeters", Role::User).await;
    let (c, url) = (&j.c, &j.url);

    // Sign in with the password only (no factor yet).
    c.goto(&format!("{url}/login")).await.expect("goto");
    let html = c.source().await.expect("source");
    assert!(html.contains("lang=\"nl\""));
    assert!(body_text(c)
        .await
        .contains("Beveilig nu al je account met tweestapsverificatie"));
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;

    // My Profile → enable → confirm password → QR page.
    c.goto(&format!("{url}/account")).await.expect("goto");
    let text = body_text(c).await;
    assert!(
        text.contains("Tweestapsverificatie") && text.contains("nog niet ingeschakeld"),
        "{text}"
    );
    click(c, "#twofa a.button").await;
    wait_path(c, |p| p == "/account/2fa/enable", "/account/2fa/enable").await;
    fill(c, "#password", PASSWORD).await;
    // "Toon de QR-code hier" (the other button mails the link instead).
    click(c, "form.card button[value=here]").await;
    wait_path(c, |p| p.starts_with("/account/2fa/setup/"), "the QR page").await;
    assert!(
        c.find(Locator::Css("figure.qr svg")).await.is_ok(),
        "inline QR code"
    );
    let png = c
        .find(Locator::Css("a[download]"))
        .await
        .expect("PNG link")
        .attr("href")
        .await
        .expect("href");
    assert!(png.expect("href").ends_with("/qr.png"));
    let key: String = c
        .find(Locator::Css("#secret-key"))
        .await
        .expect("key")
        .text()
        .await
        .expect("text");
    let code_now = || j.code(&key.replace(' ', ""));

    // A wrong code keeps the user on the page with a message; the right one finishes.
    fill(c, "#code", "000000").await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Deze code klopt niet").await;
    fill(c, "#code", &code_now()).await;
    click(c, "form.card button[type=submit]").await;
    // The first factor comes with ten recovery codes, shown once.
    wait_text(c, "Je herstelcodes").await;
    let codes = c
        .find_all(fantoccini::Locator::Css("ol.recovery-codes code"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10);
    click(c, "a[href='/account?done=enabled']").await;
    wait_path(c, |p| p == "/account", "/account").await;
    let text = body_text(c).await;
    assert!(
        text.contains("Tweestapsverificatie is ingeschakeld"),
        "{text}"
    );
    c.screenshot()
        .await
        .map(|png| std::fs::write(j.dir.path().join("profile.png"), png))
        .ok();

    // Sign out, sign in again: now the code is asked.
    click(c, "header form button").await;
    wait_path(c, |p| p == "/login", "/login").await;
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/login/code", "/login/code").await;
    assert!(body_text(c).await.contains("authenticator-app"));
    totp::next_step(&j.clock);
    fill(c, "#code", &code_now()).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, An Peeters.").await;

    // English on request, through the visible switch.
    click(c, "a[hreflang=en]").await;
    wait_text(c, "You are signed in").await;

    if let Ok(dest) = std::env::var("TWEESTAP_SCREENSHOTS") {
        let _ = std::fs::copy(
            j.dir.path().join("profile.png"),
            format!("{dest}/profile.png"),
        );
    }
    j.finish().await;
}

/// "Beveilig nu je account": password, the code from the mail with the method, the
/// QR page; afterwards signing in asks for a code.
async fn secure_now_with_a_mailed_code(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("an@example.be", "An Peeters", Role::User).await;

    j.goto("/login").await;
    let link = c
        .find(Locator::Css("a[href='/secure']"))
        .await
        .expect("the link to /secure");
    let text = link.text().await.expect("text");
    assert!(text.starts_with("Beveilig nu"), "{text}");
    link.click().await.expect("click");
    wait_path(c, |p| p == "/secure", "/secure").await;
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/secure/code", "/secure/code").await;
    wait_text(c, "Bevestig je e-mailadres").await;

    // The method is chosen on the same page as the code: the app by default.
    let code = code_in(&j.nth_mail("email-code", 1).await);
    fill(c, "#code", &code).await;
    let app = c
        .find(Locator::Css("input[type=radio][name=method][value=totp]"))
        .await
        .expect("the authenticator app as a method");
    assert!(app.is_selected().await.expect("checked?"), "preselected");
    click(c, "form.card button[type=submit]").await;
    let key = j.confirm_qr_page().await;
    let twofa = c
        .find(Locator::Css("#twofa"))
        .await
        .expect("2FA box")
        .text()
        .await
        .expect("text");
    assert!(
        twofa.contains("Tweestapsverificatie is ingeschakeld"),
        "{twofa}"
    );

    // Signed in by the wizard; sign out and in again: now the code is asked.
    j.sign_out().await;
    j.sign_in("an@example.be").await;
    wait_path(c, |p| p == "/login/code", "/login/code").await;
    assert!(body_text(c).await.contains("authenticator-app"));
    j.clock.advance(Duration::seconds(30));
    fill(c, "#code", &j.code(&key)).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, An Peeters.").await;
    j.finish().await;
}

/// My Profile → "Inschakelen" → "Stuur mij de link per e-mail"; the link, opened in
/// a browser without a session, asks the password and shows the QR page; it works once.
async fn enable_from_profile_with_the_mailed_link(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("bert@example.be", "Bert Claes", Role::User).await;

    j.sign_in("bert@example.be").await;
    wait_path(c, |p| p == "/", "/").await;
    j.goto("/account").await;
    wait_text(c, "nog niet ingeschakeld").await;
    click(c, "#twofa a[href='/account/2fa/enable']").await;
    wait_path(c, |p| p == "/account/2fa/enable", "/account/2fa/enable").await;
    fill(c, "#password", PASSWORD).await;
    let by_mail = c
        .find(Locator::Css("form.card button[value=mail]"))
        .await
        .expect("the mail button");
    assert_eq!(
        by_mail.text().await.expect("text"),
        "Stuur mij de link per e-mail"
    );
    by_mail.click().await.expect("click");
    wait_text(c, "Kijk in je mailbox").await;
    let link = enroll_path_in(&j.nth_mail("enrollment-link", 1).await);

    // A browser without a session: sign out, and forget every cookie too.
    j.sign_out().await;
    c.delete_all_cookies().await.expect("delete cookies");
    j.goto(&link).await;
    wait_path(c, |p| p == link, "the link").await;
    wait_text(c, "bert@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    j.confirm_qr_page().await;
    wait_text(c, "Bert Claes").await;

    // The link works once.
    j.goto(&link).await;
    wait_path(c, |p| p == link, "the link again").await;
    wait_text(c, "al gebruikt").await;
    assert!(
        c.find(Locator::Css("#password")).await.is_err(),
        "a used link asks nothing"
    );
    j.finish().await;
}
