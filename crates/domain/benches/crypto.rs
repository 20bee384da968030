//! Micro-benchmarks of the cryptographic building blocks of a sign-in.
//!
//! Run with `cargo bench -p tweestap-domain --bench crypto`; results are recorded in
//! docs/benchmarks.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark code: a broken expectation stops the run"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tweestap_domain::oidc::keys;
use tweestap_domain::oidc::{SigningAlg, SigningKey};
use tweestap_domain::password::{Argon2Settings, PasswordHasher};
use tweestap_domain::secret_box::{MasterKey, SecretBox};
use tweestap_domain::token::Token;
use tweestap_domain::totp::{hotp, Algorithm, TotpParams};

/// The RFC 6238 SHA1 test key (20 bytes, the length tweestap issues).
const KEY: &[u8; 20] = b"12345678901234567890";
const NOW: i64 = 1_700_000_000;

fn totp(c: &mut Criterion) {
    let p = TotpParams::default();
    assert_eq!(p.skew, 1, "the benchmark assumes a 3-step window");
    let right = p.code_at(KEY, NOW);
    // A well-formed code that matches none of the three steps in the window.
    let wrong = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| p.matching_step(KEY, c, NOW).is_none())
        .expect("some 6-digit code does not match");

    let mut g = c.benchmark_group("totp");
    g.bench_function("hotp_sha1_6", |b| {
        b.iter(|| hotp(Algorithm::Sha1, black_box(KEY), black_box(56_666_666), 6))
    });
    g.bench_function("matching_step_correct", |b| {
        b.iter(|| p.matching_step(black_box(KEY), black_box(&right), black_box(NOW)))
    });
    g.bench_function("matching_step_wrong", |b| {
        b.iter(|| p.matching_step(black_box(KEY), black_box(&wrong), black_box(NOW)))
    });
    g.finish();
}

fn secret_box(c: &mut Criterion) {
    let sb = SecretBox::new(&MasterKey::generate());
    let secret = [7u8; 20];
    let aad = b"factor-1";
    let sealed = sb.seal(&secret, aad);

    let mut g = c.benchmark_group("secret_box");
    g.bench_function("seal_20b", |b| {
        b.iter(|| sb.seal(black_box(&secret), black_box(aad)))
    });
    g.bench_function("open_20b", |b| {
        b.iter(|| sb.open(black_box(&sealed), black_box(aad)).unwrap())
    });
    g.finish();
}

/// Session, device and link tokens: made once, hashed (SHA-256, hex) on every
/// request that carries one, since only the hash is stored.
fn tokens(c: &mut Criterion) {
    let token = Token::generate();
    let cookie = token.as_str().to_owned();
    let mut g = c.benchmark_group("token");
    g.bench_function("generate", |b| b.iter(Token::generate));
    g.bench_function("from_client_then_hash", |b| {
        b.iter(|| Token::from_client(black_box(&cookie)).unwrap().hash())
    });
    g.finish();
}

/// Mailed, SMS and recovery codes are kept as HMACs under a server key.
fn code_macs(c: &mut Criterion) {
    let b = SecretBox::new(&MasterKey::generate());
    let stored = b.code_mac(b"session-hash", b"123456");
    let mut g = c.benchmark_group("code_mac");
    g.bench_function("mac", |x| {
        x.iter(|| b.code_mac(black_box(b"session-hash"), black_box(b"123456")))
    });
    g.bench_function("matches_right", |x| {
        x.iter(|| b.code_matches(black_box(b"session-hash"), black_box(b"123456"), &stored))
    });
    g.bench_function("matches_wrong", |x| {
        x.iter(|| b.code_matches(black_box(b"session-hash"), black_box(b"654321"), &stored))
    });
    g.finish();
}

/// Signing an ID token (the key parsed from PKCS#8 each time, as the token
/// endpoint does) and verifying it against the published keys.
fn id_tokens(c: &mut Criterion) {
    let claims = serde_json::json!({
        "iss": "https://login.example.org", "sub": "0b7f3c1e-9a5d-4c2b-8e6f-1a2b3c4d5e6f",
        "aud": "portaal", "exp": NOW + 300, "iat": NOW, "auth_time": NOW,
        "amr": ["pwd", "otp"], "acr": "urn:tweestap:acr:mfa",
        "email": "an@example.be", "email_verified": true, "name": "An",
    });
    let mut g = c.benchmark_group("id_token");
    for alg in SigningAlg::ALL {
        let k = keys::generate(alg).expect("key");
        let published = [SigningKey {
            kid: k.kid.clone(),
            alg,
            private_sealed: Vec::new(),
            public_jwk: k.public_jwk.clone(),
            created_at: chrono::Utc::now(),
            retired_at: None,
        }];
        let token = keys::sign_jws(alg, &k.kid, &k.pkcs8, &claims).expect("sign");
        g.bench_function(format!("sign_{}", alg.as_str().to_lowercase()), |b| {
            b.iter(|| keys::sign_jws(alg, &k.kid, black_box(&k.pkcs8), black_box(&claims)))
        });
        g.bench_function(format!("verify_{}", alg.as_str().to_lowercase()), |b| {
            b.iter(|| {
                let ok = keys::verify_jws(black_box(&token), &published);
                assert!(ok.is_some());
            })
        });
    }
    g.finish();
}

fn argon2id(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let hasher = PasswordHasher::new(Argon2Settings::default(), 1).expect("valid parameters");
    let password = "correct horse battery staple";
    let stored = rt.block_on(hasher.hash(password)).expect("hash");

    let mut g = c.benchmark_group("argon2id_owasp");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("hash", |b| {
        b.iter(|| rt.block_on(hasher.hash(black_box(password))).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            let ok = rt.block_on(hasher.verify(black_box(password), Some(black_box(&stored))));
            assert!(ok.unwrap());
        })
    });
    g.bench_function("hash_then_verify", |b| {
        b.iter(|| {
            rt.block_on(async {
                let h = hasher.hash(black_box(password)).await.unwrap();
                assert!(hasher.verify(black_box(password), Some(&h)).await.unwrap());
            })
        })
    });
    g.finish();
}

criterion_group!(benches, totp, secret_box, tokens, code_macs, id_tokens, argon2id);
criterion_main!(benches);
