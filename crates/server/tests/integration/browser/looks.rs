//! How the support pages and the mails look, measured in the browser (no script of
//! the pages runs; the measurements are WebDriver's): at 390 px nothing widens the
//! page, the reason field is as wide as its form, the header links stand apart, the
//! reset button is red, and the reset mail fits the phone with its long link.

use super::driver::{click, fill, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::{nth_raw_mail_in, Backend};
use fantoccini::{Client, Locator};
use tweestap_domain::account::Role;

crate::on_both_backends!(support_pages_fit_a_phone_in_both_languages,);

/// Sizes the window so the page is `width` CSS pixels wide.
pub(super) async fn width(c: &Client, width: u32) {
    c.set_window_size(width, 844).await.expect("window size");
    let inner = number(c, "return window.innerWidth").await;
    if inner != f64::from(width) {
        // The window's frame (if any) takes some of it.
        let extra = width + (f64::from(width) - inner).max(0.0) as u32;
        c.set_window_size(extra, 844).await.expect("window size");
    }
}

async fn number(c: &Client, script: &str) -> f64 {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
        .as_f64()
        .unwrap_or_else(|| panic!("{script}: not a number"))
}

async fn text(c: &Client, script: &str) -> String {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// How far the page reaches past the right edge of the window (0: it fits).
async fn overflow(c: &Client) -> f64 {
    number(
        c,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
    )
    .await
}

/// Nothing reaches past the window's right edge, except inside a table's own
/// scrolling region; and on a desktop not even there: a table that scrolls
/// sideways at 1280 px hides columns a person came for.
pub(super) async fn assert_fits(c: &Client, what: &str) {
    let o = overflow(c).await;
    let scrolling = text(
        c,
        "if (window.innerWidth < 1280) return '';
         return [...document.querySelectorAll('.table-scroll')]
           .filter(e => e.scrollWidth > e.clientWidth + 0.5)
           .map(e => (e.getAttribute('aria-labelledby') || e.getAttribute('aria-label') || 'table')
             + ' by ' + (e.scrollWidth - e.clientWidth) + ' px')
           .join(', ');",
    )
    .await;
    assert!(
        scrolling.is_empty(),
        "{what}: on a desktop a table scrolls sideways: {scrolling}"
    );
    let outside = text(
        c,
        "const w = document.documentElement.clientWidth;
         return [...document.querySelectorAll('body *')]
           .filter(e => !e.closest('.table-scroll, .visually-hidden') && (e.getBoundingClientRect().right > w + 0.5
             || (!(e instanceof SVGElement) && e.clientWidth > 0 && e.getBoundingClientRect().left + e.scrollWidth > w + 0.5)))
           .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + Math.round(e.getBoundingClientRect().right))
           .join(', ');",
    )
    .await;
    assert!(
        o <= 0.0 && outside.is_empty(),
        "{what}: {o} px wider than the window; outside it: {outside}"
    );
}

async fn support_pages_fit_a_phone_in_both_languages(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("sofie@example.be", "Sofie Support", Role::Support)
        .await;
    for i in 0..13 {
        let email = format!("medewerker.met.een.lange.naam.{i}@gemeente-tweestad.example.be");
        j.add(&email, &format!("Medewerker Nummer {i}"), Role::User)
            .await;
    }
    j.add("carla@example.be", "Carla Janssens", Role::User)
        .await;
    width(c, 1280).await;
    j.sign_in("sofie@example.be").await;
    wait_path(c, |p| p == "/", "/").await;

    // The header links stand apart.
    let gap = number(
        c,
        "const a = document.querySelector('nav.user a[href=\"/account\"]').getBoundingClientRect();
         const b = document.querySelector('nav.user a[href=\"/support\"]').getBoundingClientRect();
         const f = document.querySelector('nav.user form button').getBoundingClientRect();
         return Math.min(b.left - a.right, f.left - b.right);",
    )
    .await;
    assert!(gap >= 12.0, "the header links are {gap} px apart");

    for (lang, found, next, confirm) in [
        (
            "nl",
            "15 accounts gevonden.",
            "Dit werkt dan meteen niet meer",
            "Ja, nu opnieuw instellen",
        ),
        (
            "en",
            "15 accounts found.",
            "This stops working at once",
            "Yes, reset now",
        ),
    ] {
        j.goto(&format!("/lang/{lang}?next=/support")).await;
        wait_path(c, |p| p == "/support", "/support").await;
        wait_text(c, found).await;
        assert_fits(c, &format!("{lang} /support at 1280 px")).await;
        width(c, 390).await;
        assert_fits(c, &format!("{lang} /support at 390 px")).await;
        let _ = std::fs::create_dir_all("../../target/screenshots");
        if let Ok(png) = c.screenshot().await {
            let _ = std::fs::write(
                format!("../../target/screenshots/support-390-{lang}.png"),
                png,
            );
        }
        // The header wraps on a phone, still apart.
        let gap = number(
            c,
            "const a = document.querySelector('nav.user a[href=\"/account\"]').getBoundingClientRect();
             const b = document.querySelector('nav.user a[href=\"/support\"]').getBoundingClientRect();
             return a.top === b.top ? b.left - a.right : 99;",
        )
        .await;
        assert!(gap >= 12.0, "{lang}: header links {gap} px apart at 390 px");
        c.find(Locator::LinkText("carla@example.be"))
            .await
            .expect("the account in the results")
            .click()
            .await
            .expect("click");
        wait_path(c, |p| p.starts_with("/support/accounts/"), "the account").await;
        assert_fits(c, &format!("{lang} account page at 390 px")).await;
        let (field, form) = (
            number(c, "return document.querySelector('#reason').getBoundingClientRect().width").await,
            number(c, "return document.querySelector('form[action$=\"/reset-2fa\"]').getBoundingClientRect().width").await,
        );
        assert!(
            field >= form - 1.0 && field > 250.0,
            "{lang}: the reason field is {field} px in a form of {form} px"
        );
        fill(c, "#reason", "Nieuwe telefoon; identiteit gecontroleerd.").await;
        click(c, "form[action$='/reset-2fa'] button[type=submit]").await;
        wait_text(c, next).await;
        assert_fits(c, &format!("{lang} confirmation at 390 px")).await;
        if let Ok(png) = c.screenshot().await {
            let _ = std::fs::write(
                format!("../../target/screenshots/support-confirm-390-{lang}.png"),
                png,
            );
        }
        let button = c
            .find(Locator::Css("#confirm-reset"))
            .await
            .expect("the confirm button");
        assert_eq!(button.text().await.expect("text"), confirm);
        let colours = text(
            c,
            "const s = getComputedStyle(document.querySelector('#confirm-reset'));
             return s.backgroundColor + ' / ' + s.color;",
        )
        .await;
        assert_eq!(colours, "rgb(166, 27, 27) / rgb(255, 255, 255)", "{lang}");
        if lang == "nl" {
            button.click().await.expect("confirm");
            wait_text(c, "Tweestapsverificatie is opnieuw ingesteld").await;
        }
        width(c, 1280).await;
    }

    // The reset mail, on a phone: its long link wraps, its button is a button.
    let raw = nth_raw_mail_in(&j.data_dir(), "two-factor-reset", 1).await;
    let mail = mailparse::parse_mail(&raw).expect("RFC 5322");
    let html = mail
        .subparts
        .iter()
        .find(|p| p.ctype.mimetype == "text/html")
        .expect("an HTML part")
        .get_body()
        .expect("body");
    let file = j.dir.path().join("reset-mail.html");
    std::fs::write(&file, &html).expect("write");
    c.goto(&format!("file://{}", file.display()))
        .await
        .expect("open the mail");
    width(c, 390).await;
    assert_fits(c, "the reset mail at 390 px").await;
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write("../../target/screenshots/reset-mail-390.png", png);
    }
    let button = text(
        c,
        "return getComputedStyle(document.querySelector('a.mail-button')).backgroundColor",
    )
    .await;
    assert_eq!(button, "rgb(11, 83, 148)", "the link looks like a button");
    j.finish().await;
}
