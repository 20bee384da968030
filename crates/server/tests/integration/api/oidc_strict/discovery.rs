//! The metadata a strict client reads: OpenID Connect Discovery and the same
//! document as OAuth 2.0 Authorization Server Metadata (RFC 8414), with the RFC 9207
//! flag, the new endpoints and what they accept.

use super::*;
use serde_json::json;

crate::on_both_backends!(
    both_metadata_documents_name_the_new_endpoints,
    an_independent_library_discovers_the_provider
);

async fn document(app: &TestApp, path: &str) -> Value {
    let r = reqwest::get(format!("{}{path}", app.url))
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200, "{path}");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    r.json().await.expect("json")
}

fn has(list: &Value, item: &str) -> bool {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .any(|v| v == item)
}

async fn both_metadata_documents_name_the_new_endpoints(backend: Backend) {
    let app = app_with(backend, None).await;
    let oidc = document(&app, "/.well-known/openid-configuration").await;
    let oauth = document(&app, "/.well-known/oauth-authorization-server").await;
    let iss = app.url.clone();
    for d in [&oidc, &oauth] {
        assert_eq!(d["issuer"], iss);
        assert_eq!(
            d["authorization_response_iss_parameter_supported"], true,
            "RFC 9207"
        );
        for (key, path) in [
            ("authorization_endpoint", "/oidc/authorize"),
            ("token_endpoint", "/oidc/token"),
            ("jwks_uri", "/oidc/jwks"),
            ("introspection_endpoint", "/oidc/introspect"),
            ("revocation_endpoint", "/oidc/revoke"),
            ("pushed_authorization_request_endpoint", "/oidc/par"),
        ] {
            assert_eq!(d[key], format!("{iss}{path}"), "{key}");
        }
        assert_eq!(d["require_pushed_authorization_requests"], false);
        assert_eq!(d["backchannel_logout_supported"], true);
        assert_eq!(d["backchannel_logout_session_supported"], true);
        assert_eq!(d["claims_parameter_supported"], true);
        for g in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(has(&d["grant_types_supported"], g), "{g}");
        }
        let mut prompts: Vec<&str> = d["prompt_values_supported"]
            .as_array()
            .expect("prompt_values_supported")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        prompts.sort_unstable();
        assert_eq!(prompts, ["consent", "login", "none", "select_account"]);
        for key in [
            "introspection_endpoint_auth_methods_supported",
            "revocation_endpoint_auth_methods_supported",
        ] {
            assert!(has(&d[key], "client_secret_basic"), "{key}: {}", d[key]);
            assert!(has(&d[key], "client_secret_post"), "{key}: {}", d[key]);
        }
        // Public clients may revoke their own tokens (client_id only); nobody
        // introspects without a secret.
        assert!(!has(
            &d["introspection_endpoint_auth_methods_supported"],
            "none"
        ));
        // Weakest first, as the contract orders them.
        assert_eq!(
            d["acr_values_supported"],
            json!([ACR_PWD, ACR_REMEMBERED, ACR_MFA])
        );
        for claim in [
            "sid",
            "acr",
            "amr",
            "auth_time",
            "email",
            "email_verified",
            "name",
        ] {
            assert!(has(&d["claims_supported"], claim), "{claim}");
        }
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    }
    // One provider, one story: the two documents agree on every member they share.
    for (k, v) in oidc.as_object().unwrap() {
        if let Some(o) = oauth.get(k) {
            assert_eq!(o, v, "{k} differs between the two documents");
        }
    }
    assert_eq!(oidc["end_session_endpoint"], format!("{iss}/oidc/logout"));
    assert_eq!(oidc["userinfo_endpoint"], format!("{iss}/oidc/userinfo"));
}

/// The `openidconnect` crate discovers the provider and finds what it needs.
async fn an_independent_library_discovers_the_provider(backend: Backend) {
    use openidconnect::core::CoreProviderMetadata;
    use openidconnect::IssuerUrl;
    let app = app_with(backend, None).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).unwrap(), &http)
            .await
            .expect("discovery through the library");
    assert_eq!(metadata.issuer().as_str(), app.url);
    let acrs: Vec<&str> = metadata
        .acr_values_supported()
        .expect("acr_values_supported")
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert!(
        acrs.contains(&ACR_MFA) && acrs.contains(&ACR_REMEMBERED),
        "{acrs:?}"
    );
    assert_eq!(metadata.claims_parameter_supported(), Some(true));
}
