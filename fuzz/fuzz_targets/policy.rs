//! The policy document: a change as the API takes it (a JSON merge patch) and as the
//! console's form sends it.
//!
//! Properties: a change taken gives a document that passes its own checks (every
//! role allows at least one method, none twice; every number in its range); it is
//! stored and read back (JSON) unchanged; an empty change, or the document itself as
//! a change, leaves it as it is; the console's form of it sends it back unchanged;
//! what it requires of each role at any moment can be worked out.

#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use tweestap_domain::account::Role;
use tweestap_domain::policy::document::PolicyDocument;
use tweestap_domain::policy::{Requirement, TwoFactorPolicy};
use tweestap_domain::sms::SmsPolicy;
use tweestap_web::fuzzing::{policy_form, policy_patch};

/// Input: a byte choosing the form (odd) or the JSON patch (even), then the body
/// and a moment (Unix seconds), separated by 0x1f.
struct Input<'a> {
    as_form: bool,
    body: &'a [u8],
    at: i64,
}

static BASE: LazyLock<PolicyDocument> = LazyLock::new(|| {
    PolicyDocument::from_settings(
        &TwoFactorPolicy::default(),
        &SmsPolicy::default(),
        chrono::Duration::days(7),
        chrono::Duration::days(5),
    )
});

fn check(d: &PolicyDocument) {
    assert_eq!(d.check(), Ok(()));
    for role in [Role::User, Role::Support, Role::Admin] {
        let methods = &d.role(role).methods;
        assert!(!methods.is_empty(), "{role:?}");
        let distinct: HashSet<String> = methods.iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(
            distinct.len(),
            methods.len(),
            "{role:?} allows a method twice: {methods:?}"
        );
    }
    assert!(d.remember_device_days <= 90);
    assert!((1..=30).contains(&d.enrollment_link_days) && (1..=30).contains(&d.invite_days));
    assert!(d.reminder_days.iter().all(|&n| (1..=365).contains(&n)));
    assert!(d.sms.calling_codes.iter().all(|&c| (1..=999).contains(&c)));
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let [body, at] = tweestap_fuzz::fields(rest);
    let input = Input {
        as_form: kind & 1 != 0,
        body,
        at: tweestap_fuzz::number(at),
    };
    let patch = if input.as_form {
        let fields: HashMap<String, String> = url::form_urlencoded::parse(input.body)
            .into_owned()
            .collect();
        policy_patch(&fields)
    } else {
        match serde_json::from_slice(input.body) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    let Ok(d) = BASE.patched(&patch) else {
        return;
    };
    check(&d);

    let json = serde_json::to_value(&d).expect("serialises");
    let back: PolicyDocument = serde_json::from_value(json.clone()).expect("reads back");
    assert_eq!(back, d);
    assert_eq!(d.patched(&serde_json::json!({})).as_ref(), Ok(&d));
    assert_eq!(d.patched(&json).as_ref(), Ok(&d));
    assert_eq!(
        BASE.patched(&policy_patch(&policy_form(&d))).as_ref(),
        Ok(&d),
        "the console's form"
    );

    if let Some(now) = DateTime::from_timestamp(input.at % 20_000_000_000, 0) {
        let rules = d.two_factor();
        for role in [Role::User, Role::Support, Role::Admin] {
            if let Requirement::Optional {
                days_left: Some(n), ..
            } = rules.requirement(role, now)
            {
                assert!(n >= 1, "{role:?}: {n} days left");
            }
        }
    }
});
