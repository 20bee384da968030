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
mod tests {
    use super::*;
    use crate::account::AccountId;
    use crate::oidc::acr::{ACR_PASSWORD, ACR_REMEMBERED, ACR_TWO_FACTOR};
    use crate::oidc::client::{ClientOptions, ClientSource};
    use crate::oidc::keys::SigningAlg;
    use crate::session::SessionStage;
    use crate::token::TokenHash;
    use chrono::Duration;
    use std::collections::HashMap;

    fn client(third_party: bool) -> OidcClient {
        OidcClient {
            id: "loket".into(),
            name: "Loket".into(),
            redirect_uris: vec!["https://loket.example/cb".into()],
            secret_hash: Some("ab".repeat(32)),
            created_at: None,
            id_token_alg: SigningAlg::Rs256,
            source: ClientSource::Config,
            options: ClientOptions {
                third_party,
                ..ClientOptions::default()
            },
        }
    }

    fn request(extra: &[(&str, &str)]) -> Result<AuthRequest, OidcError> {
        let mut q: HashMap<&str, &str> = [("response_type", "code"), ("scope", "openid email")]
            .into_iter()
            .collect();
        q.extend(extra.iter().copied());
        AuthRequest::from_params(&client(false), "https://loket.example/cb", |k| {
            q.get(k).copied().filter(|v| !v.is_empty())
        })
    }

    fn session(amr: &str, auth_time: DateTime<Utc>) -> Session {
        Session {
            id_hash: TokenHash("h".into()),
            account_id: AccountId(uuid::Uuid::nil()),
            stage: SessionStage::Authenticated,
            created_at: auth_time,
            last_seen_at: auth_time,
            auth_time,
            amr: amr.into(),
            ip: None,
            user_agent: None,
            sid: "s".into(),
        }
    }

