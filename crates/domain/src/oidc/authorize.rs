//! The authorization request (OIDC Core 3.1.2.1) as the provider reads it, and
//! what it needs of the browser's sign-in: issue a code now, sign in (again, with
//! both factors), ask for consent or for the account, or refuse.
//!
//! Pure rules, no HTTP and no storage: the web layer hands in the parameters and the
//! browser's session, and does what [`Next`] says.

use super::acr::{AuthLevel, SignInProof};
use super::client::OidcClient;
use super::flow::OidcError;
use crate::session::Session;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `prompt` values (OIDC Core 3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// A requested `acr`: the weakest level the portal accepts, and whether it is
/// essential (the `claims` parameter) or only wished for (`acr_values`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcrDemand {
    pub level: AuthLevel,
    pub essential: bool,
}

/// What the sign-in pages must do for this request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignInDemand {
    /// A remembered browser does not stand in for the second factor.
    pub skip_remembered_device: bool,
    /// Someone without a second factor sets one up first.
    pub require_second_factor: bool,
}

/// A validated authorization request, kept while the person signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: Option<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    #[serde(default)]
    pub prompt: Prompt,
    #[serde(default)]
    pub acr: Option<AcrDemand>,
    /// The sign-in must have happened at or after this moment (set when the request
    /// needed a fresh one: `prompt=login`, an exceeded `max_age`, a higher `acr`).
    #[serde(default)]
    pub reauth_after: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sign_in: SignInDemand,
    /// Pushed (RFC 9126) and not yet used at the authorization endpoint.
    #[serde(default)]
    pub pushed: bool,
    /// When it reached the authorization endpoint: a sign-in since then is fresh
    /// for `max_age` whatever its length.
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
}

/// The longest `state`, `nonce` or `login_hint` kept (a pending request is stored,
/// so strangers must not make it large).
const MAX_PARAM: usize = 2048;
/// The longest `scope`, `acr_values` and `claims`.
const MAX_LIST: usize = 4096;

/// What to do with a request, given the browser's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Issue the code now.
    Issue,
    /// Send the browser through the sign-in pages, then back.
    SignIn(SignInDemand),
    /// Ask the person to allow the client its scopes.
    Consent,
    /// Ask which account to continue with.
    SelectAccount,
    /// Answer the client with this error.
    Refuse(OidcError),
}

fn invalid(why: &str) -> OidcError {
    OidcError::new("invalid_request", why)
}

fn valid_challenge(c: &str) -> bool {
    super::flow::valid_verifier(c)
}

/// The `acr` asked for, from `acr_values` (voluntary) and the `claims` parameter's
/// `id_token.acr` (essential when it says so). Values we do not know are ignored
/// unless essential and nothing else is acceptable.
fn acr_demand(
    acr_values: Option<&str>,
    claims: Option<&str>,
) -> Result<Option<AcrDemand>, OidcError> {
    let mut levels: Vec<AuthLevel> = Vec::new();
    let mut essential = false;
    let mut essential_unknown = false;
    if let Some(c) = claims {
        let v: serde_json::Value = serde_json::from_str(c)
            .map_err(|_| invalid("the claims parameter is not a JSON object"))?;
        if !v.is_object() {
            return Err(invalid("the claims parameter is not a JSON object"));
        }
        let acr = &v["id_token"]["acr"];
        if acr.is_object() {
            let mut values: Vec<&str> = Vec::new();
            if let Some(s) = acr["value"].as_str() {
                values.push(s);
            }
            if let Some(a) = acr["values"].as_array() {
                values.extend(a.iter().filter_map(|x| x.as_str()));
            }
            let known: Vec<AuthLevel> = values
                .iter()
                .filter_map(|s| AuthLevel::from_acr(s))
                .collect();
            if acr["essential"].as_bool() == Some(true) && !values.is_empty() {
                essential = true;
                essential_unknown = known.is_empty();
            }
            levels.extend(known);
        }
    }
    if !essential {
        levels.extend(
            acr_values
                .unwrap_or_default()
                .split(' ')
                .filter_map(AuthLevel::from_acr),
        );
    }
    if essential_unknown {
        return Err(OidcError::new(
            "unmet_authentication_requirements",
            "none of the essential acr values is offered here",
        ));
    }
    Ok(levels
        .into_iter()
        .min()
        .map(|level| AcrDemand { level, essential }))
}

