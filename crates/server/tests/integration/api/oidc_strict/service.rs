//! The client_credentials grant (RFC 6749 4.4) for clients registered as services:
//! an access token with the registered scopes and audience, no ID token, no
//! refresh token, no subject; refused to everyone else.

use super::*;

crate::on_both_backends!(
    services_get_access_tokens_for_their_registered_scopes,
    only_services_use_client_credentials,
    the_command_line_registers_services_and_strict_clients,
);

const ZAKEN: Auth<'static> = Auth::Basic("zaken-robot", SERVICE_SECRET);

async fn grant(app: &TestApp, scope: Option<&str>, auth: Auth<'_>) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    call(app, "/oidc/token", &form, auth).await
}

fn sorted(scope: &Value) -> Vec<String> {
    let mut v: Vec<String> = scope
        .as_str()
        .unwrap_or_else(|| panic!("scope: {scope}"))
        .split(' ')
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

async fn services_get_access_tokens_for_their_registered_scopes(backend: Backend) {
    let app = app_with(backend, None).await;
    let (s, t) = grant(&app, None, ZAKEN).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert!(t["expires_in"].as_i64().is_some_and(|e| e > 0), "{t}");
    assert_eq!(sorted(&t["scope"]), ["zaken:lezen", "zaken:schrijven"]);
    for absent in ["id_token", "refresh_token"] {
        assert!(t.get(absent).is_none(), "{absent} for a service: {t}");
    }
    let access = t["access_token"].as_str().expect("access_token");
    // RFC 6749 5.1: tokens are never cached.
    let r = reqwest::Client::new()
        .post(format!("{}/oidc/token", app.url))
        .basic_auth("zaken-robot", Some(SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");

    // Introspected by the service itself.
    for auth in [ZAKEN, Auth::Post("zaken-robot", SERVICE_SECRET)] {
        let (s, v) = introspect(&app, access, auth).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["active"], true, "{v}");
        assert_eq!(audiences(&v["aud"]), [API_AUDIENCE], "{v}");
        assert_eq!(v["client_id"], "zaken-robot");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["iss"], app.url.as_str());
        assert_eq!(sorted(&v["scope"]), ["zaken:lezen", "zaken:schrijven"]);
        for absent in ["sub", "username", "sid"] {
            assert!(v.get(absent).is_none(), "{absent} for a service token: {v}");
        }
    }
    // No person behind it: userinfo has nothing to say.
    assert_ne!(userinfo(&app, access).await.0, 200);

    // A narrower scope (client_secret_post), and none outside the registration.
    let (s, t) = grant(
        &app,
        Some("zaken:lezen"),
        Auth::Post("zaken-robot", SERVICE_SECRET),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["scope"], "zaken:lezen");
    for bad in [
        "zaken:wissen",
        "zaken:lezen zaken:wissen",
        "openid",
        "offline_access",
    ] {
        let (s, e) = grant(&app, Some(bad), ZAKEN).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("invalid_scope")),
            "{bad}: {e}"
        );
    }

    // Without an audience in the registration, the audience is the client itself.
    let robot = Auth::Basic("status-robot", SERVICE_SECRET);
    let (s, t) = grant(&app, None, robot).await;
    assert_eq!(s, 200, "{t}");
    let (_, v) = introspect(&app, t["access_token"].as_str().unwrap(), robot).await;
    assert_eq!(audiences(&v["aud"]), ["status-robot"], "{v}");
    assert_eq!(v["scope"], "status");

    // Revoked by the service: inactive.
    let (s, _) = revoke(&app, &[("token", access)], ZAKEN).await;
    assert_eq!(s, 200);
    assert!(!active(&app, access, ZAKEN).await);
}

