//! Token introspection (RFC 7662) and revocation (RFC 7009) with client
//! authentication; tokens that end with the session (page, API and RP-initiated
//! sign-out), at once and on every node.

use super::browser::{sign_out_by_page, signed_in, visit};
use super::*;
use crate::kit::Client;
use serde_json::json;

crate::on_both_backends!(
    introspection_describes_live_tokens_and_nothing_of_dead_ones,
    page_sign_out_ends_the_tokens_at_once_on_every_node,
    api_and_rp_initiated_sign_out_end_the_tokens_too,
    revocation_per_rfc_7009,
);

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn scopes(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = s(v).split(' ').map(str::to_owned).collect();
    s.sort();
    s
}

const PORTAL_AUTH: Auth<'static> = Auth::Basic("portal", SECRET);

async fn introspection_describes_live_tokens_and_nothing_of_dead_ones(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let sub = account_id(&app, EMAIL).await;
    let (c, back) = signed_in(&app, PORTAL, "openid email offline_access", &secret).await;
    let t = tokens(&app, PORTAL, &back).await;
    let id = id_claims(&app, &t, "portal").await;
    let access = s(&t["access_token"]).to_owned();
    let rt = s(&t["refresh_token"]).to_owned();

    let (status, v) = introspect(&app, &access, PORTAL_AUTH).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(scopes(&v["scope"]), ["email", "offline_access", "openid"]);
    assert_eq!(v["client_id"], "portal");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["sub"], sub.as_str());
    assert_eq!(v["iss"], app.url.as_str());
    assert_eq!(v["sid"], id["sid"], "the session's sid");
    assert_eq!(v["username"], EMAIL, "the email scope names the person");
    assert!(!audiences(&v["aud"]).is_empty(), "{v}");
    let (iat, exp) = (
        v["iat"].as_i64().expect("iat"),
        v["exp"].as_i64().expect("exp"),
    );
    assert_eq!(iat, app.clock_now(), "iat on the provider's clock");
    let lifetime = t["expires_in"].as_i64().expect("expires_in");
    assert!(
        (exp - iat - lifetime).abs() <= 1,
        "exp {exp}, iat {iat}, expires_in {lifetime}"
    );
    // client_secret_post answers the same; a wrong hint does not hide the token.
    let (_, post) = introspect(&app, &access, Auth::Post("portal", SECRET)).await;
    assert_eq!(post, v);
    let hinted = [
        ("token", access.as_str()),
        ("token_type_hint", "refresh_token"),
    ];
    let (_, h) = call(&app, "/oidc/introspect", &hinted, PORTAL_AUTH).await;
    assert_eq!(h["active"], true, "{h}");

    let (_, r) = introspect(&app, &rt, PORTAL_AUTH).await;
    assert_eq!(r["active"], true, "{r}");
    assert_eq!(r["token_type"], "refresh_token");
    assert_eq!(
        (r["client_id"].as_str(), r["sub"].as_str()),
        (Some("portal"), Some(sub.as_str()))
    );

    // Who may ask: confidential clients with their secret only.
    for (auth, what) in [
        (Auth::Id("spa"), "a public client"),
        (Auth::Nothing, "nobody"),
        (Auth::Basic("portal", "niet-het-geheim"), "a wrong secret"),
        (Auth::Basic("onbekend", SECRET), "an unknown client"),
    ] {
        let (status, e) = introspect(&app, &access, auth).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (401, Some("invalid_client")),
            "{what}: {e}"
        );
    }
    let (status, e) = call(&app, "/oidc/introspect", &[], PORTAL_AUTH).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_request")),
        "no token: {e}"
    );

    // Without the email scope, no username.
    let l = visit(&c, &authorize(PORTAL, "openid", "")).await;
    let plain = tokens(&app, PORTAL, &l.url).await;
    let (_, v) = introspect(&app, s(&plain["access_token"]), PORTAL_AUTH).await;
    assert_eq!(v["active"], true, "{v}");
    assert!(
        v.get("username").is_none(),
        "username without the email scope: {v}"
    );
    assert_eq!(v["scope"], "openid");

    // Nothing about tokens that are not (or no longer) valid.
    assert!(!active(&app, "nonsense", PORTAL_AUTH).await);
    assert!(!active(&app, &id["sid"].to_string(), PORTAL_AUTH).await);
    app.clock.advance(chrono::Duration::seconds(lifetime + 1));
    assert!(
        !active(&app, &access, PORTAL_AUTH).await,
        "an expired access token"
    );
    assert!(
        active(&app, &rt, PORTAL_AUTH).await,
        "the refresh token lives longer"
    );
}

