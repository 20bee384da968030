//! The OpenID Provider metadata (OpenID Connect Discovery 1.0, section 3).

use serde_json::{json, Value};

/// Where each endpoint lives, below the issuer.
pub const AUTHORIZE_PATH: &str = "/oidc/authorize";
pub const TOKEN_PATH: &str = "/oidc/token";
pub const USERINFO_PATH: &str = "/oidc/userinfo";
pub const LOGOUT_PATH: &str = "/oidc/logout";
pub const JWKS_PATH: &str = "/oidc/jwks";
pub const INTROSPECTION_PATH: &str = "/oidc/introspect";
pub const REVOCATION_PATH: &str = "/oidc/revoke";
pub const PAR_PATH: &str = "/oidc/par";

pub use super::acr::{ACR_PASSWORD, ACR_REMEMBERED, ACR_TWO_FACTOR};

/// How clients authenticate at the token, introspection, revocation and PAR
/// endpoints (`none`: a public client by its id, where that is allowed).
const CLIENT_AUTH: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// The discovery document of the issuer `issuer` (no trailing slash).
pub fn document(issuer: &str) -> Value {
    let at = |path: &str| format!("{issuer}{path}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": at(AUTHORIZE_PATH),
        "token_endpoint": at(TOKEN_PATH),
        "userinfo_endpoint": at(USERINFO_PATH),
        "jwks_uri": at(JWKS_PATH),
        "end_session_endpoint": at(LOGOUT_PATH),
        "introspection_endpoint": at(INTROSPECTION_PATH),
        "revocation_endpoint": at(REVOCATION_PATH),
        "pushed_authorization_request_endpoint": at(PAR_PATH),
        "require_pushed_authorization_requests": false,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        // RS256 unless a client is registered with id_token_signed_response_alg ES256.
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH,
        // Introspection is for confidential clients only.
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH,
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
            "email", "email_verified", "name"
        ],
        "acr_values_supported": [ACR_PASSWORD, ACR_REMEMBERED, ACR_TWO_FACTOR],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["nl", "en"],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // RFC 9207: every authorization response carries iss.
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_hang_below_the_issuer() {
        let d = super::document("https://login.example");
        assert_eq!(d["issuer"], "https://login.example");
        assert_eq!(d["jwks_uri"], "https://login.example/oidc/jwks");
        assert_eq!(
            d["end_session_endpoint"],
            "https://login.example/oidc/logout"
        );
        assert_eq!(d["code_challenge_methods_supported"][0], "S256");
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            d["introspection_endpoint"],
            "https://login.example/oidc/introspect"
        );
    }
}
