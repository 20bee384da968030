//! The authorization request's rules, without HTTP or storage.

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
    let mut r = request(&[("acr_values", &format!("{ACR_REMEMBERED} {ACR_TWO_FACTOR}"))]).unwrap();
    assert_eq!(r.decide(Some(&device), false, now), Next::Issue);
    // prompt=none: a wish is answered with what there is, an essential claim fails.
    let mut r = request(&[("acr_values", ACR_TWO_FACTOR), ("prompt", "none")]).unwrap();
    assert_eq!(r.decide(Some(&device), false, now), Next::Issue);
    let claims =
        format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{ACR_TWO_FACTOR}"]}}}}}}"#);
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
