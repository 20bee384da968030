//! The OpenID Connect provider's foundations: discovery, the JWKS, key rotation
//! and clients (from the configuration file and `tweestap client ...`).

use crate::kit::commands::{output, tweestap_on};
use crate::kit::{Backend, TestApp};
use crate::on_both_backends;
use chrono::Duration;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::oidc::{ClientSource, SigningAlg};

on_both_backends!(
    discovery_document_names_every_endpoint_below_the_issuer,
    jwks_publishes_one_public_key_per_algorithm,
    keys_survive_a_restart,
    rotation_keeps_the_old_keys_published_until_the_retention_ends,
    cli_rotates_and_lists_keys,
    cli_adds_lists_and_removes_clients,
    clients_from_config_and_database_are_both_found,
);

/// GET a public document: its status, the headers that matter, its JSON.
async fn public_get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{}{path}", app.url)).await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers();
    assert_eq!(h["cache-control"], "public, max-age=300", "{path}");
    assert_eq!(h["access-control-allow-origin"], "*", "{path}");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    (status, r.json().await.unwrap())
}

async fn jwks(app: &TestApp) -> Vec<Value> {
    let (status, body) = public_get(app, "/oidc/jwks").await;
    assert_eq!(status, 200);
    body["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = keys
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

/// Verifies an ID token the way a relying party would: the key named by the
/// header's kid, taken from the published JWKS, checked with jsonwebtoken.
fn verify_against_jwks(token: &str, keys: &[Value]) -> Value {
    let kid = decode_header(token).unwrap().kid.expect("kid in header");
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not published"));
    let s = |k: &str| jwk[k].as_str().unwrap();
    let (key, alg) = match s("kty") {
        "RSA" => (
            DecodingKey::from_rsa_components(s("n"), s("e")).unwrap(),
            Algorithm::RS256,
        ),
        "EC" => (
            DecodingKey::from_ec_components(s("x"), s("y")).unwrap(),
            Algorithm::ES256,
        ),
        other => panic!("kty {other}"),
    };
    assert_eq!(jwk["alg"], format!("{alg:?}"));
    let mut v = Validation::new(alg);
    // The test clock is not the wall clock: expiry is not what is tested here.
    v.validate_exp = false;
    v.required_spec_claims.clear();
    v.set_audience(&["portaal"]);
    decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("{e}"))
        .claims
}

fn claims(app: &TestApp) -> Value {
    json!({
        "iss": app.url,
        "aud": "portaal",
        "sub": "an",
        "iat": app.clock_now(),
        "exp": app.clock_now() + 300,
    })
}

async fn discovery_document_names_every_endpoint_below_the_issuer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, d) = public_get(&app, "/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    let issuer = app.url.clone();
    assert_eq!(d["issuer"], issuer);
    for (key, path) in [
        ("authorization_endpoint", "/oidc/authorize"),
        ("token_endpoint", "/oidc/token"),
        ("userinfo_endpoint", "/oidc/userinfo"),
        ("end_session_endpoint", "/oidc/logout"),
        ("jwks_uri", "/oidc/jwks"),
        ("introspection_endpoint", "/oidc/introspect"),
        ("revocation_endpoint", "/oidc/revoke"),
        ("pushed_authorization_request_endpoint", "/oidc/par"),
    ] {
        assert_eq!(d[key], format!("{issuer}{path}"), "{key}");
    }
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(
        d["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(d["subject_types_supported"], json!(["public"]));
    assert_eq!(
        d["scopes_supported"],
        json!(["openid", "email", "profile", "offline_access"])
    );
    assert_eq!(d["ui_locales_supported"], json!(["nl", "en"]));
    for claim in [
        "sub",
        "email",
        "email_verified",
        "name",
        "auth_time",
        "amr",
        "acr",
    ] {
        assert!(
            d["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
    assert_eq!(
        d["acr_values_supported"],
        json!([
            "urn:tweestap:acr:pwd",
            "urn:tweestap:acr:remembered",
            "urn:tweestap:acr:mfa"
        ])
    );

    // With public_url set, that is the issuer, whatever address the node has.
    let app = TestApp::start_configured(app.backend.clone(), |c| {
        c.public_url = "https://login.tweestad.example/".into()
    })
    .await;
    let (_, d) = public_get(&app, "/.well-known/openid-configuration").await;
    assert_eq!(d["issuer"], "https://login.tweestad.example");
    assert_eq!(d["jwks_uri"], "https://login.tweestad.example/oidc/jwks");
}

async fn jwks_publishes_one_public_key_per_algorithm(backend: Backend) {
    let app = TestApp::start(backend).await;
    let keys = jwks(&app).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let rsa = keys.iter().find(|k| k["kty"] == "RSA").expect("RSA key");
    let ec = keys.iter().find(|k| k["kty"] == "EC").expect("EC key");
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(rsa["use"], "sig");
    assert_eq!(rsa["e"], "AQAB");
    assert!(
        rsa["n"].as_str().unwrap().len() >= 342,
        "2048 bits at least"
    );
    assert_eq!(ec["alg"], "ES256");
    assert_eq!(ec["use"], "sig");
    assert_eq!(ec["crv"], "P-256");
    assert_eq!(ec["x"].as_str().unwrap().len(), 43);
    assert_eq!(ec["y"].as_str().unwrap().len(), 43);
    for k in &keys {
        // Nothing private is published.
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "{private} in {k}");
        }
    }
    // What the engine signs verifies against what is published.
    for alg in SigningAlg::ALL {
        let token = app
            .engine()
            .sign_id_token(&claims(&app), alg)
            .await
            .unwrap();
        assert_eq!(verify_against_jwks(&token, &keys)["sub"], "an");
        assert_eq!(
            format!("{:?}", decode_header(&token).unwrap().alg),
            alg.as_str()
        );
    }
    // The private keys are stored sealed: no PKCS#8 algorithm identifier shows.
    let rsa_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    let ec_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    for k in app.engine().signing_keys().await.unwrap() {
        let sealed = &k.private_sealed;
        assert!(!sealed.windows(rsa_oid.len()).any(|w| w == rsa_oid));
        assert!(!sealed.windows(ec_oid.len()).any(|w| w == ec_oid));
    }
}

async fn keys_survive_a_restart(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let before = kids(&jwks(&app).await);
    app.restart().await;
    assert_eq!(kids(&jwks(&app).await), before);
    assert_eq!(app.engine().signing_keys().await.unwrap().len(), 2);
}

async fn rotation_keeps_the_old_keys_published_until_the_retention_ends(backend: Backend) {
    let app = TestApp::start(backend).await;
    let engine = app.engine();
    let old_tokens: Vec<String> = {
        let mut t = Vec::new();
        for alg in SigningAlg::ALL {
            t.push(engine.sign_id_token(&claims(&app), alg).await.unwrap());
        }
        t
    };
    let old = kids(&jwks(&app).await);

    let new = engine.rotate_signing_keys().await.unwrap();
    assert_eq!(new.len(), 2);
    let published = jwks(&app).await;
    assert_eq!(published.len(), 4);
    for k in &old {
        assert!(kids(&published).contains(k));
    }
    // Tokens signed before the rotation still verify; new ones use the new keys.
    for t in &old_tokens {
        verify_against_jwks(t, &published);
    }
    for alg in SigningAlg::ALL {
        let t = engine.sign_id_token(&claims(&app), alg).await.unwrap();
        let kid = decode_header(&t).unwrap().kid.unwrap();
        assert!(new.iter().any(|k| k.kid == kid && k.alg == alg));
        verify_against_jwks(&t, &published);
    }

    // Still published just before the 48 hours are over, and not purged.
    app.clock
        .advance(Duration::hours(48) - Duration::seconds(1));
    assert_eq!(engine.purge_retired_signing_keys().await.unwrap(), 0);
    assert_eq!(jwks(&app).await.len(), 4);
    for t in &old_tokens {
        verify_against_jwks(t, &jwks(&app).await);
    }
    // Then gone from the JWKS at once, and deleted by the sweep.
    app.clock.advance(Duration::seconds(2));
    let published = jwks(&app).await;
    assert_eq!(
        kids(&published),
        kids(&new.iter().map(|k| k.public_jwk.clone()).collect::<Vec<_>>())
    );
    assert_eq!(engine.purge_retired_signing_keys().await.unwrap(), 2);
    let stored = engine.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|k| k.is_active()));
}

/// Runs the `tweestap` binary on the app's data directory and database: whether it
/// succeeded, its stdout and its stderr.
async fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let mut c = tweestap_on(app);
    c.args(args);
    let out = output(c).await;
    (out.status.success(), out.stdout, out.stderr)
}

