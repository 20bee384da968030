//! The authorization request (`/oidc/authorize`'s query string), how it is decided
//! against the browser's session, and the answer sent back to the client.
//!
//! Properties: an accepted request asks for `openid` and `response_type=code`, its
//! scopes are de-duplicated words it asked for, its PKCE challenge is well-formed
//! (and present for a public client), `max_age` is not negative, `prompt=none` stands
//! alone, the client's own values (`state`, `nonce`, `login_hint`) are kept as given
//! and within their limits, and it survives being stored (JSON) unchanged. The
//! client's `state` comes back in the answer exactly. Deciding it: `prompt=none`
//! never shows a page; a code is only issued to a session that meets `prompt`,
//! `max_age` and `acr` and needs no consent; once a new sign-in is demanded, the old
//! sign-in (or a remembered browser) never satisfies it, while a new sign-in with
//! both factors does.

#![no_main]

use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use tweestap_domain::account::AccountId;
use tweestap_domain::oidc::acr::SignInProof;
use tweestap_domain::oidc::authorize::{AuthRequest, Next};
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::oidc::flow::valid_verifier;
use tweestap_domain::oidc::{ClientOptions, ClientSource, OidcClient, SigningAlg};
use tweestap_domain::session::{Session, SessionStage};
use tweestap_domain::token::TokenHash;
use tweestap_web::fuzzing::with_params;

const REDIRECT: &str = "https://portal.example/cb?tenant=1";
const METHODS: [&str; 8] = [
    "pwd",
    "pwd otp",
    "pwd sms",
    "pwd mfa",
    "pwd device",
    "otp",
    "",
    "device pwd otp",
];

/// Input: a byte of flags (bit 0: a public client; bit 1: third-party; bit 2: the
/// browser has a session; bit 3: consent is due), a byte choosing the session's
/// methods, then the query string, the session's age and the moment (seconds),
/// separated by 0x1f.
struct Input<'a> {
    query: &'a [u8],
    public: bool,
    third_party: bool,
    session: Option<(u8, u32)>,
    needs_consent: bool,
    now: u32,
}

fn session(methods: &str, auth_time: DateTime<Utc>) -> Session {
    Session {
        id_hash: TokenHash("0".repeat(64)),
        account_id: AccountId(Default::default()),
        stage: SessionStage::Authenticated,
        created_at: auth_time,
        last_seen_at: auth_time,
        auth_time,
        amr: methods.to_owned(),
        ip: None,
        user_agent: None,
        sid: "s".into(),
    }
}

fn stored(r: &AuthRequest) {
    let json = serde_json::to_string(r).expect("serialises");
    let back: AuthRequest = serde_json::from_str(&json).expect("reads back");
    assert_eq!(&back, r);
}

