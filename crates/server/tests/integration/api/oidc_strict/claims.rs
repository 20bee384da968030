//! Claims released by scope (openid: sub only; email: email and email_verified;
//! profile: name), in the ID token and at userinfo; refreshed ID tokens without the
//! nonce; a clear error for a missing code_verifier; and the same seen through the
//! `openidconnect` crate.

use super::browser::{sign_in_for, visit};
use super::*;
use crate::kit::Client;
use tweestap_domain::clock::Clock;

crate::on_both_backends!(
    claims_follow_the_scopes,
    refreshed_id_tokens_have_no_nonce_and_keep_the_sign_in,
    a_missing_code_verifier_is_an_invalid_request,
    the_library_sees_only_what_the_scopes_release,
);

/// Tokens for `scope` from the signed-in browser `c`.
async fn tokens_for(c: &Client, app: &TestApp, scope: &str) -> Value {
    let l = visit(c, &authorize(PORTAL, scope, "")).await;
    tokens(app, PORTAL, &l.url).await
}

fn absent(v: &Value, names: &[&str], what: &str) {
    for n in names {
        assert!(v.get(*n).is_none(), "{what}: {n} released: {v}");
    }
}

async fn claims_follow_the_scopes(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let sub = account_id(&app, EMAIL).await;
    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;

    // openid alone: sub, and the sign-in's facts; nothing about the person.
    let t = tokens(&app, PORTAL, &back).await;
    let id = id_claims(&app, &t, "portal").await;
    assert_eq!(id["sub"], sub.as_str());
    for member in [
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "sid",
    ] {
        assert!(id.get(member).is_some(), "{member} missing: {id}");
    }
    absent(
        &id,
        &["email", "email_verified", "name"],
        "scope=openid, ID token",
    );
    let (s, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["sub"], sub.as_str());
    absent(
        &info,
        &["email", "email_verified", "name"],
        "scope=openid, userinfo",
    );

    // openid email: the address, verified; no name.
    let t = tokens_for(&c, &app, "openid email").await;
    let id = id_claims(&app, &t, "portal").await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    for (v, what) in [(&id, "ID token"), (&info, "userinfo")] {
        assert_eq!(v["email"], EMAIL, "{what}: {v}");
        assert_eq!(v["email_verified"], true, "{what}: {v}");
        absent(v, &["name"], &format!("scope=openid email, {what}"));
        assert_eq!(v["sub"], sub.as_str());
    }

    // openid profile: the name; no address.
    let t = tokens_for(&c, &app, "openid profile").await;
    let id = id_claims(&app, &t, "portal").await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    for (v, what) in [(&id, "ID token"), (&info, "userinfo")] {
        assert_eq!(v["name"], "Test Gebruiker", "{what}: {v}");
        absent(
            v,
            &["email", "email_verified"],
            &format!("scope=openid profile, {what}"),
        );
    }

    // All of it.
    let t = tokens_for(&c, &app, "openid email profile").await;
    let (_, info) = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (info["email"].as_str(), info["name"].as_str()),
        (Some(EMAIL), Some("Test Gebruiker"))
    );
    assert_eq!(
        t["scope"].as_str().map(|s| s.split(' ').count()),
        Some(3),
        "{t}"
    );
}

/// OIDC Core 12.2: a refreshed ID token has no nonce, the original auth_time, the
/// same sub and sid, and a new iat.
async fn refreshed_id_tokens_have_no_nonce_and_keep_the_sign_in(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let url = authorize(PORTAL, "openid email offline_access", "");
    let back = sign_in_for(&c, &app, &url, &secret, false).await;
    let t = tokens(&app, PORTAL, &back).await;
    let first = id_claims(&app, &t, "portal").await;
    assert_eq!(first["nonce"], "n-1");

    app.clock.advance(chrono::Duration::minutes(20));
    let (s, r) = refresh(
        &app,
        PORTAL,
        t["refresh_token"].as_str().expect("refresh_token"),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let again = id_claims(&app, &r, "portal").await;
    assert!(
        again.get("nonce").is_none(),
        "a refreshed ID token carries the nonce: {again}"
    );
    for same in ["sub", "auth_time", "sid", "acr", "amr"] {
        assert_eq!(again[same], first[same], "{same}");
    }
    assert!(again["iat"].as_i64().unwrap() >= first["iat"].as_i64().unwrap() + 1200);
    assert_consistent(&again);
}

/// A code asked with a code_challenge, exchanged without a code_verifier: 400
/// invalid_request (the request lacks a required parameter), and the code is spent
/// or still refused afterwards with a wrong one.
async fn a_missing_code_verifier_is_an_invalid_request(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    let code = code_in(&app, PORTAL, &back);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
    ];
    let (s, e) = call(&app, "/oidc/token", &form, Auth::of(PORTAL)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );

    // The public client too.
    let l = visit(&c, &authorize(SPA, "openid", "")).await;
    let code = code_in(&app, SPA, &l.url);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", SPA_CB),
    ];
    let (s, e) = call(&app, "/oidc/token", &form, Auth::of(SPA)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
}

/// The `openidconnect` crate asks scope=openid only, verifies the ID token (JWKS,
/// issuer, audience, expiry on the app's clock, nonce) and finds no email or name,
/// neither in the token nor at userinfo; sid and acr are there.
async fn the_library_sees_only_what_the_scopes_release(backend: Backend) {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
    };
    use openidconnect::{
        ClientId, ClientSecret, CsrfToken, EmptyAdditionalClaims, IssuerUrl, Nonce,
        PkceCodeChallenge, RedirectUrl, TokenResponse,
    };
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(PORTAL.id.into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let c = app.client();
    let back = sign_in_for(&c, &app, url.as_str(), &secret, false).await;
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        param(&back, "iss").as_deref(),
        Some(app.url.as_str()),
        "RFC 9207"
    );
    let token = client
        .exchange_code(openidconnect::AuthorizationCode::new(
            param(&back, "code").unwrap(),
        ))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("tokens");
    let clock = app.clock.clone();
    let checker = client.id_token_verifier().set_time_fn(move || clock.now());
    let claims = token
        .id_token()
        .expect("id token")
        .claims(&checker, &nonce)
        .expect("valid");
    assert!(claims.email().is_none());
    assert!(claims.name().is_none());
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_MFA));
    let info = client
        .user_info(
            openidconnect::OAuth2TokenResponse::access_token(&token).clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async::<EmptyAdditionalClaims, _, CoreGenderClaim>(&http)
        .await
        .expect("userinfo");
    assert!(info.email().is_none());
    assert!(info.name().is_none());
}
