//! Sessions, the audit log, and how times are kept.

use super::*;

conformance!(
    sessions_lifecycle,
    a_session_and_its_audit_row_all_or_none,
    session_with_factors_reads_all_three_at_once,
    expired_sessions_strictly_before,
    audit_newest_first_with_limit_and_email_filter,
    times_round_trip_at_microseconds,
);

async fn sessions_lifecycle(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bert@x.be").await;
    let mut s1 = session(a.id, t0());
    s1.stage = SessionStage::Authenticated;
    s1.amr = "pwd otp".into();
    s1.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
    let s2 = session(a.id, t0());
    let s3 = session(b.id, t0());
    for x in [&s1, &s2, &s3] {
        s.insert_session(x).await.unwrap();
    }
    assert!(matches!(
        s.insert_session(&s1).await,
        Err(StoreError::Conflict)
    ));

    let mut want = s1.clone();
    want.created_at = us(s1.created_at);
    want.last_seen_at = us(s1.last_seen_at);
    want.auth_time = us(s1.auth_time);
    same(&s.session(&s1.id_hash).await.unwrap().unwrap(), &want);
    assert!(s
        .session(&TokenHash("0".repeat(64)))
        .await
        .unwrap()
        .is_none());

    let later = t0() + Duration::minutes(5) + Duration::nanoseconds(4_321);
    s.touch_session(&s1.id_hash, later).await.unwrap();
    want.last_seen_at = us(later);
    same(&s.session(&s1.id_hash).await.unwrap().unwrap(), &want);
    s.touch_session(&TokenHash("nobody".into()), later)
        .await
        .unwrap();

    s.delete_session(&s2.id_hash).await.unwrap();
    assert!(s.session(&s2.id_hash).await.unwrap().is_none());
    s.delete_session(&s2.id_hash).await.unwrap();

    s.delete_sessions_of(a.id).await.unwrap();
    assert!(s.session(&s1.id_hash).await.unwrap().is_none());
    assert!(
        s.session(&s3.id_hash).await.unwrap().is_some(),
        "another account's"
    );
}

/// The code step's one read: the session, its account, and the account's factors
/// oldest first (none for an account without), exactly as read one by one.
async fn session_with_factors_reads_all_three_at_once(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bert@x.be").await;
    let mut used = factor(a.id, t0() + Duration::seconds(10));
    used.confirmed_at = Some(t0() + Duration::nanoseconds(20_001));
    used.last_step = Some(58_333_334);
    let fresh = factor(a.id, t0());
    for f in [&used, &fresh, &factor(b.id, t0())] {
        s.insert_factor(f).await.unwrap();
    }
    let of_a = session(a.id, t0());
    let of_c = session(account(&s, "cas@x.be").await.id, t0());
    for x in [&of_a, &of_c] {
        s.insert_session(x).await.unwrap();
    }

    let (session_a, account_a, factors) = s
        .session_with_factors(&of_a.id_hash)
        .await
        .unwrap()
        .unwrap();
    let (one_session, one_account) = s
        .session_with_account(&of_a.id_hash)
        .await
        .unwrap()
        .unwrap();
    same(&session_a, &one_session);
    same(&account_a, &one_account);
    same(&factors, &s.factors_of(a.id).await.unwrap());
    assert_eq!(factors.len(), 2);
    assert_eq!(factors[0].id, fresh.id, "oldest first");

    let (_, account_c, none) = s
        .session_with_factors(&of_c.id_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account_c.email.to_string(), "cas@x.be");
    assert!(none.is_empty(), "an account without factors");
    assert!(s
        .session_with_factors(&TokenHash("0".repeat(64)))
        .await
        .unwrap()
        .is_none());
}