    fn error(n: Next) -> &'static str {
        match n {
            Next::Refuse(e) => e.error,
            other => panic!("not refused: {other:?}"),
        }
    }

    const REAUTH: SignInDemand = SignInDemand {
        skip_remembered_device: true,
        require_second_factor: false,
    };

    #[test]
    fn a_recent_enough_sign_in_gets_its_code() {
        let now = Utc::now();
        let s = session("pwd device", now - Duration::seconds(30));
        let mut r = request(&[("max_age", "60")]).unwrap();
        assert_eq!(r.decide(Some(&s), false, now), Next::Issue);
        assert_eq!(r.reauth_after, None);
    }

    #[test]
    fn prompt_login_and_max_age_ask_both_factors_again() {
        let now = Utc::now();
        for extra in [
            [("prompt", "login")],
            [("max_age", "0")],
            [("max_age", "1")],
        ] {
            let s = session("pwd otp", now - Duration::seconds(2));
            let mut r = request(&extra).unwrap();
            assert_eq!(
                r.decide(Some(&s), false, now),
                Next::SignIn(REAUTH),
                "{extra:?}"
            );
            assert_eq!(r.reauth_after, Some(now));
            // Back with the old session (or a remembered browser): again.
            assert_eq!(r.resume(Some(&s), false, now), Next::SignIn(REAUTH));
            let device = session("pwd device", now + Duration::seconds(1));
            assert_eq!(r.resume(Some(&device), false, now), Next::SignIn(REAUTH));
            // Both factors since: the code.
            let fresh = session("pwd otp", now + Duration::milliseconds(1));
            assert_eq!(r.resume(Some(&fresh), false, now), Next::Issue);
        }
        // max_age=0 forces it even within the same millisecond.
        let s = session("pwd otp", now);
        let mut r = request(&[("max_age", "0")]).unwrap();
        assert_eq!(r.decide(Some(&s), false, now), Next::SignIn(REAUTH));
    }

    #[test]
    fn a_higher_acr_is_a_step_up_and_an_essential_one_is_never_faked() {
        let now = Utc::now();
        let device = session("pwd device", now);
        let mut r = request(&[("acr_values", ACR_TWO_FACTOR)]).unwrap();
        let step_up = SignInDemand {
            skip_remembered_device: true,
            require_second_factor: true,
        };
        assert_eq!(r.decide(Some(&device), false, now), Next::SignIn(step_up));
        // Remembered is enough when that is what is asked.
        let mut r =
            request(&[("acr_values", &format!("{ACR_REMEMBERED} {ACR_TWO_FACTOR}"))]).unwrap();
        assert_eq!(r.decide(Some(&device), false, now), Next::Issue);
        // prompt=none: a wish is answered with what there is, an essential claim fails.
        let mut r = request(&[("acr_values", ACR_TWO_FACTOR), ("prompt", "none")]).unwrap();
        assert_eq!(r.decide(Some(&device), false, now), Next::Issue);
        let claims = format!(
            r#"{{"id_token":{{"acr":{{"essential":true,"values":["{ACR_TWO_FACTOR}"]}}}}}}"#
        );
        let mut r = request(&[("claims", &claims), ("prompt", "none")]).unwrap();
        assert_eq!(
            error(r.decide(Some(&device), false, now)),
            "unmet_authentication_requirements"
        );
        // Signed in again for the request, still weaker (a stripped form): refused.
        let mut r = request(&[("claims", &claims)]).unwrap();
        assert!(matches!(
            r.decide(Some(&device), false, now),
            Next::SignIn(_)
        ));
        let pwd_only = session("pwd", now + Duration::seconds(1));
        assert_eq!(
            error(r.resume(Some(&pwd_only), false, now)),
            "unmet_authentication_requirements"
        );
        let mfa = session("pwd sms", now + Duration::seconds(1));
        assert_eq!(r.resume(Some(&mfa), false, now), Next::Issue);
        // An essential value nobody offers.
        let unknown = r#"{"id_token":{"acr":{"essential":true,"value":"urn:other:loa:4"}}}"#;
        assert_eq!(
            request(&[("claims", unknown)]).unwrap_err().error,
            "unmet_authentication_requirements"
        );
        assert_eq!(
            request(&[("claims", "[1]")]).unwrap_err().error,
            "invalid_request"
        );
        assert_eq!(
            request(&[("claims", "{")]).unwrap_err().error,
            "invalid_request"
        );
        assert!(request(&[("acr_values", ACR_PASSWORD)])
            .unwrap()
            .acr
            .is_some());
    }

    #[test]
    fn prompts_are_answered_per_oidc_core() {
        let now = Utc::now();
        let s = session("pwd otp", now);
        let mut r = request(&[("prompt", "none")]).unwrap();
        assert_eq!(error(r.decide(None, false, now)), "login_required");
        assert_eq!(error(r.decide(Some(&s), true, now)), "consent_required");
        assert_eq!(r.decide(Some(&s), false, now), Next::Issue);
        let mut r = request(&[("prompt", "select_account")]).unwrap();
        assert_eq!(r.decide(Some(&s), false, now), Next::SelectAccount);
        assert_eq!(r.account_chosen(&s, false, now), Next::Issue);
        assert_eq!(r.account_chosen(&s, true, now), Next::Consent);
        // Not asked: no choosing.
        let plain = request(&[]).unwrap();
        assert_eq!(
            error(plain.account_chosen(&s, false, now)),
            "invalid_request"
        );
        // Choosing does not skip prompt=login or an essential acr.
        let earlier = session("pwd otp", now - Duration::seconds(1));
        let mut r = request(&[("prompt", "select_account login")]).unwrap();
        assert_eq!(r.decide(Some(&earlier), false, now), Next::SignIn(REAUTH));
        assert_eq!(r.account_chosen(&earlier, false, now), Next::SignIn(REAUTH));
        let r = request(&[("prompt", "consent")]).unwrap();
        assert!(r.needs_consent(&client(false), Some("openid email")));
        let r = request(&[]).unwrap();
        assert!(!r.needs_consent(&client(false), None));
        assert!(r.needs_consent(&client(true), None));
        assert!(r.needs_consent(&client(true), Some("openid")));
        assert!(!r.needs_consent(&client(true), Some("email openid profile")));
        for bad in ["none login", "none consent", "sometimes"] {
            assert_eq!(
                request(&[("prompt", bad)]).unwrap_err().error,
                "invalid_request",
                "{bad}"
            );
        }
        for bad in ["-1", "x", "99999999999999999999"] {
            assert_eq!(
                request(&[("max_age", bad)]).unwrap_err().error,
                "invalid_request",
                "{bad}"
            );
        }
        // A request begun elsewhere still holds its max_age against an old sign-in;
        // one made after the request is fresh however long it took.
        let mut r = request(&[("max_age", "60")]).unwrap();
        assert!(matches!(r.decide(None, false, now), Next::SignIn(_)));
        let old = session("pwd otp", now - Duration::seconds(600));
        let later = now + Duration::seconds(90);
        assert!(
            matches!(r.resume(Some(&old), false, later), Next::SignIn(d) if d.skip_remembered_device)
        );
        let fresh = session("pwd otp", now + Duration::seconds(1));
        assert_eq!(r.resume(Some(&fresh), false, later), Next::Issue);
        let long = "x".repeat(2049);
        assert_eq!(
            request(&[("state", &long)]).unwrap_err().error,
            "invalid_request"
        );
        // A huge max_age is simply never exceeded.
        let mut r = request(&[("max_age", &i64::MAX.to_string())]).unwrap();
        assert_eq!(r.decide(Some(&s), false, now), Next::Issue);
    }
}