fuzz_target!(|data: &[u8]| {
    let [flags, methods] = match data {
        [f, m, ..] => [*f, *m],
        _ => return,
    };
    let [query, age, now] = tweestap_fuzz::fields(&data[2..]);
    let input = Input {
        query,
        public: flags & 1 != 0,
        third_party: flags & 2 != 0,
        session: (flags & 4 != 0)
            .then_some((methods, tweestap_fuzz::number(age).clamp(0, 1 << 31) as u32)),
        needs_consent: flags & 8 != 0,
        now: tweestap_fuzz::number(now).clamp(0, 1 << 31) as u32,
    };
    let q: HashMap<String, String> = url::form_urlencoded::parse(input.query)
        .into_owned()
        .collect();
    let p = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client = OidcClient {
        id: "portal".into(),
        name: "Portaal".into(),
        redirect_uris: vec![REDIRECT.into()],
        secret_hash: (!input.public).then(|| secret_hash("s3cret")),
        created_at: None,
        id_token_alg: SigningAlg::Rs256,
        source: ClientSource::Config,
        options: ClientOptions {
            third_party: input.third_party,
            ..Default::default()
        },
    };

    let mut r = match AuthRequest::from_params(&client, REDIRECT, p) {
        Ok(r) => r,
        Err(e) => {
            // The error goes back to the client with its state.
            let mut params = vec![
                ("error", e.error),
                ("error_description", e.description.as_str()),
            ];
            if let Some(s) = p("state") {
                params.push(("state", s));
            }
            let answer = url::Url::parse(&with_params(REDIRECT, &params)).expect("an answer URL");
            let state: Vec<String> = answer
                .query_pairs()
                .filter(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .collect();
            assert_eq!(
                state,
                p("state")
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            );
            return;
        }
    };

    // What an accepted request holds.
    assert_eq!(p("response_type"), Some("code"));
    let asked: Vec<&str> = p("scope").unwrap_or_default().split(' ').collect();
    let scopes: Vec<&str> = r.scopes().collect();
    assert!(scopes.contains(&"openid"), "{:?}", r.scope);
    assert_eq!(r.scope.split(' ').count(), scopes.len(), "{:?}", r.scope);
    for (i, s) in scopes.iter().enumerate() {
        assert!(
            asked.contains(s) && !scopes[..i].contains(s),
            "{:?}",
            r.scope
        );
    }
    match &r.code_challenge {
        Some(c) => {
            assert!(valid_verifier(c), "{c:?}");
            assert_eq!(p("code_challenge_method"), Some("S256"));
        }
        None => assert!(!input.public, "a public client without PKCE"),
    }
    assert!(r.max_age.is_none_or(|m| m >= 0));
    assert!(!r.prompt.none || !(r.prompt.login || r.prompt.consent || r.prompt.select_account));
    for (k, v) in [
        ("state", &r.state),
        ("nonce", &r.nonce),
        ("login_hint", &r.login_hint),
    ] {
        assert_eq!(v.as_deref(), p(k));
        assert!(v.as_ref().is_none_or(|v| v.len() <= 2048));
    }
    stored(&r);

    // The code goes back to the client with its state, exactly.
    let mut params = vec![("code", "c0de")];
    if let Some(s) = &r.state {
        params.push(("state", s));
    }
    let answer = url::Url::parse(&with_params(&r.redirect_uri, &params)).expect("an answer URL");
    assert_eq!(
        answer.as_str().split('?').next(),
        REDIRECT.split('?').next()
    );
    let state: Vec<String> = answer
        .query_pairs()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(state, r.state.iter().cloned().collect::<Vec<_>>());

    // The decision.
    let now =
        DateTime::<Utc>::from_timestamp(1_700_000_000 + i64::from(input.now), 0).expect("a moment");
    let old = input.session.map(|(m, age)| {
        session(
            METHODS[usize::from(m) % METHODS.len()],
            now - Duration::seconds(i64::from(age) + 1),
        )
    });
    let next = r.decide(old.as_ref(), input.needs_consent, now);
    stored(&r);
    if r.prompt.none {
        assert!(
            matches!(next, Next::Issue | Next::Refuse(_)),
            "prompt=none: {next:?}"
        );
    }
    match &next {
        Next::Issue => {
            let s = old.as_ref().expect("a code only for a session");
            assert!(!input.needs_consent && !r.prompt.login && !r.prompt.select_account);
            if let Some(m) = r.max_age {
                assert!(
                    m > 0 && (now - s.auth_time).num_seconds() <= m,
                    "max_age {m}: {s:?}"
                );
            }
            if let Some(a) = r.acr {
                let level = SignInProof::of(&s.amr).level;
                assert!(
                    level >= a.level || (r.prompt.none && !a.essential),
                    "{a:?}: {s:?}"
                );
            }
        }
        Next::SignIn(d) => {
            assert_eq!(*d, r.sign_in);
            if d.skip_remembered_device {
                assert_eq!(r.reauth_after, Some(now));
            }
        }
        _ => {}
    }

    // Back from the sign-in pages.
    if let Next::SignIn(d) = next {
        assert_eq!(r.resume(None, false, now), Next::SignIn(d));
        let later = now + Duration::seconds(5);
        if r.reauth_after.is_some() {
            if let Some(s) = &old {
                assert!(
                    matches!(r.resume(Some(s), false, later), Next::SignIn(_)),
                    "the old sign-in counted: {s:?}"
                );
            }
            if d.skip_remembered_device {
                let remembered = session("pwd device", now + Duration::seconds(1));
                assert!(matches!(
                    r.resume(Some(&remembered), false, later),
                    Next::SignIn(_)
                ));
            }
        }
        let fresh = session("pwd otp", now + Duration::seconds(1));
        assert_eq!(r.resume(Some(&fresh), false, later), Next::Issue, "{r:?}");
    }
});