async fn cli_rotates_and_lists_keys(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = kids(&jwks(&app).await);
    let (ok, out, err) = cli(&app, &["keys", "rotate"]).await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("new RS256 key") && out.contains("new ES256 key"),
        "{out}"
    );
    assert!(out.contains("48 hours"), "{out}");
    let after = jwks(&app).await;
    assert_eq!(after.len(), 4);
    let (ok, out, err) = cli(&app, &["keys", "list"]).await;
    assert!(ok, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("KID"), "{out}");
    assert_eq!(lines.len(), 5, "{out}");
    for kid in &before {
        let line = lines.iter().find(|l| l.starts_with(kid.as_str())).unwrap();
        assert!(
            !line.trim_end().ends_with('-'),
            "retired when rotated: {line}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.trim_end().ends_with('-')).count(),
        2
    );
    // The audit log has the keys' first generation and the rotation with the new kids.
    let log = app.engine().audit_log(100, None).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|r| r.event == "signing_key_generated")
            .count(),
        2,
        "{log:?}"
    );
    let rotated = log
        .iter()
        .find(|r| r.event == "signing_keys_rotated")
        .expect("the rotation is audited");
    let detail = rotated.detail.as_deref().unwrap_or_default();
    let new: Vec<String> = kids(&after)
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert_eq!(new.len(), 2);
    for kid in &new {
        assert!(detail.contains(kid.as_str()), "{detail}");
    }
    assert!(detail.contains("command line"), "{detail}");
}

