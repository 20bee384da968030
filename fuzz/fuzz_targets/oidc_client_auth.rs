//! How a client authenticates at the token, introspection, revocation and PAR
//! endpoints (HTTP Basic or the form), the token request's own parameters, and the
//! `Origin` a browser app calls from.
//!
//! Properties: `client_secret_basic` reads back any id and secret encoded as RFC 6749
//! (2.3.1) says, and whatever it reads re-encodes to the same credentials; Basic and
//! a form secret together are refused, as is a form `client_id` that contradicts
//! Basic; otherwise the id and secret taken are the ones presented. A PKCE verifier
//! accepted yields a challenge that is accepted too; a code or refresh token taken
//! from the form is one tweestap could have made. An `Origin` is allowed only when it
//! is exactly a registered redirect URI's origin.

#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use tweestap_domain::oidc::client::{validate_client_id, validate_redirect_uri};
use tweestap_domain::oidc::flow::{s256, valid_verifier};
use tweestap_domain::oidc::{ClientOptions, ClientSource, OidcClient, SigningAlg};
use tweestap_domain::token::Token;
use tweestap_web::fuzzing::{basic_credentials, presented_credentials};

/// Input: the Authorization header, the form body, an id and a secret to encode,
/// and an Origin header, separated by 0x1f.
struct Input<'a> {
    authorization: &'a [u8],
    form: &'a [u8],
    id: &'a str,
    secret: &'a str,
    origin: &'a str,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic(id: &str, secret: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let v = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    );
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&v).expect("base64 is a header"),
    );
    h
}

fuzz_target!(|data: &[u8]| {
    let [authorization, form, id, secret, origin] = tweestap_fuzz::fields(data);
    let (Some(id), Some(secret), Some(origin)) = (
        tweestap_fuzz::text(id),
        tweestap_fuzz::text(secret),
        tweestap_fuzz::text(origin),
    ) else {
        return;
    };
    let input = Input {
        authorization,
        form,
        id,
        secret,
        origin,
    };
    // Encoded as the RFC says, read back as given.
    assert_eq!(
        basic_credentials(&basic(input.id, input.secret)),
        Some(Some((input.id.to_owned(), input.secret.to_owned())))
    );

    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(input.authorization) {
        headers.insert(header::AUTHORIZATION, v);
    }
    let from_header = basic_credentials(&headers);
    if let Some(Some((id, secret))) = &from_header {
        assert_eq!(basic_credentials(&basic(id, secret)), from_header.clone());
    }

    let f: HashMap<String, String> = url::form_urlencoded::parse(input.form)
        .into_owned()
        .collect();
    let p = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match presented_credentials(&headers, &f) {
        Ok((id, secret)) => match from_header {
            Some(Some((basic_id, basic_secret))) => {
                assert!(p("client_secret").is_none());
                assert!(p("client_id").is_none_or(|c| c == basic_id));
                assert_eq!((id, secret), (basic_id, Some(basic_secret)));
            }
            Some(None) => panic!("malformed Basic credentials were taken"),
            None => {
                assert_eq!(Some(id.as_str()), p("client_id"));
                assert_eq!(secret.as_deref(), p("client_secret"));
            }
        },
        Err(e) => {
            if from_header.is_some() && p("client_secret").is_some() {
                assert_eq!(e.error, "invalid_request");
            }
        }
    }

    // The token request's own parameters.
    if let Some(v) = p("code_verifier").filter(|v| valid_verifier(v)) {
        assert!(valid_verifier(&s256(v)), "{v:?}");
    }
    for k in ["code", "refresh_token", "token"] {
        if let Some(t) = p(k).and_then(Token::from_client) {
            assert_eq!(t.as_str().len(), 43);
            assert!(t
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }
    if let Some(u) = p("redirect_uri").filter(|u| validate_redirect_uri(u).is_ok()) {
        assert!(
            !tweestap_fuzz::has_control_or_space(u) && !u.contains('#'),
            "{u:?}"
        );
        let parsed = url::Url::parse(u).expect("an absolute URL");
        assert!(
            parsed.username().is_empty() && parsed.password().is_none(),
            "{u:?}"
        );
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        assert!(
            parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback),
            "{u:?}"
        );
    }
    if let Some(id) = p("client_id").filter(|id| validate_client_id(id).is_ok()) {
        assert!((1..=128).contains(&id.len()));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
    }

    // CORS: only the redirect URIs' origins, exactly.
    let client = OidcClient {
        id: "app".into(),
        name: "App".into(),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1:3000/cb?x=1".into(),
            "https://bücher.example:8443/cb".into(),
        ],
        secret_hash: None,
        created_at: None,
        id_token_alg: SigningAlg::Rs256,
        source: ClientSource::Config,
        options: ClientOptions::default(),
    };
    if client.has_origin(input.origin) {
        assert!(
            [
                "https://app.example",
                "http://127.0.0.1:3000",
                "https://xn--bcher-kva.example:8443"
            ]
            .contains(&input.origin),
            "{:?}",
            input.origin
        );
    }
});
