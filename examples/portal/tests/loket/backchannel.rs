//! `POST /backchannel-logout`: a logout token as OIDC Back-Channel Logout 1.0
//! section 2.6 asks ends the sessions it names (200); anything else is a 400 and
//! ends nothing. Both answers say `Cache-Control: no-store`.

use crate::provider::{loket, Key, Person, Provider, EVENT, SECRET};
use crate::Browser;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// POSTs `logout_token`: the status, and whether the answer said no-store.
pub async fn deliver(loket: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{loket}/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Whether `b` is still signed in at Loket (its home page, no trip to sign in).
pub async fn signed_in(b: &mut Browser, loket: &str) -> bool {
    let r = b.http.get(format!("{loket}/")).send().await.unwrap();
    r.status().as_u16() == 200
}

/// Signs a new browser in as `sub` in tweestap session `sid`.
pub async fn browser_of(p: &Provider, loket: &str, sub: &str, sid: &str) -> Browser {
    p.next_person(Person::new(sub, sid));
    let mut b = Browser::new();
    let l = b.open(&format!("{loket}/")).await;
    assert!(l.body.contains("Welkom"), "{}", l.body);
    assert!(signed_in(&mut b, loket).await);
    b
}

#[tokio::test]
async fn a_logout_token_ends_the_sessions_of_its_sid() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut an_here = browser_of(&p, &loket, "an", "sessie-1").await;
    let mut an_there = browser_of(&p, &loket, "an", "sessie-1").await;
    let mut an_elsewhere = browser_of(&p, &loket, "an", "sessie-2").await;
    let mut bert = browser_of(&p, &loket, "bert", "sessie-3").await;

    let (status, _) = deliver(&loket, &p.logout_token("an", "sessie-1")).await;
    assert_eq!(status, 200);
    assert!(!signed_in(&mut an_here, &loket).await);
    assert!(!signed_in(&mut an_there, &loket).await);
    assert!(signed_in(&mut an_elsewhere, &loket).await);
    assert!(signed_in(&mut bert, &loket).await);

    // A session already gone is fine too.
    let (status, _) = deliver(&loket, &p.logout_token("an", "sessie-1")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_logout_token_with_only_sub_ends_all_of_its_sessions() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut one = browser_of(&p, &loket, "an", "sessie-1").await;
    let mut two = browser_of(&p, &loket, "an", "sessie-2").await;
    let mut bert = browser_of(&p, &loket, "bert", "sessie-3").await;
    let mut claims = p.logout_claims("an", "x");
    claims.as_object_mut().unwrap().remove("sid");
    let token = p.sign(json!({ "typ": "logout+jwt", "kid": p.kid() }), &claims);
    assert_eq!(deliver(&loket, &token).await.0, 200);
    assert!(!signed_in(&mut one, &loket).await);
    assert!(!signed_in(&mut two, &loket).await);
    assert!(signed_in(&mut bert, &loket).await);
}

/// `token` is refused with 400, and the session lives on.
async fn refused(loket: &str, b: &mut Browser, why: &str, token: String) {
    let (status, body) = deliver(loket, &token).await;
    assert_eq!(status, 400, "{why}: {body}");
    assert_eq!(body["error"], "invalid_request", "{why}");
    assert!(signed_in(b, loket).await, "{why}: the session was ended");
}

#[tokio::test]
async fn tokens_that_fail_a_check_of_section_2_6_are_refused() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = browser_of(&p, &loket, "an", "sessie-1").await;
    let header = json!({ "typ": "logout+jwt", "kid": p.kid() });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = p.logout_claims("an", "sessie-1");
        f(&mut c);
        p.sign(header.clone(), &c)
    };

    let cases: Vec<(&str, String)> = vec![
        (
            "another audience",
            with(&|c| c["aud"] = json!("ander-loket")),
        ),
        (
            "an audience list without us",
            with(&|c| c["aud"] = json!(["ander-loket"])),
        ),
        (
            "another issuer",
            with(&|c| c["iss"] = json!("https://elders.example")),
        ),
        ("no iat", with(&|c| c["iat"] = Value::Null)),
        (
            "an iat of ten minutes ago",
            with(&|c| {
                let iat = c["iat"].as_i64().unwrap() - 600;
                c["iat"] = json!(iat);
                c["exp"] = json!(iat + 120);
            }),
        ),
        (
            "an iat in the future",
            with(&|c| c["iat"] = json!(c["iat"].as_i64().unwrap() + 600)),
        ),
        (
            "expired",
            with(&|c| c["exp"] = json!(c["iat"].as_i64().unwrap() - 60)),
        ),
        ("no events", with(&|c| c["events"] = Value::Null)),
        (
            "another event",
            with(&|c| c["events"] = json!({ "http://example.com/other": {} })),
        ),
        (
            "the event not an object",
            with(&|c| c["events"] = json!({ EVENT: "ja" })),
        ),
        ("a nonce", with(&|c| c["nonce"] = json!("n-0S6_WzA2Mj"))),
        (
            "neither sid nor sub",
            with(&|c| {
                let o = c.as_object_mut().unwrap();
                o.remove("sid");
                o.remove("sub");
            }),
        ),
        ("typ JWT (an ID token)", {
            p.sign(
                json!({ "typ": "JWT", "kid": p.kid() }),
                &p.logout_claims("an", "sessie-1"),
            )
        }),
        ("a signature by another key with the same kid", {
            Key::new(&p.kid()).sign(header.clone(), &p.logout_claims("an", "sessie-1"))
        }),
        ("a signature by an unknown key", {
            Key::new("onbekend").sign(
                json!({ "typ": "logout+jwt", "kid": "onbekend" }),
                &p.logout_claims("an", "sessie-1"),
            )
        }),
        ("claims changed after signing", {
            let t = p.logout_token("bert", "sessie-1");
            let parts: Vec<&str> = t.split('.').collect();
            let forged = URL_SAFE_NO_PAD.encode(p.logout_claims("an", "sessie-1").to_string());
            format!("{}.{forged}.{}", parts[0], parts[2])
        }),
        ("alg none", {
            let c = p.logout_claims("an", "sessie-1");
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "logout+jwt"}).to_string()),
                URL_SAFE_NO_PAD.encode(c.to_string())
            )
        }),
        ("HS256 with the client secret", {
            let t = p.logout_token("an", "sessie-1");
            let parts: Vec<&str> = t.split('.').collect();
            let h = URL_SAFE_NO_PAD
                .encode(json!({"alg": "HS256", "typ": "logout+jwt", "kid": p.kid()}).to_string());
            let input = format!("{h}.{}", parts[1]);
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
            let sig = ring::hmac::sign(&key, input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }),
        ("encrypted (JWE)", "a.b.c.d.e".to_owned()),
        ("not a JWT", "uitloggen".to_owned()),
    ];
    for (why, token) in cases {
        refused(&loket, &mut b, why, token).await;
    }

    // No logout_token at all.
    let r = reqwest::Client::new()
        .post(format!("{loket}/backchannel-logout"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");

    // A good token once; the same token again is a replay.
    let token = p.logout_token("an", "sessie-1");
    assert_eq!(deliver(&loket, &token).await.0, 200);
    assert!(!signed_in(&mut b, &loket).await);
    let mut again = browser_of(&p, &loket, "an", "sessie-1").await;
    refused(&loket, &mut again, "a replayed jti", token).await;
}
