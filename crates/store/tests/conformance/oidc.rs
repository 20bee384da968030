//! OpenID Connect: signing keys, clients and the code flow.

use super::*;

conformance!(
    signing_keys_one_active_per_alg_rotated_and_purged,
    concurrent_ensure_signing_keys_leave_one_active_key_per_alg,
    clients_round_trip_and_delete,
    oidc_requests_expire,
    oidc_codes_claimed_once_then_reported_reused,
    concurrent_oidc_code_claims_accept_exactly_one,
    oidc_refresh_tokens_rotate_once_and_families_revoke,
);

fn signing_key(alg: SigningAlg, kid: &str, created_at: DateTime<Utc>) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        alg,
        private_sealed: vec![9, 8, 7, 0, 255],
        public_jwk: serde_json::json!({"kty": "EC", "kid": kid, "alg": alg.as_str(), "use": "sig"}),
        created_at,
        retired_at: None,
    }
}

async fn signing_keys_one_active_per_alg_rotated_and_purged(s: Dyn) {
    let rs1 = signing_key(SigningAlg::Rs256, "rs-1", t0());
    let es1 = signing_key(SigningAlg::Es256, "es-1", t0());
    s.insert_signing_key(&rs1).await.unwrap();
    s.insert_signing_key(&es1).await.unwrap();
    // A second active key of one algorithm is refused by the database.
    let rs_dup = signing_key(SigningAlg::Rs256, "rs-dup", t0());
    assert!(matches!(
        s.insert_signing_key(&rs_dup).await,
        Err(StoreError::Conflict)
    ));
    let mut want_rs1 = rs1.clone();
    want_rs1.created_at = us(t0());
    let keys = s.signing_keys().await.unwrap();
    same(&keys.len(), &2);
    assert!(keys.contains(&want_rs1));

    // Rotating RS256 retires rs-1 and leaves ES256 alone.
    let at = t0() + Duration::hours(1);
    let rs2 = signing_key(SigningAlg::Rs256, "rs-2", at);
    s.rotate_signing_key(&rs2, at).await.unwrap();
    let keys = s.signing_keys().await.unwrap();
    same(
        &keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        &vec!["rs-2", "es-1", "rs-1"],
    );
    let old = keys.iter().find(|k| k.kid == "rs-1").unwrap();
    same(&old.retired_at, &Some(us(at)));
    let active: Vec<_> = keys
        .iter()
        .filter(|k| k.is_active())
        .map(|k| k.kid.as_str())
        .collect();
    same(&active, &vec!["rs-2", "es-1"]);
    // Rotating without an active key just adds one.
    let es_only = signing_key(SigningAlg::Es256, "es-2", at);
    s.rotate_signing_key(&es_only, at).await.unwrap();

    // Deleted strictly before the cutoff; active keys never.
    same(&s.delete_retired_signing_keys(us(at)).await.unwrap(), &0);
    same(
        &s.delete_retired_signing_keys(at + Duration::microseconds(1))
            .await
            .unwrap(),
        &2,
    );
    let left: Vec<_> = s
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    same(&left, &vec!["es-2".to_owned(), "rs-2".to_owned()]);
}

