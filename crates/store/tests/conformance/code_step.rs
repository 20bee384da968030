//! The code step's writes in one commit: a passed step, and an app code taken.

use super::*;
use tweestap_domain::store::{AppCode, AppCodeTaken, PassedStep};

conformance!(
    a_passed_step_writes_everything_at_once,
    an_app_code_counts_claims_and_passes_in_one_go,
    parallel_right_codes_for_one_step_pass_once,
    one_half_finished_sign_in_passes_once,
);

fn signed_in(account: AccountId, sid: &str) -> Session {
    let mut n = session(account, t0());
    n.stage = SessionStage::Authenticated;
    n.amr = "pwd otp".into();
    n.sid = sid.to_owned();
    n.created_at = t0() + Duration::seconds(30);
    n
}

fn succeeded(account: &NewAccount, detail: &str) -> AuditRecord {
    let mut r = audit(t0(), "code_succeeded", Some(account.email.as_str()));
    r.account_id = Some(account.id);
    r.detail = Some(detail.to_owned());
    r
}

async fn code_state(s: &Dyn, id: AccountId) -> (u32, Option<DateTime<Utc>>) {
    let a = s.account_by_id(id).await.unwrap().unwrap();
    (a.code_failures, a.code_locked_until)
}

async fn there(s: &Dyn, x: &Session) -> bool {
    s.session(&x.id_hash).await.unwrap().is_some()
}

async fn audited(s: &Dyn, a: &NewAccount) -> Vec<String> {
    let rows = s.list_audit(100, Some(a.email.as_str())).await.unwrap();
    rows.into_iter().filter_map(|r| r.detail).collect()
}

async fn a_passed_step_writes_everything_at_once(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let hold = t0() + Duration::minutes(5);
    for _ in 0..2 {
        s.reserve_attempt(a.id, Guard::Code, 5, hold, t0())
            .await
            .unwrap();
    }
    assert_eq!(code_state(&s, a.id).await, (2, None));

    // A step-up: the half-finished session and the one it replaces share a sid.
    let half = session(a.id, t0());
    let mut replaced = session(a.id, t0());
    replaced.stage = SessionStage::Authenticated;
    replaced.sid = half.sid.clone();
    let elsewhere = session(a.id, t0());
    for x in [&half, &replaced, &elsewhere] {
        s.insert_session(x).await.unwrap();
    }
    let new = signed_in(a.id, &half.sid);
    let r = succeeded(&a, "factor=1");
    let passed = PassedStep {
        session: &new,
        half: &half.id_hash,
        audit: Some(&r),
    };
    assert!(s.pass_code_step(&passed).await.unwrap());
    same(&s.session(&new.id_hash).await.unwrap().unwrap(), &{
        let mut want = new.clone();
        want.created_at = us(want.created_at);
        want.last_seen_at = us(want.last_seen_at);
        want.auth_time = us(want.auth_time);
        want
    });
    assert!(!there(&s, &half).await, "the half-finished session ends");
    assert!(!there(&s, &replaced).await, "the replaced one ends");
    assert!(there(&s, &elsewhere).await, "another browser's stays");
    assert_eq!(code_state(&s, a.id).await, (0, None));
    let listing = s.account_listing(a.id).await.unwrap().unwrap();
    assert_eq!(listing.last_sign_in_at, Some(us(new.created_at)));
    assert_eq!(audited(&s, &a).await, ["factor=1"]);

    // A half-finished session of another sid (its own was gone when the step
    // passed, so the new one got a fresh sid) ends by its id; no audit asked.
    let half = session(a.id, t0());
    s.insert_session(&half).await.unwrap();
    let new2 = signed_in(a.id, "a-fresh-sid");
    let passed = PassedStep {
        session: &new2,
        half: &half.id_hash,
        audit: None,
    };
    assert!(s.pass_code_step(&passed).await.unwrap());
    assert!(!there(&s, &half).await);
    assert!(there(&s, &new2).await && there(&s, &new).await && there(&s, &elsewhere).await);
    assert_eq!(audited(&s, &a).await, ["factor=1"]);

    // All or none: a new session whose id is taken fails and ends nothing.
    let half = session(a.id, t0());
    s.insert_session(&half).await.unwrap();
    s.reserve_attempt(a.id, Guard::Code, 5, hold, t0())
        .await
        .unwrap();
    let mut clash = signed_in(a.id, &half.sid);
    clash.id_hash = new2.id_hash.clone();
    let passed = PassedStep {
        session: &clash,
        half: &half.id_hash,
        audit: Some(&r),
    };
    assert!(s.pass_code_step(&passed).await.is_err());
    assert!(there(&s, &half).await);
    assert_eq!(code_state(&s, a.id).await, (1, None));
    assert_eq!(audited(&s, &a).await, ["factor=1"]);

    // A half-finished session that is gone (a password change ended it, or
    // another code passed first) is finished by no one: nothing is written.
    s.delete_session(&half.id_hash).await.unwrap();
    let late = signed_in(a.id, &half.sid);
    let passed = PassedStep {
        session: &late,
        half: &half.id_hash,
        audit: Some(&r),
    };
    assert!(!s.pass_code_step(&passed).await.unwrap());
    assert!(!there(&s, &late).await);
    assert!(there(&s, &new2).await && there(&s, &elsewhere).await);
    assert_eq!(code_state(&s, a.id).await, (1, None));
    assert_eq!(audited(&s, &a).await, ["factor=1"]);
}