async fn expired_sessions_strictly_before(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let old = session(a.id, t0() - Duration::hours(1));
    let edge = session(a.id, t0());
    let new = session(a.id, t0() + Duration::seconds(1));
    for x in [&old, &edge, &new] {
        s.insert_session(x).await.unwrap();
    }
    // `before` differs from `edge` only below the microsecond: the same stored time.
    let before = us(t0()) + Duration::nanoseconds(999);
    assert_eq!(s.delete_expired_sessions(before).await.unwrap(), 1);
    assert!(s.session(&old.id_hash).await.unwrap().is_none());
    assert!(s.session(&edge.id_hash).await.unwrap().is_some());
    assert_eq!(
        s.delete_expired_sessions(t0() + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(s.session(&new.id_hash).await.unwrap().is_some());
    assert_eq!(s.delete_expired_sessions(t0()).await.unwrap(), 0);
}

/// A session not signed in yet and its audit row: both stored, or
/// (the session's id taken already) neither.
async fn a_session_and_its_audit_row_all_or_none(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let half = session(a.id, t0());
    let mut row = audit(t0(), "login_succeeded", None);
    row.account_id = Some(a.id);
    row.ip = Some("192.0.2.7".into());
    row.detail = Some("stage=second_factor".into());
    s.insert_session_audited(&half, &row).await.unwrap();
    let mut want = half.clone();
    want.created_at = us(half.created_at);
    want.last_seen_at = us(half.last_seen_at);
    want.auth_time = us(half.auth_time);
    same(&s.session(&half.id_hash).await.unwrap().unwrap(), &want);
    let stored = AuditRecord {
        at: us(row.at),
        ..row.clone()
    };
    same(
        &s.list_audit(10, None).await.unwrap(),
        &vec![stored.clone()],
    );

    let mut again = row.clone();
    again.detail = Some("again".into());
    assert!(matches!(
        s.insert_session_audited(&half, &again).await,
        Err(StoreError::Conflict)
    ));
    // The audit row refused after the session was written: PostgreSQL takes no
    // NUL in text (SQLite does, and stores both; its writer's all-or-none is
    // tested in `sqlite_writer`).
    let other = session(a.id, t0());
    let mut refused = row.clone();
    refused.detail = Some("nul \0 byte".into());
    match s.insert_session_audited(&other, &refused).await {
        Err(_) => assert!(s.session(&other.id_hash).await.unwrap().is_none()),
        Ok(()) => assert!(s.session(&other.id_hash).await.unwrap().is_some()),
    }
    let listed = s.list_audit(10, None).await.unwrap();
    assert!(listed.iter().all(|r| r.detail.as_deref() != Some("again")));
    assert_eq!(listed.last().map(|r| r.detail.clone()), Some(stored.detail));
}

async fn audit_newest_first_with_limit_and_email_filter(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    // Appended in this order; `at` deliberately not monotonic: order is by appending.
    let mut records = vec![
        audit(t0(), "account_created", Some("an@x.be")),
        audit(
            t0() + Duration::seconds(5),
            "login_failed",
            Some("bert@x.be"),
        ),
        audit(t0() - Duration::seconds(5), "login_ok", Some("an@x.be")),
        audit(t0() + Duration::seconds(1), "startup", None),
        audit(t0() + Duration::nanoseconds(1), "code_ok", Some("an@x.be")),
    ];
    records[0].account_id = Some(a.id);
    records[2].ip = Some("2001:db8::1".into());
    records[2].user_agent = Some("curl/8".into());
    records[2].detail = Some("{\"via\":\"api\"}".into());
    for r in &records {
        s.append_audit(r).await.unwrap();
    }
    let stored: Vec<AuditRecord> = records
        .iter()
        .map(|r| AuditRecord {
            at: us(r.at),
            ..r.clone()
        })
        .collect();
    let newest_first =
        |idx: &[usize]| -> Vec<AuditRecord> { idx.iter().map(|&i| stored[i].clone()).collect() };

    same(
        &s.list_audit(100, None).await.unwrap(),
        &newest_first(&[4, 3, 2, 1, 0]),
    );
    same(
        &s.list_audit(2, None).await.unwrap(),
        &newest_first(&[4, 3]),
    );
    assert!(s.list_audit(0, None).await.unwrap().is_empty());
    same(
        &s.list_audit(100, Some("an@x.be")).await.unwrap(),
        &newest_first(&[4, 2, 0]),
    );
    same(
        &s.list_audit(2, Some("AN@X.BE")).await.unwrap(),
        &newest_first(&[4, 2]),
    );
    assert!(s
        .list_audit(100, Some("nobody@x.be"))
        .await
        .unwrap()
        .is_empty());
}

async fn times_round_trip_at_microseconds(s: Dyn) {
    let times = [
        Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(999_999_999),
        Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(500_000_500),
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap() + Duration::nanoseconds(1),
        t0(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(999_999_999),
    ];
    for (i, t) in times.into_iter().enumerate() {
        let mut a = new_account(&format!("t{i}@x.be"));
        a.created_at = t;
        s.insert_account(&a).await.unwrap();
        s.set_lock(a.id, Guard::Code, Some(t)).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(got.created_at, us(t), "{t}");
        assert_eq!(got.code_locked_until, Some(us(t)), "{t}");
        assert_eq!(got.created_at.nanosecond() % 1_000, 0);

        let x = session(a.id, t);
        s.insert_session(&x).await.unwrap();
        assert_eq!(
            s.session(&x.id_hash).await.unwrap().unwrap().last_seen_at,
            us(t)
        );

        s.append_audit(&audit(t, "t", None)).await.unwrap();
        assert_eq!(s.list_audit(1, None).await.unwrap()[0].at, us(t));
    }
}