/// Four nodes start at once on one empty database: each finds no key and makes
/// one, and the database keeps exactly one active key per algorithm.
async fn concurrent_ensure_signing_keys_leave_one_active_key_per_alg(s: Dyn) {
    let master = MasterKey::generate();
    let engine = || {
        Arc::new(Tweestap::new(
            s.clone(),
            Arc::new(SystemClock),
            PasswordHasher::new(
                Argon2Settings {
                    memory_kib: 64,
                    iterations: 1,
                    parallelism: 1,
                },
                1,
            )
            .unwrap(),
            SecretBox::new(&master),
            Settings::default(),
        ))
    };
    let nodes: Vec<_> = (0..4).map(|_| engine()).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(nodes.len()));
    let tasks: Vec<_> = nodes
        .iter()
        .map(|n| {
            let (n, b) = (n.clone(), barrier.clone());
            tokio::spawn(async move {
                b.wait().await;
                n.ensure_signing_keys().await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let keys = s.signing_keys().await.unwrap();
    for alg in SigningAlg::ALL {
        same(
            &keys
                .iter()
                .filter(|k| k.alg == alg && k.is_active())
                .count(),
            &1,
        );
    }
    // Every node signs with the one key and a second start adds nothing.
    let claims = serde_json::json!({"sub": "x"});
    let a = nodes[0]
        .sign_id_token(&claims, SigningAlg::Es256)
        .await
        .unwrap();
    let b = nodes[3]
        .sign_id_token(&claims, SigningAlg::Es256)
        .await
        .unwrap();
    same(&a.split('.').next(), &b.split('.').next());
    nodes[1].ensure_signing_keys().await.unwrap();
    same(&s.signing_keys().await.unwrap().len(), &keys.len());
}

fn oidc_client(id: &str, public: bool, created_at: DateTime<Utc>) -> OidcClient {
    OidcClient {
        id: id.into(),
        name: "Portaal van de Gemeente".into(),
        redirect_uris: vec![
            "https://portaal.example/cb".into(),
            "http://127.0.0.1:9000/cb?x=\"y\"".into(),
        ],
        secret_hash: (!public).then(|| "ab".repeat(32)),
        created_at: Some(created_at),
        // The public one asks for ES256, so both values make the round trip.
        id_token_alg: if public {
            SigningAlg::Es256
        } else {
            SigningAlg::Rs256
        },
        source: ClientSource::Database,
        // Every option set on the confidential one, so each survives the round trip.
        options: if public {
            tweestap_domain::oidc::ClientOptions::default()
        } else {
            tweestap_domain::oidc::ClientOptions {
                third_party: true,
                backchannel_logout_uri: Some("https://portaal.example/bcl".into()),
                require_par: true,
                ..tweestap_domain::oidc::ClientOptions::default()
            }
        },
    }
}

async fn clients_round_trip_and_delete(s: Dyn) {
    let a = oidc_client("portaal", false, t0());
    let b = oidc_client("spa", true, t0() + Duration::seconds(1));
    s.insert_client(&b).await.unwrap();
    s.insert_client(&a).await.unwrap();
    assert!(matches!(
        s.insert_client(&a).await,
        Err(StoreError::Conflict)
    ));
    let mut want_a = a.clone();
    want_a.created_at = Some(us(t0()));
    same(&s.client("portaal").await.unwrap(), &Some(want_a.clone()));
    assert!(s.client("spa").await.unwrap().unwrap().is_public());
    assert!(s.client("PORTAAL").await.unwrap().is_none());
    same(
        &s.list_clients()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        &vec!["portaal".to_owned(), "spa".to_owned()],
    );
    assert!(s.delete_client("portaal").await.unwrap());
    assert!(!s.delete_client("portaal").await.unwrap());
    assert!(s.client("portaal").await.unwrap().is_none());
    same(&s.list_clients().await.unwrap().len(), &1);
}

async fn oidc_requests_expire(s: Dyn) {
    let r = StoredRequest {
        id_hash: TokenHash("req-1".into()),
        request: "{\"client_id\":\"portal\"}".into(),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(15),
    };
    s.insert_oidc_request(&r).await.unwrap();
    assert_eq!(
        s.oidc_request(&r.id_hash, t0()).await.unwrap().as_deref(),
        Some(r.request.as_str())
    );
    assert_eq!(
        s.oidc_request(&r.id_hash, r.expires_at).await.unwrap(),
        None
    );
    assert_eq!(
        s.oidc_request(&TokenHash("other".into()), t0())
            .await
            .unwrap(),
        None
    );
}

pub(super) fn stored_code(hash: &str, account: AccountId) -> StoredCode {
    StoredCode {
        code_hash: TokenHash(hash.into()),
        account_id: account,
        grant: "{\"g\":1}".into(),
        created_at: t0(),
        expires_at: t0() + Duration::seconds(60),
        used_at: None,
        sid: Some("sid-1".into()),
        client_id: "portaal".into(),
    }
}

async fn oidc_codes_claimed_once_then_reported_reused(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let c = stored_code("code-1", a.id);
    s.insert_oidc_code(&c).await.unwrap();
    let at = t0() + Duration::seconds(5);
    match s.claim_oidc_code(&c.code_hash, at).await.unwrap() {
        CodeClaim::Fresh(got) => {
            assert_eq!(got.grant, c.grant);
            assert_eq!(got.account_id, a.id);
            assert_eq!(got.sid.as_deref(), Some("sid-1"));
            assert_eq!(got.client_id, "portaal");
            assert_eq!(got.expires_at, us(c.expires_at));
            assert_eq!(got.used_at, Some(us(at)));
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.oidc_code_replayed(&c.code_hash).await.unwrap());
    match s.claim_oidc_code(&c.code_hash, at).await.unwrap() {
        CodeClaim::Reused(got) => assert_eq!(got.code_hash, c.code_hash),
        other => panic!("{other:?}"),
    }
    // The replay is noted for the first use to see.
    assert!(s.oidc_code_replayed(&c.code_hash).await.unwrap());
    assert!(!s
        .oidc_code_replayed(&TokenHash("nope".into()))
        .await
        .unwrap());
    assert_eq!(
        s.claim_oidc_code(&TokenHash("nope".into()), at)
            .await
            .unwrap(),
        CodeClaim::Unknown
    );
}

async fn concurrent_oidc_code_claims_accept_exactly_one(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let c = stored_code("code-race", a.id);
    s.insert_oidc_code(&c).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let h = c.code_hash.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_oidc_code(&h, t0()).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), CodeClaim::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

pub(super) fn stored_token(
    hash: &str,
    kind: TokenKind,
    family: &str,
    account: AccountId,
) -> StoredToken {
    StoredToken {
        token_hash: TokenHash(hash.into()),
        account_id: Some(account),
        client_id: "portaal".into(),
        sid: Some("sid-1".into()),
        kind,
        family: family.into(),
        grant: "{}".into(),
        created_at: t0(),
        expires_at: t0() + Duration::days(30),
        used_at: None,
        revoked_at: None,
    }
}

async fn oidc_refresh_tokens_rotate_once_and_families_revoke(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let access = stored_token("at-1", TokenKind::Access, "fam-1", a.id);
    let refresh = stored_token("rt-1", TokenKind::Refresh, "fam-1", a.id);
    let other = stored_token("rt-2", TokenKind::Refresh, "fam-2", a.id);
    for t in [&access, &refresh, &other] {
        s.insert_oidc_token(t).await.unwrap();
    }
    let got = s.oidc_token(&refresh.token_hash).await.unwrap().unwrap();
    assert_eq!(got.kind, TokenKind::Refresh);
    assert_eq!(got.account_id, Some(a.id));
    assert_eq!(got.client_id, "portaal");
    assert_eq!(got.sid.as_deref(), Some("sid-1"));
    assert_eq!(got.family, "fam-1");
    assert_eq!(got.expires_at, us(refresh.expires_at));
    // An access token is never "used" as a refresh token.
    assert!(!s.use_refresh_token(&access.token_hash, t0()).await.unwrap());
    assert!(s
        .use_refresh_token(&refresh.token_hash, t0())
        .await
        .unwrap());
    assert!(!s
        .use_refresh_token(&refresh.token_hash, t0())
        .await
        .unwrap());
    let used = s.oidc_token(&refresh.token_hash).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(us(t0())));

    assert_eq!(s.revoke_oidc_family("fam-1", t0()).await.unwrap(), 2);
    assert_eq!(s.revoke_oidc_family("fam-1", t0()).await.unwrap(), 0);
    assert!(s
        .oidc_token(&access.token_hash)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    // Another family is untouched and a revoked token cannot rotate.
    assert!(s
        .oidc_token(&other.token_hash)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    s.revoke_oidc_family("fam-2", t0()).await.unwrap();
    assert!(!s.use_refresh_token(&other.token_hash, t0()).await.unwrap());
    assert!(s
        .oidc_token(&TokenHash("nope".into()))
        .await
        .unwrap()
        .is_none());
}
