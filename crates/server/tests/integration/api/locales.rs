//! The reader's own words and time: Flemish (gsm, aanmelden) or Netherlands Dutch
//! (mobiel, inloggen) by `Accept-Language`, plain `nl` by `[ui] dutch`, the language
//! links and cookie keeping the choice; dates in the reader's language and the
//! configured `[ui] time_zone`.

use crate::kit::{page, Backend, Client, TestApp, PASSWORD};
use serde_json::json;
use tweestap_domain::clock::Clock;
use tweestap_web::dates::{day_time, parse_zone, DEFAULT_TIME_ZONE};
use tweestap_web::i18n::Lang;

crate::on_both_backends!(
    flemish_or_netherlands_dutch_by_accept_language_and_configured_default,
    dates_read_in_the_language_and_the_configured_time_zone,
);

/// The sign-in page's `lang` and whether it says "Aanmelden" or "Inloggen".
async fn login_words(c: &Client) -> (String, &'static str) {
    let (s, html) = page(c, "/login").await;
    assert_eq!(s, 200);
    let lang = html
        .split("<html lang=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("html lang")
        .to_owned();
    let title = html
        .split("<h1")
        .nth(1)
        .and_then(|r| r.split("</h1>").next())
        .expect("h1");
    let word = if title.contains("Inloggen") {
        "Inloggen"
    } else if title.contains("Aanmelden") {
        "Aanmelden"
    } else if title.contains("Sign in") {
        "Sign in"
    } else {
        panic!("{title}")
    };
    (lang, word)
}

async fn flemish_or_netherlands_dutch_by_accept_language_and_configured_default(backend: Backend) {
    let mut app = TestApp::start(backend.clone()).await;
    for (header, want) in [
        (Some("nl-BE,nl;q=0.9"), ("nl", "Aanmelden")),
        (Some("nl-NL,nl;q=0.9,en;q=0.5"), ("nl-NL", "Inloggen")),
        (Some("nl"), ("nl", "Aanmelden")),
        (None, ("nl", "Aanmelden")),
        (Some("en-GB"), ("en", "Sign in")),
    ] {
        let c = app.client_in(header);
        let (lang, word) = login_words(&c).await;
        assert_eq!((lang.as_str(), word), want, "{header:?}");
    }
    // A Netherlands reader signs in and reads "Uitloggen" and "mobiel".
    app.add_user("an@example.be").await;
    let nl = app.client_in(Some("nl-NL"));
    assert_eq!(nl.login("an@example.be", PASSWORD).await.status, 200);
    let (_, html) = page(&nl, "/account/2fa/sms").await;
    assert!(
        html.contains("Mobiel nummer") && !html.contains("Gsm"),
        "{html}"
    );
    let (_, html) = page(&nl, "/account").await;
    assert!(html.contains(">Uitloggen</button>"), "{html}");
    // "Nederlands" keeps the Netherlands words; English and back again.
    assert!(html.contains("href=\"/lang/nl-NL?next="), "{html}");
    let nl = app.client_in(Some("nl-NL"));
    let (s, _) = page(&nl, "/lang/en?next=/login").await;
    assert!(s == 303 || s == 200, "{s}");
    assert_eq!(login_words(&nl).await, ("en".to_owned(), "Sign in"));
    page(&nl, "/lang/nl-NL?next=/login").await;
    assert_eq!(login_words(&nl).await, ("nl-NL".to_owned(), "Inloggen"));
    // The cookie wins over the header: a Flemish choice in a Netherlands browser.
    page(&nl, "/lang/nl-BE?next=/login").await;
    assert_eq!(login_words(&nl).await, ("nl".to_owned(), "Aanmelden"));
    app.stop();

    // An organisation in the Netherlands: plain `nl` reads as there.
    let app = TestApp::start_configured(backend, |c| c.ui.dutch = "nl-NL".into()).await;
    for (header, want) in [
        (Some("nl"), ("nl-NL", "Inloggen")),
        (None, ("nl-NL", "Inloggen")),
        (Some("nl-BE"), ("nl", "Aanmelden")),
        (Some("en"), ("en", "Sign in")),
    ] {
        let c = app.client_in(header);
        assert_eq!(
            login_words(&c).await,
            (want.0.to_owned(), want.1),
            "{header:?}"
        );
    }
    let c = app.client_in(Some("en"));
    page(&c, "/lang/nl?next=/login").await;
    assert_eq!(login_words(&c).await, ("nl-NL".to_owned(), "Inloggen"));
    // Flemish chosen there stays Flemish: its cookie names it (found by fuzzing; it
    // was kept as plain `nl`, which reads as the Netherlands' Dutch here).
    page(&c, "/lang/nl-BE?next=/login").await;
    assert_eq!(login_words(&c).await, ("nl".to_owned(), "Aanmelden"));
    assert_eq!(login_words(&c).await, ("nl".to_owned(), "Aanmelden"));
}

async fn dates_read_in_the_language_and_the_configured_time_zone(backend: Backend) {
    // Far from Brussels, so the zone shows.
    let app =
        TestApp::start_configured(backend, |c| c.ui.time_zone = "America/New_York".into()).await;
    let zone = parse_zone("America/New_York").expect("zone");
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    c.post("/api/v1/logout", json!({})).await;
    app.next_step();
    for lang in [Lang::Nl, Lang::En] {
        let c = app.client_in(Some(lang.code()));
        c.login("an@example.be", PASSWORD).await;
        let used = app.clock.now();
        let r = c
            .post(
                "/api/v1/login/second-factor",
                json!({ "method": "totp", "code": app.code(&secret) }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let (_, html) = page(&c, "/account").await;
        let want = day_time(lang, zone, used);
        assert!(html.contains(&want), "{want}: {html}");
        assert_ne!(
            want,
            day_time(lang, DEFAULT_TIME_ZONE, used),
            "the zone shows"
        );
        assert!(!html.contains(" UTC"), "{html}");
        let word = if lang == Lang::Nl { " om " } else { " at " };
        assert!(want.contains(word), "{want}");
        app.next_step();
    }
}
