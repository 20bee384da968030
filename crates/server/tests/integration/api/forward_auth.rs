//! Forward-auth: the proxy asks, tweestap answers with who signed in, or sends the
//! browser to sign in and back — never to a host it does not know.

use crate::kit::{location, Backend, Client, TestApp, PASSWORD};
use serde_json::json;

async fn get(c: &Client, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = c.http.get(format!("{}{path}", c.base));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.expect("request")
}

async fn forward_auth_answers_for_signed_in_sessions_only(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.forward_auth.return_hosts = vec!["app.example.org".into()];
    })
    .await;
    app.add_user("an@example.be").await;
    app.add_user("bo@example.be").await;
    let c = app.client();

    // Anonymous: nginx gets 401; Traefik/Caddy get a redirect to sign in and back.
    assert_eq!(get(&c, "/auth/request", &[]).await.status().as_u16(), 401);
    let fwd = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.org"),
        ("x-forwarded-uri", "/reports?year=2026"),
    ];
    let r = get(&c, "/auth/forward", &fwd).await;
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(
        location(&r),
        format!(
            "{}/login?rd=https%3A%2F%2Fapp.example.org%2Freports%3Fyear%3D2026",
            app.url
        )
    );
    // An unknown host is never a return target.
    let evil = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-uri", "/"),
    ];
    let r = get(&c, "/auth/forward", &evil).await;
    assert_eq!(location(&r), format!("{}/login", app.url));

    // Signing in with a return URL: the sign-in ends back at the portal.
    let r = get(&c, "/login?rd=https%3A%2F%2Fapp.example.org%2Freports", &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    let r = get(&c, "/", &[]).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "https://app.example.org/reports".to_owned())
    );
    // Once only: the next visit is the home page.
    assert_eq!(get(&c, "/", &[]).await.status().as_u16(), 200);

    for path in ["/auth/request", "/auth/forward"] {
        let r = get(&c, path, &fwd).await;
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["remote-user"], "an@example.be");
        assert_eq!(h["remote-email"], "an@example.be");
        assert_eq!(h["remote-groups"], "user");
        assert_eq!(h["remote-amr"], "pwd");
    }

    // Half-way through a sign-in (password right, code still due) is not signed in.
    let d = app.client();
    d.enroll(&app, "bo@example.be").await;
    let e = app.client();
    assert_eq!(
        e.login("bo@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );
    assert_eq!(get(&e, "/auth/request", &[]).await.status().as_u16(), 401);

    // A return URL to a foreign host is ignored: home, not evil.example.
    let f = app.client();
    get(&f, "/login?rd=https%3A%2F%2Fevil.example%2F", &[]).await;
    assert_eq!(f.login("an@example.be", PASSWORD).await.status, 200);
    let r = get(&f, "/", &[]).await;
    assert_eq!(r.status().as_u16(), 200, "{}", location(&r));
}

async fn the_session_cookie_can_cover_sibling_hosts(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.session.cookie_domain = ".example.org".into();
    })
    .await;
    app.add_user("an@example.be").await;
    let r = app
        .client()
        .http
        .post(format!("{}/api/v1/login", app.url))
        .json(&json!({ "email": "an@example.be", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("tweestap_session="))
        .expect("session cookie");
    assert!(session.contains("Domain=example.org"), "{session}");
    assert!(session.contains("HttpOnly"), "{session}");
    // Other cookies keep to this host.
    assert!(cookies
        .iter()
        .filter(|c| !c.starts_with("tweestap_session="))
        .all(|c| !c.contains("Domain=")));
}

crate::on_both_backends!(
    forward_auth_answers_for_signed_in_sessions_only,
    the_session_cookie_can_cover_sibling_hosts,
);