async fn cli_adds_lists_and_removes_clients(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Portaal",
            "--redirect-uri",
            "https://portaal.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let id = field_of(&out, "client_id:");
    let secret = field_of(&out, "client_secret:");
    assert!(err.contains("not shown again"), "{err}");

    let c = app.engine().client(&id).await.unwrap().expect("stored");
    assert_eq!(c.name, "Portaal");
    assert_eq!(c.source, ClientSource::Database);
    assert!(c.allows_redirect("https://portaal.example/cb"));
    assert!(c.allows_redirect("http://127.0.0.1:9000/cb"));
    assert!(!c.allows_redirect("https://portaal.example/cb/"));
    assert!(app.engine().verify_client_secret(&c, &secret));
    assert!(!app.engine().verify_client_secret(&c, "wrong"));
    // Only the hash is kept.
    assert_eq!(
        c.secret_hash.as_deref(),
        Some(secret_hash(&secret).as_str())
    );

    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "App",
            "--redirect-uri",
            "http://localhost:3000/cb",
            "--public",
            "--id-token-alg",
            "ES256",
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(!out.contains("client_secret"), "{out}");
    let public_id = field_of(&out, "client_id:");
    let public = app.engine().client(&public_id).await.unwrap().unwrap();
    assert!(public.is_public());
    assert_eq!(public.id_token_alg, SigningAlg::Es256);
    assert_eq!(c.id_token_alg, SigningAlg::Rs256, "the default");
    let (ok, _, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "X",
            "--redirect-uri",
            "https://x.example/cb",
            "--id-token-alg",
            "HS256",
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("RS256 or ES256"), "{err}");

    let (ok, out, _) = cli(&app, &["client", "list"]).await;
    assert!(ok);
    let line = out.lines().find(|l| l.starts_with(&id)).expect("listed");
    assert!(line.contains("Portaal") && line.contains("confidential") && line.contains("database"));
    assert!(line.contains("RS256"), "{line}");
    assert!(out
        .lines()
        .any(|l| l.starts_with(&public_id) && l.contains("ES256")));
    assert!(
        line.contains("https://portaal.example/cb http://127.0.0.1:9000/cb"),
        "{line}"
    );
    assert!(!out.contains(&secret));
    assert!(out
        .lines()
        .any(|l| l.starts_with(&public_id) && l.contains("public")));

    // Refusals: bad redirect URIs, no redirect URI.
    for bad in [
        "http://portaal.example/cb",
        "https://portaal.example/cb#frag",
        "/cb",
    ] {
        let (ok, out, err) = cli(
            &app,
            &["client", "add", "--name", "X", "--redirect-uri", bad],
        )
        .await;
        assert!(!ok, "{bad} accepted: {out}");
        assert!(err.contains("redirect URI"), "{err}");
    }
    let (ok, _, _) = cli(&app, &["client", "add", "--name", "X"]).await;
    assert!(!ok);
    assert_eq!(app.engine().clients().await.unwrap().len(), 2);

    let (ok, out, err) = cli(&app, &["client", "remove", &id]).await;
    assert!(ok, "{out}\n{err}");
    assert!(app.engine().client(&id).await.unwrap().is_none());
    let (ok, _, err) = cli(&app, &["client", "remove", &id]).await;
    assert!(!ok);
    assert!(err.contains("no client"), "{err}");

    // Adding and removing are in the audit log, never the secret.
    let log = app.engine().audit_log(100, None).await.unwrap();
    let added: Vec<&str> = log
        .iter()
        .filter(|r| r.event == "oidc_client_added")
        .filter_map(|r| r.detail.as_deref())
        .collect();
    assert_eq!(added.len(), 2, "{log:?}");
    assert!(added
        .iter()
        .any(|d| d.contains(&id) && d.contains("Portaal") && d.contains("confidential")));
    assert!(added.iter().all(|d| !d.contains(&secret)));
    let removed: Vec<&str> = log
        .iter()
        .filter(|r| r.event == "oidc_client_removed")
        .filter_map(|r| r.detail.as_deref())
        .collect();
    assert_eq!(removed.len(), 1, "{log:?}");
    assert!(removed[0].contains(&id));
}

