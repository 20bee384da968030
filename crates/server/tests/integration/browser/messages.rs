//! The messages of the code step in the browser (JavaScript off): the tries left
//! before the lock, the lock with when it ends and a way forward, and "Je bent
//! afgemeld" after signing out.

use super::driver::{body_text, click, click_and_wait_reload, fill, path, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::Backend;
use tweestap_domain::account::Role;

crate::on_both_backends!(wrong_codes_warn_then_the_lock_offers_a_recovery_code);

/// Five wrong codes: from the third on the page says how many tries are left; the
/// fifth locks, saying when it ends and linking to a recovery code, which signs in.
async fn wrong_codes_warn_then_the_lock_offers_a_recovery_code(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    let email = "wim@example.be";
    j.add(email, "Wim Claes", Role::User).await;
    let (key, codes) = j.set_up_app(email).await;
    j.sign_out().await;
    let url = c.current_url().await.expect("url");
    assert_eq!(url.query(), Some("signed_out=1"));
    wait_text(c, "Je bent afgemeld.").await;

    j.sign_in_lands_on(email, "/login/code").await;
    let wrong = if j.code(&key) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for (i, warning) in [None, None, Some("Nog 2 pogingen"), Some("Nog 1 poging:")]
        .into_iter()
        .enumerate()
    {
        fill(c, "#code", wrong).await;
        click_and_wait_reload(c, "form.card button[type=submit]").await;
        wait_text(c, "Deze code klopt niet").await;
        let text = body_text(c).await;
        match warning {
            Some(w) => assert!(text.contains(w), "try {i}: {text}"),
            None => assert!(!text.contains("Nog "), "try {i}: {text}"),
        }
    }
    fill(c, "#code", wrong).await;
    click_and_wait_reload(c, "form.card button[type=submit]").await;
    wait_text(c, "Te veel foute codes. De code van je app werkt weer om ").await;
    wait_text(c, "(over 1 minuut).").await;
    wait_text(c, "Wil je niet wachten?").await;
    assert_eq!(path(c).await, "/login/code");

    // The way forward: a recovery code, straight from the lock message.
    click(c, "#lock-recovery").await;
    wait_path(c, |p| p == "/login/recovery", "/login/recovery").await;
    fill(c, "#code", &codes[0]).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Wim Claes.").await;
    j.finish().await;
}