impl AuthRequest {
    /// Reads an authorization request for `client` whose `redirect_uri` is already
    /// checked; `p` gives a parameter (absent when empty). An error goes back to the
    /// client's redirect URI.
    pub fn from_params<'a>(
        client: &OidcClient,
        redirect_uri: &str,
        p: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Self, OidcError> {
        for (k, max) in [
            ("state", MAX_PARAM),
            ("nonce", MAX_PARAM),
            ("login_hint", MAX_PARAM),
            ("scope", MAX_LIST),
            ("acr_values", MAX_LIST),
            ("claims", MAX_LIST),
        ] {
            if p(k).is_some_and(|v| v.len() > max) {
                return Err(invalid(&format!("{k} is longer than {max} bytes")));
            }
        }
        if p("request").is_some() {
            return Err(OidcError::new(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if p("response_type") != Some("code") {
            return Err(OidcError::new(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        if p("response_mode").is_some_and(|m| m != "query") {
            return Err(invalid("only response_mode=query is supported"));
        }
        let scope = p("scope").unwrap_or_default();
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(OidcError::new(
                "invalid_scope",
                "the scope must include openid",
            ));
        }
        let challenge = p("code_challenge");
        match (challenge, p("code_challenge_method")) {
            (Some(c), Some("S256")) if valid_challenge(c) => {}
            (Some(_), Some("S256")) => return Err(invalid("the code_challenge is malformed")),
            (Some(_), _) | (None, Some(_)) => {
                return Err(invalid(
                    "PKCE needs code_challenge with code_challenge_method=S256",
                ))
            }
            (None, None) if client.is_public() => {
                return Err(invalid(
                    "a public client must use PKCE (code_challenge with S256)",
                ))
            }
            (None, None) => {}
        }
        let max_age = match p("max_age").map(str::parse::<i64>) {
            None => None,
            Some(Ok(n)) if n >= 0 => Some(n),
            Some(_) => return Err(invalid("max_age must be a number of seconds")),
        };
        let mut prompt = Prompt::default();
        for v in p("prompt").unwrap_or_default().split(' ') {
            match v {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => prompt.select_account = true,
                "" => {}
                other => return Err(invalid(&format!("unknown prompt value {other:?}"))),
            }
        }
        if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
            return Err(invalid("prompt=none cannot be combined"));
        }
        let acr = acr_demand(p("acr_values"), p("claims"))?;
        // Scopes are de-duplicated and kept in the order given.
        let mut scopes: Vec<&str> = Vec::new();
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        Ok(Self {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope: scopes.join(" "),
            state: p("state").map(str::to_owned),
            nonce: p("nonce").map(str::to_owned),
            code_challenge: challenge.map(str::to_owned),
            max_age,
            login_hint: p("login_hint").map(str::to_owned),
            prompt,
            acr,
            reauth_after: None,
            sign_in: SignInDemand::default(),
            pushed: false,
            received_at: None,
        })
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether the person must be asked to consent: always on `prompt=consent`, and
    /// for a third-party client until they allowed every scope asked.
    pub fn needs_consent(&self, client: &OidcClient, consented: Option<&str>) -> bool {
        if self.prompt.consent {
            return true;
        }
        if !client.options.third_party {
            return false;
        }
        match consented {
            None => true,
            Some(c) => self.scopes().any(|s| !c.split(' ').any(|g| g == s)),
        }
    }

    /// The decision when the request arrives (`/oidc/authorize`). Sets
    /// `reauth_after` and `sign_in` when the person must sign in (again).
    pub fn decide(
        &mut self,
        session: Option<&Session>,
        needs_consent: bool,
        now: DateTime<Utc>,
    ) -> Next {
        self.received_at = Some(now);
        let wants = self.acr.map(|a| a.level);
        let require_second_factor = wants.is_some_and(|l| l > AuthLevel::Password);
        let Some(s) = session else {
            if self.prompt.none {
                return Next::Refuse(OidcError::new(
                    "login_required",
                    "the person is not signed in here",
                ));
            }
            self.sign_in = SignInDemand {
                skip_remembered_device: self.prompt.login
                    || self.max_age == Some(0)
                    || wants == Some(AuthLevel::TwoFactor),
                require_second_factor,
            };
            if self.sign_in.skip_remembered_device {
                self.reauth_after = Some(now);
            }
            return Next::SignIn(self.sign_in);
        };
        let level = SignInProof::of(&s.amr).level;
        let too_old = self.prompt.login
            || self.max_age.is_some_and(|m| {
                m == 0 || (now - s.auth_time).num_milliseconds() > m.saturating_mul(1000)
            });
        let too_weak = wants.is_some_and(|w| level < w);
        let essential = self.acr.is_some_and(|a| a.essential);
        if too_old || (too_weak && (!self.prompt.none || essential)) {
            if self.prompt.none {
                return Next::Refuse(if too_old {
                    OidcError::new("login_required", "a new sign-in is needed")
                } else {
                    OidcError::new(
                        "unmet_authentication_requirements",
                        "the sign-in does not meet the essential acr",
                    )
                });
            }
            // Re-authentication: the password and the second factor, whatever the
            // browser remembers.
            self.sign_in = SignInDemand {
                skip_remembered_device: true,
                require_second_factor,
            };
            self.reauth_after = Some(now);
            return Next::SignIn(self.sign_in);
        }
        self.after_sign_in(needs_consent, true)
    }

    /// The decision when the browser comes back from the sign-in pages (or from a
    /// question asked on the way): every requirement is checked again against the
    /// session it brings, which need not be the one the request first met.
    pub fn resume(
        &self,
        session: Option<&Session>,
        needs_consent: bool,
        now: DateTime<Utc>,
    ) -> Next {
        let Some(s) = session else {
            return Next::SignIn(self.sign_in);
        };
        if let Some(after) = self.reauth_after {
            let used_device = SignInProof::used_remembered_device(&s.amr);
            if s.auth_time < after || (self.sign_in.skip_remembered_device && used_device) {
                return Next::SignIn(self.sign_in);
            }
        }
        // A sign-in from before the request must still be within max_age.
        if let Some(max) = self.max_age {
            let before = self.received_at.is_none_or(|r| s.auth_time < r);
            let old = max == 0 || (now - s.auth_time).num_milliseconds() > max.saturating_mul(1000);
            if before && old {
                return Next::SignIn(SignInDemand {
                    skip_remembered_device: true,
                    ..self.sign_in
                });
            }
        }
        let level = SignInProof::of(&s.amr).level;
        if let Some(a) = self.acr {
            // Signed in for this request and still weaker: an essential acr fails; a
            // wished-for one is answered with the acr there is.
            if level < a.level && a.essential {
                return Next::Refuse(OidcError::new(
                    "unmet_authentication_requirements",
                    "the sign-in does not meet the essential acr",
                ));
            }
        }
        self.after_sign_in(needs_consent, false)
    }

    /// The decision once the person chose to go on with the account signed in:
    /// only for a request that asked which account, and only when that account's
    /// sign-in meets everything else the request asks.
    pub fn account_chosen(
        &self,
        session: &Session,
        needs_consent: bool,
        now: DateTime<Utc>,
    ) -> Next {
        if !self.prompt.select_account {
            return Next::Refuse(invalid("no account was to be chosen"));
        }
        self.resume(Some(session), needs_consent, now)
    }

    fn after_sign_in(&self, needs_consent: bool, may_choose_account: bool) -> Next {
        if may_choose_account && self.prompt.select_account {
            return Next::SelectAccount;
        }
        if needs_consent {
            if self.prompt.none {
                return Next::Refuse(OidcError::new(
                    "consent_required",
                    "the person has not allowed this client yet",
                ));
            }
            return Next::Consent;
        }
        Next::Issue
    }
}

#[cfg(test)]
mod tests;