fn field_of(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("{name} in {out}"))
        .trim()
        .to_owned()
}

async fn clients_from_config_and_database_are_both_found(backend: Backend) {
    let hash = secret_hash("geheim-uit-het-bestand");
    let app = TestApp::start_configured(backend, move |c| {
        c.oidc.clients = vec![tweestap::config::oidc::ClientConfig {
            id: "intranet".into(),
            name: "Intranet".into(),
            redirect_uris: vec!["https://intranet.example/oidc/callback".into()],
            secret_hash: Some(hash.clone()),
            ..Default::default()
        }];
    })
    .await;
    let engine = app.engine();
    let from_db = engine
        .add_client(
            "Portaal",
            &["https://portaal.example/cb".into()],
            false,
            SigningAlg::Rs256,
            Default::default(),
        )
        .await
        .unwrap();
    let secret = from_db
        .secret
        .clone()
        .expect("a confidential client has a secret");

    let configured = engine
        .client("intranet")
        .await
        .unwrap()
        .expect("config client");
    assert_eq!(configured.source, ClientSource::Config);
    assert!(engine.verify_client_secret(&configured, "geheim-uit-het-bestand"));
    assert!(!engine.verify_client_secret(&configured, &secret));
    let stored = engine.client(&from_db.client.id).await.unwrap().unwrap();
    assert!(engine.verify_client_secret(&stored, &secret));
    assert!(engine.client("unknown").await.unwrap().is_none());
    assert!(engine.client("not a valid id").await.unwrap().is_none());

    let all = engine.clients().await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec!["intranet", from_db.client.id.as_str()]
    );
    // A configured client is removed from the file, not the command line.
    assert!(matches!(
        engine.remove_client("intranet").await,
        Err(tweestap_domain::Error::ClientInConfig(_))
    ));
    // The command line, run here without the configuration file, lists the
    // database's client.
    let (ok, out, err) = cli(&app, &["client", "list"]).await;
    assert!(ok, "{err}");
    assert!(out.contains(&from_db.client.id));
}
