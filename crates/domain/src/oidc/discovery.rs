//! The OpenID Provider metadata (OpenID Connect Discovery 1.0, section 3).

use serde_json::{json, Value};

/// Where each endpoint lives, below the issuer.
pub const AUTHORIZE_PATH: &str = "/oidc/authorize";
pub const TOKEN_PATH: &str = "/oidc/token";
pub const USERINFO_PATH: &str = "/oidc/userinfo";
pub const LOGOUT_PATH: &str = "/oidc/logout";
pub const JWKS_PATH: &str = "/oidc/jwks";

/// `acr` values: whether a second factor was used.
pub const ACR_PASSWORD: &str = "urn:tweestap:acr:pwd";
pub const ACR_TWO_FACTOR: &str = "urn:tweestap:acr:mfa";

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
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        // RS256 unless a client is registered with id_token_signed_response_alg ES256.
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
            "email", "email_verified", "name"
        ],
        "acr_values_supported": [ACR_PASSWORD, ACR_TWO_FACTOR],
        "ui_locales_supported": ["nl", "en"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
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
    }
}