async fn an_app_code_counts_claims_and_passes_in_one_go(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let hold = t0() + Duration::minutes(5);
    let code = |step: i64, now: DateTime<Utc>| AppCode {
        account: a.id,
        factor: f.id,
        step,
        max_failures: 3,
        hold,
        now,
    };
    let last_step = || async { s.factors_of(a.id).await.unwrap()[0].last_step };
    let last_sign_in = || async {
        let listing = s.account_listing(a.id).await.unwrap().unwrap();
        listing.last_sign_in_at
    };
    let elsewhere = session(a.id, t0());
    s.insert_session(&elsewhere).await.unwrap();
    // Takes `code` for a fresh half-finished step-up (the session it replaces
    // has its sid): what it came to, whether the new session is there, and
    // whether the half-finished and the replaced one are gone.
    let take = |code: AppCode, n: u32| {
        let s = s.clone();
        let r = succeeded(&a, &format!("try={n}"));
        async move {
            let half = session(a.id, t0());
            let mut replaced = signed_in(a.id, &half.sid);
            replaced.created_at = t0();
            for x in [&half, &replaced] {
                s.insert_session(x).await.unwrap();
            }
            let new = signed_in(a.id, &half.sid);
            let passed = PassedStep {
                session: &new,
                half: &half.id_hash,
                audit: Some(&r),
            };
            let taken = s.take_app_code(&code, &passed).await.unwrap();
            let (half_gone, replaced_gone) = (!there(&s, &half).await, !there(&s, &replaced).await);
            assert_eq!(half_gone, replaced_gone, "both end, or neither");
            (taken, there(&s, &new).await, half_gone)
        }
    };

    s.reserve_attempt(a.id, Guard::Code, 3, hold, t0())
        .await
        .unwrap();
    assert_eq!(
        take(code(10, t0()), 1).await,
        (AppCodeTaken::Passed, true, true)
    );
    assert_eq!(code_state(&s, a.id).await, (0, None), "failures cleared");
    assert_eq!(last_step().await, Some(10));
    assert_eq!(audited(&s, &a).await, ["try=1"]);
    let listing = s.account_listing(a.id).await.unwrap().unwrap();
    assert_eq!(
        listing.last_sign_in_at,
        Some(us(t0() + Duration::seconds(30)))
    );

    // A replay, an earlier step and an unknown factor count as failures and
    // write nothing else; the third locks.
    assert_eq!(
        take(code(10, t0()), 2).await,
        (AppCodeTaken::Replayed(1), false, false)
    );
    assert_eq!(
        take(code(9, t0()), 3).await,
        (AppCodeTaken::Replayed(2), false, false)
    );
    let unknown = AppCode {
        factor: FactorId(Uuid::new_v4()),
        ..code(11, t0())
    };
    assert_eq!(
        take(unknown, 4).await,
        (AppCodeTaken::Replayed(3), false, false)
    );
    assert_eq!(code_state(&s, a.id).await, (3, Some(us(hold))));
    assert_eq!(audited(&s, &a).await, ["try=1"]);
    let signed_in_at = Some(us(t0() + Duration::seconds(30)));
    assert_eq!(
        last_sign_in().await,
        signed_in_at,
        "a replay signs no one in"
    );

    // Locked: even a right code changes nothing, and its step stays unused.
    let soon = t0() + Duration::minutes(1);
    assert_eq!(
        take(code(11, soon), 5).await,
        (AppCodeTaken::Locked, false, false)
    );
    assert_eq!(code_state(&s, a.id).await, (3, Some(us(hold))));
    assert_eq!(last_step().await, Some(10));
    assert_eq!(last_sign_in().await, signed_in_at);

    // All or none: a new session whose id is taken fails, and the step stays
    // unused, the failures as they were, the half-finished session there.
    let later = hold + Duration::seconds(1);
    let half = session(a.id, t0());
    s.insert_session(&half).await.unwrap();
    let mut clash = signed_in(a.id, &half.sid);
    clash.id_hash = elsewhere.id_hash.clone();
    let r = succeeded(&a, "clash");
    let passed = PassedStep {
        session: &clash,
        half: &half.id_hash,
        audit: Some(&r),
    };
    assert!(s.take_app_code(&code(11, later), &passed).await.is_err());
    assert_eq!(last_step().await, Some(10));
    assert_eq!(code_state(&s, a.id).await, (3, Some(us(hold))));
    assert!(there(&s, &half).await && there(&s, &elsewhere).await);

    // Once the lock is over, a half-finished session that is gone counts
    // nothing and uses up nothing.
    let gone = session(a.id, t0());
    let late = signed_in(a.id, &gone.sid);
    let passed = PassedStep {
        session: &late,
        half: &gone.id_hash,
        audit: Some(&r),
    };
    assert_eq!(
        s.take_app_code(&code(11, later), &passed).await.unwrap(),
        AppCodeTaken::Gone
    );
    assert!(!there(&s, &late).await);
    assert_eq!(last_step().await, Some(10));
    assert_eq!(code_state(&s, a.id).await, (3, Some(us(hold))));
    // While locked, locked is the answer, whether or not the session is there.
    assert_eq!(
        s.take_app_code(&code(11, soon), &passed).await.unwrap(),
        AppCodeTaken::Locked
    );

    // Once the lock is over the same step counts.
    assert_eq!(
        take(code(11, later), 6).await,
        (AppCodeTaken::Passed, true, true)
    );
    assert_eq!(code_state(&s, a.id).await, (0, None));
    assert_eq!(last_step().await, Some(11));
    assert_eq!(audited(&s, &a).await, ["try=6", "try=1"]);
    assert!(
        there(&s, &elsewhere).await,
        "another browser's session stays"
    );
}