/// Two codes from one browser, one with offline_access. After the page's sign-out:
/// userinfo 401 and introspection inactive at once, also on a second node; only the
/// offline_access refresh token outlives the session.
async fn page_sign_out_ends_the_tokens_at_once_on_every_node(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    // A second node on the same database, with the same clients and secret key.
    let mut node2 = TestApp::second_node(&app, String::new()).await;
    node2.stop();
    std::fs::copy(
        app.dir.path().join("secret.key"),
        node2.dir.path().join("secret.key"),
    )
    .expect("the secret key");
    node2.tweak = app.tweak.clone();
    node2.boot().await;

    let (c, back) = signed_in(&app, PORTAL, "openid email", &secret).await;
    let online = tokens(&app, PORTAL, &back).await;
    let l = visit(&c, &authorize(PORTAL, "openid email offline_access", "")).await;
    let offline = tokens(&app, PORTAL, &l.url).await;
    let accesses = [
        s(&online["access_token"]).to_owned(),
        s(&offline["access_token"]).to_owned(),
    ];
    for a in &accesses {
        for node in [&app, &node2] {
            assert!(active(node, a, PORTAL_AUTH).await);
            assert_eq!(userinfo(node, a).await.0, 200);
        }
    }

    sign_out_by_page(&c).await;
    for (i, a) in accesses.iter().enumerate() {
        let which = ["without offline_access", "with offline_access"][i];
        for node in [&app, &node2] {
            assert_eq!(
                userinfo(node, a).await.0,
                401,
                "userinfo after sign-out on {}, the access token {which}",
                node.url
            );
            assert!(
                !active(node, a, PORTAL_AUTH).await,
                "active after sign-out on {}, the access token {which}",
                node.url
            );
        }
    }
    if let Some(rt) = online["refresh_token"].as_str() {
        assert!(
            !active(&app, rt, PORTAL_AUTH).await,
            "a session's refresh token outlived it"
        );
        assert_eq!(refresh(&app, PORTAL, rt).await.1["error"], "invalid_grant");
    }
    let rt = s(&offline["refresh_token"]);
    assert!(
        active(&node2, rt, PORTAL_AUTH).await,
        "offline_access outlives the session"
    );
    // And refreshes, also on the other node: a new access token that works.
    let (status, r) = refresh(&node2, PORTAL, rt).await;
    assert_eq!(status, 200, "{r}");
    let fresh = s(&r["access_token"]);
    assert_eq!(userinfo(&app, fresh).await.0, 200);
    let (_, v) = introspect(&app, fresh, PORTAL_AUTH).await;
    assert_eq!(v["active"], true, "{v}");
}

async fn tokens_of_a_fresh_sign_in(app: &TestApp, secret: &str) -> (Client, Value) {
    let (c, back) = signed_in(app, PORTAL, "openid email", secret).await;
    let t = tokens(app, PORTAL, &back).await;
    assert!(active(app, s(&t["access_token"]), PORTAL_AUTH).await);
    (c, t)
}

