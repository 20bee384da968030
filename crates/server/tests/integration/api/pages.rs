//! The pages over plain HTTP (no browser): CSRF, languages, redirects.

use crate::kit::{csrf_of, Backend, TestApp, PASSWORD};

async fn forms_refuse_posts_without_a_valid_csrf_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let form = [
        ("email", "an@example.be"),
        ("password", PASSWORD),
        ("csrf", "0"),
    ];
    let r = c
        .http
        .post(format!("{}/login", app.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = c
        .http
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_of(&page);
    // A token from another browser does not fit this browser's cookie.
    let other = app.client();
    let r = other
        .http
        .post(format!("{}/login", app.url))
        .form(&[
            ("email", "an@example.be"),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .http
        .post(format!("{}/login", app.url))
        .form(&[
            ("email", "an@example.be"),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
}

async fn dutch_by_default_english_on_request_and_remembered(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = app.client();
    let nl = c
        .http
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(nl.contains("lang=\"nl\"") && nl.contains("Aanmelden") && nl.contains("Wachtwoord"));
    assert!(nl.contains("Beveilig nu al je account met tweestapsverificatie"));
    let en = c
        .http
        .get(format!("{}/login", app.url))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("lang=\"en\"") && en.contains("Sign in"));
    let r = c
        .http
        .get(format!("{}/lang/en?next=/login", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login");
    let again = c
        .http
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("lang=\"en\""), "the choice is remembered");
    let r = c
        .http
        .get(format!("{}/lang/nl?next=//evil.example", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/", "no open redirect");
}

async fn protected_pages_send_strangers_to_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = app.client();
    for p in ["/", "/account", "/account/2fa/enable"] {
        let r = c.http.get(format!("{}{p}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{p}");
        assert_eq!(r.headers()["location"], "/login", "{p}");
    }
    let r = c
        .http
        .get(format!("{}/no/such/page", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["x-frame-options"] == "DENY");
    assert!(r.text().await.unwrap().contains("bestaat niet"));
}

crate::on_both_backends!(
    forms_refuse_posts_without_a_valid_csrf_token,
    dutch_by_default_english_on_request_and_remembered,
    protected_pages_send_strangers_to_sign_in,
);