async fn only_services_use_client_credentials(backend: Backend) {
    let app = app_with(backend, None).await;
    for (auth, what) in [
        (Auth::Basic("portal", SECRET), "a first-party portal"),
        (Auth::Basic("extern", SECRET), "a third party"),
        (Auth::Basic("strikt", SECRET), "a PAR client"),
    ] {
        let (s, e) = grant(&app, None, auth).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("unauthorized_client")),
            "{what}: {e}"
        );
    }
    // A public client cannot authenticate at all; a wrong secret is no service.
    let (s, e) = grant(&app, None, Auth::Id("spa")).await;
    assert!(
        (s, e["error"].as_str()) == (401, Some("invalid_client"))
            || (s, e["error"].as_str()) == (400, Some("unauthorized_client")),
        "a public client: {s} {e}"
    );
    let (s, e) = grant(&app, None, Auth::Basic("zaken-robot", "fout")).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (401, Some("invalid_client")),
        "{e}"
    );
    // A service signs nobody in: no authorization requests, no other grants.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/oidc/authorize?response_type=code&client_id=zaken-robot&redirect_uri={}&scope=openid",
            app.url,
            enc(CB)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "an authorization request of a service"
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("redirect_uri", CB),
    ];
    let (s, e) = call(&app, "/oidc/token", &form, ZAKEN).await;
    assert_eq!(s, 400, "{e}");
    assert!(
        matches!(
            e["error"].as_str(),
            Some("unauthorized_client" | "invalid_grant")
        ),
        "{e}"
    );
}

/// A client_id and secret printed by `tweestap client add`.
fn registered(out: &str) -> (&'static str, Option<&'static str>) {
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| &*Box::leak(v.trim().to_owned().into_boxed_str()))
    };
    (
        field("client_id:").expect("client_id"),
        field("client_secret:"),
    )
}

/// `tweestap client add --service --scope S --audience A` makes a service (no
/// redirect URI needed); `--require-par` a client that takes only pushed requests;
/// `--third-party` one that asks consent. What they were registered with holds.
async fn the_command_line_registers_services_and_strict_clients(backend: Backend) {
    let app = app_with(backend, None).await;
    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Archief",
            "--service",
            "--scope",
            "archief:lezen",
            "--scope",
            "archief:schrijven",
            "--audience",
            "https://archief.example",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let (id, secret) = registered(&out);
    let auth = Auth::Basic(id, secret.expect("a service has a secret"));
    let (s, t) = grant(&app, Some("archief:lezen"), auth).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["scope"], "archief:lezen");
    let (_, v) = introspect(&app, t["access_token"].as_str().unwrap(), auth).await;
    assert_eq!(audiences(&v["aud"]), ["https://archief.example"], "{v}");
    let (s, e) = grant(&app, Some("zaken:lezen"), auth).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );
    // A service with a redirect URI, or scopes for a portal: refused.
    for args in [
        &[
            "client",
            "add",
            "--name",
            "X",
            "--service",
            "--redirect-uri",
            CB,
        ][..],
        &[
            "client",
            "add",
            "--name",
            "X",
            "--redirect-uri",
            CB,
            "--scope",
            "zaken:lezen",
        ][..],
        &["client", "add", "--name", "X", "--service", "--public"][..],
    ] {
        let (ok, out, _) = cli(&app, args).await;
        assert!(!ok, "{args:?} accepted: {out}");
    }

    let cb = "https://streng.example/cb";
    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Streng",
            "--redirect-uri",
            cb,
            "--require-par",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let (id, secret) = registered(&out);
    let strict = Rp { id, secret, cb };
    let c = app.client();
    let l = super::browser::visit(&c, &authorize(strict, "openid", "")).await;
    assert_eq!(error_in(&app, strict, &l.url), "invalid_request");
    let form = [
        ("response_type", "code"),
        ("client_id", id),
        ("redirect_uri", cb),
        ("scope", "openid"),
        ("state", "st-1"),
    ];
    let (s, v) = call(&app, "/oidc/par", &form, Auth::of(strict)).await;
    assert_eq!(s, 201, "{v}");

    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Derde",
            "--redirect-uri",
            "https://derde.example/cb",
            "--third-party",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let (id, secret) = registered(&out);
    let third = Rp {
        id,
        secret,
        cb: "https://derde.example/cb",
    };
    let secret_app = person(&app).await;
    super::browser::sign_in_for(
        &c,
        &app,
        &authorize(PORTAL, "openid", ""),
        &secret_app,
        false,
    )
    .await;
    let l = super::browser::visit(&c, &authorize(third, "openid", "&prompt=none")).await;
    assert_eq!(error_in(&app, third, &l.url), "consent_required");
}