/// The API's sign-out and RP-initiated logout (/oidc/logout with id_token_hint) end
/// the tokens the same way.
async fn api_and_rp_initiated_sign_out_end_the_tokens_too(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;

    let (c, t) = tokens_of_a_fresh_sign_in(&app, &secret).await;
    let r = c.post("/api/v1/logout", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let access = s(&t["access_token"]);
    assert_eq!(
        userinfo(&app, access).await.0,
        401,
        "after the API's sign-out"
    );
    assert!(!active(&app, access, PORTAL_AUTH).await);

    let (c, t) = tokens_of_a_fresh_sign_in(&app, &secret).await;
    let url = format!(
        "/oidc/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
        s(&t["id_token"]),
        enc(CB)
    );
    let l = visit(&c, &url).await;
    assert_eq!(l.url, format!("{CB}?state=bye"));
    let access = s(&t["access_token"]);
    assert_eq!(
        userinfo(&app, access).await.0,
        401,
        "after RP-initiated logout"
    );
    assert!(!active(&app, access, PORTAL_AUTH).await);

    // A code not yet exchanged when the session ends buys no live token.
    let (c, back) = signed_in(&app, PORTAL, "openid email", &secret).await;
    let code = code_in(&app, PORTAL, &back);
    sign_out_by_page(&c).await;
    let (status, t) = exchange(&app, PORTAL, &code).await;
    if status == 200 {
        let access = s(&t["access_token"]);
        assert_eq!(
            userinfo(&app, access).await.0,
            401,
            "a live token from an ended session"
        );
        assert!(!active(&app, access, PORTAL_AUTH).await);
    } else {
        assert_eq!(
            (status, t["error"].as_str()),
            (400, Some("invalid_grant")),
            "{t}"
        );
    }
}

async fn revocation_per_rfc_7009(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let (c, back) = signed_in(&app, PORTAL, "openid offline_access", &secret).await;
    let next = |scope: &'static str| {
        let c = &c;
        let app = &app;
        async move {
            let l = visit(c, &authorize(PORTAL, scope, "")).await;
            tokens(app, PORTAL, &l.url).await
        }
    };

    // A refresh token revoked: its whole family goes, every access token too (the
    // first, and the one from a refresh); the rotated-out refresh token was dead
    // already.
    let t = tokens(&app, PORTAL, &back).await;
    let (first_access, first_rt) = (s(&t["access_token"]), s(&t["refresh_token"]));
    let (status, t2) = refresh(&app, PORTAL, first_rt).await;
    assert_eq!(status, 200, "{t2}");
    assert!(
        !active(&app, first_rt, PORTAL_AUTH).await,
        "a rotated refresh token"
    );
    let (access, rt) = (s(&t2["access_token"]), s(&t2["refresh_token"]));
    let form = [("token", rt), ("token_type_hint", "refresh_token")];
    let (status, v) = revoke(&app, &form, PORTAL_AUTH).await;
    assert_eq!(status, 200, "{v}");
    assert!(!active(&app, rt, PORTAL_AUTH).await);
    for a in [first_access, access] {
        assert!(
            !active(&app, a, PORTAL_AUTH).await,
            "an access token of the family lives on"
        );
    }
    assert_eq!(userinfo(&app, access).await.0, 401);
    assert_eq!(refresh(&app, PORTAL, rt).await.1["error"], "invalid_grant");
    // Again, and unknown tokens: 200 all the same (RFC 7009 2.2).
    assert_eq!(revoke(&app, &form, PORTAL_AUTH).await.0, 200);
    assert_eq!(
        revoke(&app, &[("token", "nonsense")], PORTAL_AUTH).await.0,
        200
    );

    // An access token revoked (client_secret_post).
    let t = next("openid offline_access").await;
    let access = s(&t["access_token"]);
    let (status, _) = revoke(&app, &[("token", access)], Auth::Post("portal", SECRET)).await;
    assert_eq!(status, 200);
    assert!(!active(&app, access, PORTAL_AUTH).await);
    assert_eq!(userinfo(&app, access).await.0, 401);

    // Another client's token: 400 unauthorized_client, and it lives on.
    let t = next("openid offline_access").await;
    for token in [s(&t["access_token"]), s(&t["refresh_token"])] {
        let (status, e) = revoke(&app, &[("token", token)], Auth::Basic("extern", SECRET)).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("unauthorized_client")),
            "{e}"
        );
        assert!(
            active(&app, token, PORTAL_AUTH).await,
            "revoked by another client"
        );
    }
    // Wrong secret: 401; no token: 400 invalid_request.
    let (status, e) = revoke(
        &app,
        &[("token", s(&t["access_token"]))],
        Auth::Basic("portal", "fout"),
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
    let (status, e) = revoke(&app, &[], PORTAL_AUTH).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // A public client revokes its own token by client_id.
    let l = visit(&c, &authorize(SPA, "openid", "")).await;
    let t = tokens(&app, SPA, &l.url).await;
    let access = s(&t["access_token"]);
    assert_eq!(userinfo(&app, access).await.0, 200);
    let (status, v) = revoke(&app, &[("token", access)], Auth::Id("spa")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(userinfo(&app, access).await.0, 401);
}
