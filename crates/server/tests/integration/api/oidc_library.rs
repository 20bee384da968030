//! The code flow with PKCE once more, now as a relying party built on an
//! independent OpenID Connect library (the `openidconnect` crate): discovery from
//! the issuer URL, the library's own authorization request, token exchange and ID
//! token verification (signature against the JWKS, issuer, audience, expiry,
//! nonce), with the sign-in in between through tweestap's pages (password, then the
//! app's code). And the refusals the library surfaces.

use crate::kit::{
    get, location, query_param, sign_in_through_pages, Backend, Client, TestApp, PASSWORD,
};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use tweestap_domain::clock::Clock;
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::oidc::discovery::ACR_TWO_FACTOR;

const SECRET: &str = "geheim-van-het-loket";
/// Never visited: the test reads the code from tweestap's redirect.
const CB: &str = "http://127.0.0.1:9/callback";

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

async fn app_with_loket(backend: Backend) -> TestApp {
    let hash = secret_hash(SECRET);
    TestApp::start_configured(backend, move |c| {
        c.oidc.clients = vec![
            tweestap::config::oidc::ClientConfig {
                id: "loket".into(),
                name: "Loket".into(),
                redirect_uris: vec![CB.into()],
                secret_hash: Some(hash.clone()),
                ..Default::default()
            },
            tweestap::config::oidc::ClientConfig {
                id: "loket-es".into(),
                name: "Loket (ES256)".into(),
                redirect_uris: vec![CB.into()],
                secret_hash: Some(hash.clone()),
                id_token_signed_response_alg: Some("ES256".into()),
                ..Default::default()
            },
        ];
    })
    .await
}

/// The library's HTTP client: no redirects followed, as its docs advise.
fn http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

async fn discover(
    app: &TestApp,
    http: &openidconnect::reqwest::Client,
    secret: &str,
) -> OidcClient {
    discover_as(app, http, "loket", secret).await
}

async fn discover_as(
    app: &TestApp,
    http: &openidconnect::reqwest::Client,
    client_id: &str,
    secret: &str,
) -> OidcClient {
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.url.clone()).expect("issuer"),
        http,
    )
    .await
    .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(CB.into()).expect("redirect"))
}

/// A request the library builds: its URL, state, nonce and PKCE verifier.
fn request(client: &OidcClient) -> (String, CsrfToken, Nonce, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    (url.to_string(), state, nonce, verifier)
}

