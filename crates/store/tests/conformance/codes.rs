//! One-time codes of half-finished sessions.

use super::*;

conformance!(
    email_codes_replace_count_tries_and_die_with_their_session,
    sms_codes_replace_count_tries_and_die_with_their_session,
    email_and_sms_codes_of_one_session_do_not_clash,
    sms_codes_die_with_their_factor,
    codes_die_when_their_session_is_purged,
    only_sms_codes_name_a_factor,
);

fn email_code(session: &Session, account: AccountId, mac: &str, sends: u32) -> SessionCode {
    SessionCode {
        session_hash: session.id_hash.clone(),
        purpose: CodePurpose::Email,
        account_id: account,
        factor_id: None,
        code_mac: mac.into(),
        attempts: 0,
        sends,
        created_at: us(t0()),
        expires_at: us(t0() + Duration::minutes(10)),
    }
}

fn sms_code(session: &Session, factor: &Factor, mac: &str, sends: u32) -> SessionCode {
    SessionCode {
        purpose: CodePurpose::Sms,
        factor_id: Some(factor.id),
        ..email_code(session, factor.account_id, mac, sends)
    }
}

/// A session waiting for a code, with an SMS factor it may go to.
async fn session_with_phone(s: &Dyn) -> (Session, Factor) {
    let a = account(s, "an@example.be").await;
    let mut f = factor(a.id, t0());
    f.kind = FactorKind::Sms;
    s.insert_factor(&f).await.unwrap();
    let mut sess = session(a.id, t0());
    sess.stage = SessionStage::EmailCode;
    s.insert_session(&sess).await.unwrap();
    (sess, f)
}

/// The behaviour of one purpose's codes: a new code replaces the old one (tries
/// start again), tries are counted atomically, the code dies with its session.
async fn codes_replace_count_tries_and_die_with_their_session(s: Dyn, purpose: CodePurpose) {
    let (sess, f) = session_with_phone(&s).await;
    let code = |mac: &str, sends: u32| match purpose {
        CodePurpose::Email => email_code(&sess, f.account_id, mac, sends),
        CodePurpose::Sms => sms_code(&sess, &f, mac, sends),
    };
    let h = &sess.id_hash;
    same(&s.count_session_code_try(h, purpose).await.unwrap(), &None);
    s.put_session_code(&code("mac1", 1)).await.unwrap();
    same(
        &s.count_session_code_try(h, purpose).await.unwrap(),
        &Some(1),
    );
    same(
        &s.count_session_code_try(h, purpose).await.unwrap(),
        &Some(2),
    );
    // A new code replaces the old one and starts its tries again.
    s.put_session_code(&code("mac2", 2)).await.unwrap();
    let c = s.session_code(h, purpose).await.unwrap().expect("code");
    same(&c, &code("mac2", 2));
    // Concurrent tries all count.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, h) = (s.clone(), h.clone());
        tasks.push(tokio::spawn(async move {
            s.count_session_code_try(&h, purpose).await.unwrap()
        }));
    }
    let mut seen: Vec<u32> = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap().expect("counted"));
    }
    seen.sort_unstable();
    same(&seen, &(1..=10).collect::<Vec<u32>>());
    same(
        &s.session_code(h, purpose)
            .await
            .unwrap()
            .map(|c| c.attempts),
        &Some(10),
    );
    // Deleting a code (used up) leaves no code to try; only the first delete has it.
    assert!(s.delete_session_code(h, purpose).await.unwrap());
    assert!(s.session_code(h, purpose).await.unwrap().is_none());
    same(&s.count_session_code_try(h, purpose).await.unwrap(), &None);
    assert!(!s.delete_session_code(h, purpose).await.unwrap());
    // A code dies with its session.
    s.put_session_code(&code("mac3", 1)).await.unwrap();
    s.delete_session(h).await.unwrap();
    assert!(s.session_code(h, purpose).await.unwrap().is_none());
    same(&s.count_session_code_try(h, purpose).await.unwrap(), &None);
}

async fn email_codes_replace_count_tries_and_die_with_their_session(s: Dyn) {
    codes_replace_count_tries_and_die_with_their_session(s, CodePurpose::Email).await;
}

async fn sms_codes_replace_count_tries_and_die_with_their_session(s: Dyn) {
    codes_replace_count_tries_and_die_with_their_session(s, CodePurpose::Sms).await;
}

