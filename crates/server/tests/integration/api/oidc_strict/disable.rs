//! `tweestap user disable --email X`: the account's sessions and tokens end at once
//! (introspection inactive, userinfo 401), the portals hear it by back-channel
//! logout, and nobody signs in as it until `tweestap user enable --email X`.

use super::backchannel::{accepted, check_logout_token};
use super::browser::{password, sign_in_for, signed_in, visit};
use super::receiver::Receiver;
use super::*;

crate::on_both_backends!(a_disabled_account_is_signed_out_everywhere_until_enabled);

async fn a_disabled_account_is_signed_out_everywhere_until_enabled(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let bo_secret = person_named(&app, "bo@example.be").await;
    let auth = Auth::of(PORTAL);
    let (c, back) = signed_in(&app, PORTAL, "openid email offline_access", &secret).await;
    let t = tokens(&app, PORTAL, &back).await;
    let claims = id_claims(&app, &t, "portal").await;
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert!(active(&app, access, auth).await);

    // Someone else, signed in too, is not touched.
    let bo = app.client();
    let page = visit(&bo, &authorize(PORTAL, "openid", "")).await;
    let after = password(&bo, &page, "bo@example.be", PASSWORD).await;
    let bo_back = super::browser::code(&bo, &app, &after, &bo_secret, false).await;
    let bo_tokens = tokens(&app, PORTAL, &bo_back.url).await;

    let (ok, out, err) = cli(&app, &["user", "disable", "--email", EMAIL]).await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        userinfo(&app, access).await.0,
        401,
        "userinfo after disable"
    );
    assert!(
        !active(&app, access, auth).await,
        "access token active after disable"
    );
    assert!(
        !active(&app, rt, auth).await,
        "a disabled account's refresh token is active"
    );
    assert_eq!(refresh(&app, PORTAL, rt).await.1["error"], "invalid_grant");
    assert_eq!(
        c.get("/api/v1/me").await.status,
        401,
        "the browser is still signed in"
    );
    let l = visit(&c, &authorize(PORTAL, "openid", "&prompt=none")).await;
    assert_eq!(error_in(&app, PORTAL, &l.url), "login_required");
    assert!(
        active(&app, bo_tokens["access_token"].as_str().unwrap(), auth).await,
        "bo was cut off too"
    );
    catch_up_with_the_command_line(&app);
    let got = accepted(&rx, "/portal", 1).await;
    check_logout_token(
        &app,
        &got[0],
        "portal",
        claims["sub"].as_str().unwrap(),
        &claims["sid"],
    )
    .await;

    // Nobody signs in as the account: not through the API, not through the pages.
    let (s, body) = api_login(&app, EMAIL).await;
    assert_ne!(s, 200, "a disabled account signs in: {body}");
    let fresh = app.client();
    let page = visit(&fresh, &authorize(PORTAL, "openid", "")).await;
    let after = password(&fresh, &page, EMAIL, PASSWORD).await;
    assert!(
        !after.is_code_page(),
        "a disabled account is asked its code"
    );
    assert!(
        !after.left(&app.url),
        "a disabled account got back to the portal: {}",
        after.url
    );

    // Enabled again: the sign-in works; what was ended stays ended.
    let (ok, out, err) = cli(&app, &["user", "enable", "--email", EMAIL]).await;
    assert!(ok, "{out}\n{err}");
    let (s, body) = api_login(&app, EMAIL).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["state"], "second_factor", "{body}");
    let again = app.client();
    let back = sign_in_for(
        &again,
        &app,
        &authorize(PORTAL, "openid", ""),
        &secret,
        false,
    )
    .await;
    tokens(&app, PORTAL, &back).await;
    assert!(!active(&app, access, auth).await);

    // An unknown address is an error, not a silent success.
    let (ok, _, _) = cli(&app, &["user", "disable", "--email", "niemand@example.be"]).await;
    assert!(!ok, "disabling an unknown account succeeded");
}