/// The code from tweestap's redirect back, after checking the state.
fn code_from(back: &str, state: &CsrfToken) -> AuthorizationCode {
    assert!(back.starts_with(&format!("{CB}?")), "{back}");
    assert_eq!(
        query_param(back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    AuthorizationCode::new(query_param(back, "code").expect("code"))
}

/// A fresh code for the already signed-in browser `c`.
async fn code_for_signed_in(
    c: &Client,
    client: &OidcClient,
) -> (AuthorizationCode, Nonce, PkceCodeVerifier) {
    let (url, state, nonce, verifier) = request(client);
    let r = get(c, &url).await;
    assert_eq!(r.status().as_u16(), 302);
    (code_from(&location(&r), &state), nonce, verifier)
}

/// The tokens for `code`, exchanged by the library with the PKCE verifier.
async fn tokens(
    client: &OidcClient,
    http: &openidconnect::reqwest::Client,
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
) -> CoreTokenResponse {
    client
        .exchange_code(code)
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .expect("tokens")
}

/// The error code of a token request the provider refused.
fn refused<T: std::fmt::Debug, RE: std::error::Error + 'static>(
    r: Result<
        T,
        RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
    >,
) -> CoreErrorResponseType {
    match r {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        other => panic!("expected a refusal from the token endpoint, got {other:?}"),
    }
}

async fn code_flow_with_an_independent_client_library(backend: Backend) {
    let app = app_with_loket(backend).await;
    app.add_user("an@example.be").await;
    let (_, totp) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let http = http();
    let client = discover(&app, &http, SECRET).await;
    let c = app.client();

    // The library's authorization request: not signed in, so to the sign-in pages.
    let (url, state, nonce, verifier) = request(&client);
    assert!(
        url.starts_with(&format!("{}/oidc/authorize?", app.url)),
        "{url}"
    );
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let r = get(&c, &url).await;
    assert_eq!(r.status().as_u16(), 302);
    let login = location(&r);
    assert!(
        login.starts_with(&format!("{}/login?rd=", app.url)),
        "{login}"
    );
    sign_in_through_pages(&c, &app, &login, ("an@example.be", PASSWORD), &totp).await;
    let resume = location(&get(&c, "/").await);
    assert!(resume.contains("/oidc/authorize/resume?"), "{resume}");
    let back = location(&get(&c, &resume).await);
    let code = code_from(&back, &state);

    // The library exchanges the code with its verifier and checks the ID token:
    // signature against the JWKS, issuer, audience, expiry (on the test's clock) and nonce.
    let token = tokens(&client, &http, code.clone(), verifier).await;
    let id_token = token.id_token().expect("an ID token");
    let clock = app.clock.clone();
    let checker = client.id_token_verifier().set_time_fn(move || clock.now());
    let claims = id_token.claims(&checker, &nonce).expect("a valid ID token");
    assert_eq!(claims.issuer().as_str(), app.url);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("an@example.be"));
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"otp"), "{amr:?}");
    assert_eq!(
        claims.auth_context_ref().map(|a| a.as_str()),
        Some(ACR_TWO_FACTOR)
    );
    // at_hash, when given, binds the access token to the ID token.
    if let Some(expected) = claims.access_token_hash() {
        let actual = AccessTokenHash::from_token(
            token.access_token(),
            id_token.signing_alg().expect("alg"),
            id_token.signing_key(&checker).expect("key"),
        )
        .expect("hash");
        assert_eq!(&actual, expected);
    }
    // The same token with another nonce, or a day later, is refused by the library.
    assert!(id_token
        .claims(&checker, &Nonce::new("een-andere-nonce".into()))
        .is_err());
    let later = app.clock.clone();
    let expired = client
        .id_token_verifier()
        .set_time_fn(move || later.now() + chrono::Duration::days(1));
    assert!(id_token.claims(&expired, &nonce).is_err());
    // Another client's verifier (other audience) refuses it too.
    let other = CoreClient::from_provider_metadata(
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).unwrap(), &http)
            .await
            .unwrap(),
        ClientId::new("iemand-anders".into()),
        Some(ClientSecret::new(SECRET.into())),
    );
    let t = app.clock.clone();
    assert!(id_token
        .claims(
            &other.id_token_verifier().set_time_fn(move || t.now()),
            &nonce
        )
        .is_err());

    // The userinfo endpoint through the library, for the same subject.
    let info = client
        .user_info(token.access_token().clone(), Some(claims.subject().clone()))
        .expect("userinfo endpoint")
        .request_async::<openidconnect::EmptyAdditionalClaims, _, openidconnect::core::CoreGenderClaim>(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some("an@example.be"));

    // The same code again: refused.
    let again = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(43)))
        .request_async(&http)
        .await;
    assert_eq!(refused(again), CoreErrorResponseType::InvalidGrant);

    // A wrong client secret: invalid_client.
    let (code, _, verifier) = code_for_signed_in(&c, &client).await;
    let wrong = discover(&app, &http, "niet-het-geheim").await;
    let r = wrong
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await;
    assert_eq!(refused(r), CoreErrorResponseType::InvalidClient);

    // A wrong PKCE verifier: invalid_grant.
    let (code, _, _) = code_for_signed_in(&c, &client).await;
    let (_, someone_elses) = PkceCodeChallenge::new_random_sha256();
    let r = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(someone_elses)
        .request_async(&http)
        .await;
    assert_eq!(refused(r), CoreErrorResponseType::InvalidGrant);

    // No verifier at all for a code that was asked with a challenge: refused.
    let (code, _, _) = code_for_signed_in(&c, &client).await;
    let r = client
        .exchange_code(code)
        .unwrap()
        .request_async(&http)
        .await;
    let e = refused(r);
    assert!(
        matches!(
            e,
            CoreErrorResponseType::InvalidGrant | CoreErrorResponseType::InvalidRequest
        ),
        "{e:?}"
    );

    // And after all that, a fresh code with the right verifier still works.
    let (code, nonce, verifier) = code_for_signed_in(&c, &client).await;
    let token = tokens(&client, &http, code, verifier).await;
    let clock = app.clock.clone();
    token
        .id_token()
        .expect("an ID token")
        .claims(
            &client.id_token_verifier().set_time_fn(move || clock.now()),
            &nonce,
        )
        .expect("a valid ID token");
}

/// A client registered with `id_token_signed_response_alg = "ES256"` gets ID tokens
/// signed with the P-256 key, which the library verifies against the JWKS (and a
/// verifier limited to RS256 refuses); other clients keep RS256.
async fn es256_id_tokens_for_clients_that_ask(backend: Backend) {
    let app = app_with_loket(backend).await;
    app.add_user("an@example.be").await;
    let (_, totp) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let http = http();
    let c = app.client();
    sign_in_through_pages(&c, &app, "/login", ("an@example.be", PASSWORD), &totp).await;

    // Each client gets its own algorithm, from the same browser and sign-in; a
    // verifier that allows only the other algorithm refuses the token.
    use CoreJwsSigningAlgorithm::{EcdsaP256Sha256 as Es256, RsaSsaPkcs1V15Sha256 as Rs256};
    for (id, alg, other) in [("loket-es", Es256, Rs256), ("loket", Rs256, Es256)] {
        let client = discover_as(&app, &http, id, SECRET).await;
        let (code, nonce, verifier) = code_for_signed_in(&c, &client).await;
        let token = tokens(&client, &http, code, verifier).await;
        let id_token = token.id_token().expect("an ID token");
        assert_eq!(id_token.signing_alg().expect("alg"), &alg, "{id}");
        let verifier_for = |allowed: CoreJwsSigningAlgorithm| {
            let clock = app.clock.clone();
            client
                .id_token_verifier()
                .set_time_fn(move || clock.now())
                .set_allowed_algs(vec![allowed])
        };
        assert!(
            id_token.claims(&verifier_for(other), &nonce).is_err(),
            "{id}: a relying party that allows only the other algorithm refuses it"
        );
        let claims = id_token
            .claims(&verifier_for(alg), &nonce)
            .expect("a valid ID token");
        assert_eq!(claims.audiences()[0].as_str(), id);
        assert_eq!(
            claims.auth_context_ref().map(|a| a.as_str()),
            Some(ACR_TWO_FACTOR)
        );
    }
}

crate::on_both_backends!(
    code_flow_with_an_independent_client_library,
    es256_id_tokens_for_clients_that_ask
);