async fn email_and_sms_codes_of_one_session_do_not_clash(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let h = &sess.id_hash;
    s.put_session_code(&email_code(&sess, f.account_id, "mailed", 2))
        .await
        .unwrap();
    s.put_session_code(&sms_code(&sess, &f, "texted", 1))
        .await
        .unwrap();
    // Tries, replacing and deleting touch only their own purpose.
    same(
        &s.count_session_code_try(h, CodePurpose::Sms).await.unwrap(),
        &Some(1),
    );
    let mailed = s.session_code(h, CodePurpose::Email).await.unwrap();
    same(&mailed, &Some(email_code(&sess, f.account_id, "mailed", 2)));
    s.put_session_code(&email_code(&sess, f.account_id, "mailed again", 3))
        .await
        .unwrap();
    let texted = s.session_code(h, CodePurpose::Sms).await.unwrap();
    same(
        &texted.map(|c| (c.code_mac, c.attempts, c.sends, c.factor_id)),
        &Some(("texted".to_owned(), 1, 1, Some(f.id))),
    );
    s.delete_session_code(h, CodePurpose::Sms).await.unwrap();
    let mailed = s.session_code(h, CodePurpose::Email).await.unwrap();
    same(
        &mailed.map(|c| c.code_mac),
        &Some("mailed again".to_owned()),
    );
    assert!(s.session_code(h, CodePurpose::Sms).await.unwrap().is_none());
}

async fn sms_codes_die_with_their_factor(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let h = &sess.id_hash;
    s.put_session_code(&email_code(&sess, f.account_id, "mailed", 1))
        .await
        .unwrap();
    s.put_session_code(&sms_code(&sess, &f, "texted", 1))
        .await
        .unwrap();
    assert!(s.remove_factor(f.id, None, None).await.unwrap());
    assert!(s.session_code(h, CodePurpose::Sms).await.unwrap().is_none());
    same(
        &s.count_session_code_try(h, CodePurpose::Sms).await.unwrap(),
        &None,
    );
    // The session, and its mailed code, stay.
    assert!(s.session(h).await.unwrap().is_some());
    assert!(s
        .session_code(h, CodePurpose::Email)
        .await
        .unwrap()
        .is_some());
    // Unconfirmed phones given up on take their codes along too.
    let mut g = factor(f.account_id, t0());
    g.kind = FactorKind::Sms;
    s.insert_factor(&g).await.unwrap();
    s.put_session_code(&sms_code(&sess, &g, "texted", 1))
        .await
        .unwrap();
    s.delete_unconfirmed_factors(f.account_id).await.unwrap();
    assert!(s.session_code(h, CodePurpose::Sms).await.unwrap().is_none());
}

/// Codes are never purged on their own: they go with their session, also when an
/// idle session is purged; retention (`delete_spent`) leaves live ones alone.
async fn codes_die_when_their_session_is_purged(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let h = &sess.id_hash;
    s.put_session_code(&email_code(&sess, f.account_id, "mailed", 1))
        .await
        .unwrap();
    s.put_session_code(&sms_code(&sess, &f, "texted", 1))
        .await
        .unwrap();
    s.delete_spent(t0() + Duration::days(60)).await.unwrap();
    for p in [CodePurpose::Email, CodePurpose::Sms] {
        assert!(s.session_code(h, p).await.unwrap().is_some(), "{p:?}");
    }
    s.delete_expired_sessions(t0() + Duration::seconds(1))
        .await
        .unwrap();
    for p in [CodePurpose::Email, CodePurpose::Sms] {
        assert!(s.session_code(h, p).await.unwrap().is_none(), "{p:?}");
    }
}

/// The table refuses an SMS code without a phone, and a mailed code with one.
async fn only_sms_codes_name_a_factor(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let mut no_phone = sms_code(&sess, &f, "texted", 1);
    no_phone.factor_id = None;
    assert!(s.put_session_code(&no_phone).await.is_err());
    let mut with_phone = email_code(&sess, f.account_id, "mailed", 1);
    with_phone.factor_id = Some(f.id);
    assert!(s.put_session_code(&with_phone).await.is_err());
    for p in [CodePurpose::Email, CodePurpose::Sms] {
        assert!(s.session_code(&sess.id_hash, p).await.unwrap().is_none());
    }
}
