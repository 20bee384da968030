//! Sessions seen by the relying parties: freshness and language requests, logout,
//! browser apps, and portals cut off by removed clients and resets.

use super::*;

crate::on_both_backends!(
    logout_without_a_hint_asks_first,
    freshness_and_language_requests_complete,
    browser_apps_call_token_and_userinfo_from_their_origin,
    a_removed_client_is_cut_off,
    password_and_support_resets_cut_portals_off,
);

/// `prompt=login` and `max_age` send a signed-in person through the password and
/// the code again, and the request then completes with the new `auth_time`; a
/// recent enough sign-in passes straight through; `ui_locales` picks the language
/// of the pages on the way.
async fn freshness_and_language_requests_complete(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let c = app.client();
    let first = sign_in_and_return(
        &c,
        &app,
        &location(&get(&c, &authorize_url("portal", CB, &pkce())).await),
        &secret,
    )
    .await;
    let (s, t) = exchange(&app, &query_param(&first, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    let signed_in_at = verify_id_token(&app, t["id_token"].as_str().unwrap(), "portal").await
        ["auth_time"]
        .as_i64()
        .unwrap();

    // Ten minutes later, max_age=3600 is satisfied at once ...
    app.clock.advance(chrono::Duration::minutes(10));
    let r = get(
        &c,
        &authorize_url("portal", CB, &format!("{}&max_age=3600", pkce())),
    )
    .await;
    assert!(location(&r).starts_with(CB), "{}", location(&r));
    // ... max_age=60 is not: the sign-in pages, then a code with a new auth_time.
    let r = get(
        &c,
        &authorize_url(
            "portal",
            CB,
            &format!("{}&max_age=60&ui_locales=en-GB%20nl", pkce()),
        ),
    )
    .await;
    let login = location(&r);
    assert!(login.contains("/login?rd="), "{login}");
    let page = get(&c, &login).await.text().await.unwrap();
    assert!(
        page.contains("<html lang=\"en\""),
        "ui_locales=en-GB: English pages"
    );
    app.next_step();
    let back = sign_in_and_return(&c, &app, &login, &secret).await;
    assert!(back.starts_with(CB), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
    let (s, t) = exchange(&app, &query_param(&back, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    let claims = verify_id_token(&app, t["id_token"].as_str().unwrap(), "portal").await;
    let renewed = claims["auth_time"].as_i64().unwrap();
    assert!(
        renewed >= signed_in_at + 600,
        "{renewed} after {signed_in_at}"
    );
    assert_eq!(claims["acr"], "urn:tweestap:acr:mfa");

    // prompt=login, a minute after that sign-in: asked again, then completed; the
    // language the browser now has (English) stays, ui_locales=nl switches it back.
    app.clock.advance(chrono::Duration::minutes(1));
    let r = get(
        &c,
        &authorize_url(
            "portal",
            CB,
            &format!("{}&prompt=login&ui_locales=nl", pkce()),
        ),
    )
    .await;
    let login = location(&r);
    assert!(login.contains("prompt=login"), "{login}");
    let page = get(&c, &login).await.text().await.unwrap();
    assert!(
        page.contains("<html lang=\"nl\""),
        "ui_locales=nl: Dutch pages"
    );
    app.next_step();
    let back = sign_in_and_return(&c, &app, &login, &secret).await;
    let (s, t) = exchange(&app, &query_param(&back, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    let again = verify_id_token(&app, t["id_token"].as_str().unwrap(), "portal").await["auth_time"]
        .as_i64()
        .unwrap();
    assert!(again >= renewed + 60, "{again} after {renewed}");

    // A negative or non-numeric max_age is refused back to the portal.
    for bad in ["-1", "soon"] {
        let r = get(
            &c,
            &authorize_url("portal", CB, &format!("{}&max_age={bad}", pkce())),
        )
        .await;
        let to = location(&r);
        assert!(to.starts_with(CB), "{to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some("invalid_request")
        );
    }
}

/// A logout request without a valid id_token_hint could come from any page: a
/// signed-in browser is asked first; nothing signed in, nothing to ask.
async fn logout_without_a_hint_asks_first(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", crate::kit::PASSWORD).await.status,
        200
    );
    let cb = urlencoding_cb();
    let r = get(
        &c,
        &format!("/oidc/logout?client_id=portal&post_logout_redirect_uri={cb}&state=bye"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.expect("page");
    assert!(
        page.contains("Afmelden?") && page.contains("name=\"state\" value=\"bye\""),
        "{page}"
    );
    assert_eq!(
        c.get("/api/v1/me").await.status,
        200,
        "not signed out by a mere link"
    );
    // A forged confirmation (no CSRF token) changes nothing.
    let r = post_form(
        &c,
        "/oidc/logout",
        &[("client_id", "portal"), ("state", "bye")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(c.get("/api/v1/me").await.status, 200);
    let token = csrf_of(&page);
    let r = post_form(
        &c,
        "/oidc/logout",
        &[
            ("csrf", token.as_str()),
            ("client_id", "portal"),
            ("post_logout_redirect_uri", CB),
            ("state", "bye"),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(location(&r), format!("{CB}?state=bye"));
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    // Signed out already: straight on.
    let r = get(
        &c,
        &format!("/oidc/logout?client_id=portal&post_logout_redirect_uri={cb}"),
    )
    .await;
    assert_eq!((r.status().as_u16(), location(&r)), (302, CB.to_owned()));
}

fn urlencoding_cb() -> String {
    url::form_urlencoded::byte_serialize(CB.as_bytes()).collect()
}

/// A browser app (the public client, served from its redirect URI's origin) may
/// call the token and userinfo endpoints across origins; any other origin may not,
/// and no origin is ever allowed to send cookies along.
async fn browser_apps_call_token_and_userinfo_from_their_origin(backend: Backend) {
    let app = app_with_clients(backend).await;
    let http = reqwest::Client::new();
    let spa_origin = "http://127.0.0.1:9";
    for path in ["/oidc/token", "/oidc/userinfo"] {
        let pre = http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.url))
            .header("origin", spa_origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{path}: {}", pre.status());
        let h = pre.headers();
        assert_eq!(h["access-control-allow-origin"], spa_origin, "{path}");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization"), "{allowed}");
        assert!(h.get("access-control-allow-credentials").is_none());

        for other in ["https://evil.example", "http://127.0.0.1:10", "null"] {
            let pre = http
                .request(reqwest::Method::OPTIONS, format!("{}{path}", app.url))
                .header("origin", other)
                .header("access-control-request-method", "POST")
                .send()
                .await
                .unwrap();
            assert!(
                pre.headers().get("access-control-allow-origin").is_none(),
                "{path} from {other}"
            );
        }
    }
    // The answers themselves carry the header, errors included, so the app can
    // read why it was refused.
    let r = http
        .post(format!("{}/oidc/token", app.url))
        .header("origin", spa_origin)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "spa"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["access-control-allow-origin"], spa_origin);
    let r = http
        .get(format!("{}/oidc/userinfo", app.url))
        .header("origin", "https://portal.example")
        .bearer_auth("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://portal.example"
    );
    // The sign-in pages and the authorization endpoint are never opened to others.
    let r = http
        .get(format!("{}/oidc/authorize", app.url))
        .header("origin", spa_origin)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// A client removed with `tweestap client remove` is cut off at once: its access
/// tokens no longer open userinfo and its refresh tokens no longer refresh.
async fn a_removed_client_is_cut_off(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let added = app
        .engine()
        .add_client(
            "Tijdelijk",
            &["https://tijdelijk.example/cb".into()],
            false,
            tweestap_domain::oidc::SigningAlg::Rs256,
            Default::default(),
        )
        .await
        .unwrap();
    let (id, client_secret) = (added.client.id, added.secret.unwrap());
    let cb = "https://tijdelijk.example/cb";
    let c = app.client();
    let login = location(&get(&c, &authorize_url(&id, cb, "")).await);
    let back = sign_in_and_return(&c, &app, &login, &secret).await;
    assert!(back.starts_with(cb), "{back}");
    let (s, t) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query_param(&back, "code").unwrap()),
            ("redirect_uri", cb),
        ],
        Some((&id, &client_secret)),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.0, 200);

    app.engine().remove_client(&id).await.unwrap();
    assert_eq!(userinfo(&app, access).await.0, 401);
    let (s, e) = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        Some((&id, &client_secret)),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
}

/// A portal's tokens for an@example.be, signed in through the pages.
async fn portal_tokens(
    c: &Client,
    app: &TestApp,
    password: &str,
    secret: &str,
) -> (String, String) {
    let login = location(&get(c, &authorize_url("portal", CB, &pkce())).await);
    let back = sign_in_with(c, app, &login, password, secret).await;
    let (s, t) = exchange(app, &query_param(&back, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A new password (after "forgot your password") and a support reset of the
/// second factor end what portals hold: access tokens stop opening userinfo and
/// refresh tokens stop refreshing, at once, not after their 30 days.
async fn password_and_support_resets_cut_portals_off(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let ctx = tweestap_domain::audit::RequestContext::default();
    let engine = app.engine();

    let (access, rt) = portal_tokens(&app.client(), &app, PASSWORD, &secret).await;
    assert_eq!(userinfo(&app, &access).await.0, 200);
    engine
        .request_password_reset("an@example.be", &app.url, &ctx)
        .await
        .unwrap();
    let text = nth_mail(&app, "password-reset", 1).await;
    let prefix = format!("{}/password/reset/", app.url);
    let at = text.find(&prefix).expect("a reset link") + prefix.len();
    let new_password = "een gloednieuwe zin om te onthouden";
    engine
        .complete_password_reset(&text[at..at + 43], new_password, &ctx)
        .await
        .unwrap();
    assert_eq!(userinfo(&app, &access).await.0, 401);
    assert_eq!(refresh(&app, &rt).await.1["error"], "invalid_grant");

    app.next_step();
    let (access, rt) = portal_tokens(&app.client(), &app, new_password, &secret).await;
    assert_eq!(userinfo(&app, &access).await.0, 200);
    let account = engine
        .store()
        .account_by_email(&tweestap_domain::account::Email::parse("an@example.be").unwrap())
        .await
        .unwrap()
        .unwrap();
    engine
        .reset_two_factor(
            tweestap_domain::service::Actor::Console,
            account.id,
            "telefoon verloren",
            &app.url,
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(userinfo(&app, &access).await.0, 401);
    assert_eq!(refresh(&app, &rt).await.1["error"], "invalid_grant");
}