async fn parallel_right_codes_for_one_step_pass_once(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let code = AppCode {
        account: a.id,
        factor: f.id,
        step: 7,
        max_failures: 100,
        hold: t0() + Duration::minutes(5),
        now: t0(),
    };
    let id = a.id;
    let tries = (0..20).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            let half = session(id, t0());
            s.insert_session(&half).await.unwrap();
            let new = signed_in(id, &half.sid);
            let passed = PassedStep {
                session: &new,
                half: &half.id_hash,
                audit: None,
            };
            let taken = s.take_app_code(&code, &passed).await.unwrap();
            (taken, there(&s, &new).await)
        })
    });
    let mut passed = 0;
    for t in tries.collect::<Vec<_>>() {
        match t.await.unwrap() {
            (AppCodeTaken::Passed, true) => passed += 1,
            (AppCodeTaken::Replayed(_), false) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(passed, 1, "one step, one sign-in");
}

/// Right codes of different steps (so no replay stops them) sent at once on one
/// half-finished sign-in, with passes by another way mixed in: one signed-in
/// session comes of it, the others find the sign-in gone.
async fn one_half_finished_sign_in_passes_once(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let half = session(a.id, t0());
    s.insert_session(&half).await.unwrap();
    let id = a.id;
    let tries = (0..12).map(|i| {
        let (s, half) = (s.clone(), half.clone());
        tokio::spawn(async move {
            let new = signed_in(id, &half.sid);
            let passed = PassedStep {
                session: &new,
                half: &half.id_hash,
                audit: None,
            };
            let taken = if i % 3 == 0 {
                match s.pass_code_step(&passed).await.unwrap() {
                    true => AppCodeTaken::Passed,
                    false => AppCodeTaken::Gone,
                }
            } else {
                let code = AppCode {
                    account: id,
                    factor: f.id,
                    step: 100 + i64::from(i),
                    max_failures: 100,
                    hold: t0() + Duration::minutes(5),
                    now: t0(),
                };
                s.take_app_code(&code, &passed).await.unwrap()
            };
            (taken, there(&s, &new).await)
        })
    });
    let mut passed = 0;
    for t in tries.collect::<Vec<_>>() {
        match t.await.unwrap() {
            (AppCodeTaken::Passed, true) => passed += 1,
            (AppCodeTaken::Gone, false) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        passed, 1,
        "one half-finished sign-in, one signed-in session"
    );
    assert!(!there(&s, &half).await);
    assert_eq!(code_state(&s, a.id).await, (0, None), "no attempt counted");
}
