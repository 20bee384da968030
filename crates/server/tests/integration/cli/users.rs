//! `tweestap user add`, `user list` and `audit`.

use crate::kit::commands::{add_user, run, tweestap_in};
use crate::kit::PASSWORD;
use std::path::Path;

#[test]
fn user_add_creates_accounts_and_refuses_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    let ok = add_user(
        tweestap_in(data),
        &[
            "--email",
            "An@Example.be",
            "--name",
            "An",
            "--role",
            "support",
        ],
        PASSWORD,
    );
    assert!(ok.status.success(), "{}", ok.describe());
    assert!(
        ok.stdout.contains("an@example.be") && ok.stdout.contains("support"),
        "{}",
        ok.describe()
    );

    // The same address in other case is the same account.
    let dup = add_user(
        tweestap_in(data),
        &["--email", "AN@EXAMPLE.BE"],
        "another good passphrase",
    );
    assert!(!dup.status.success(), "{}", dup.describe());
    assert!(
        dup.stderr.contains("already exists"),
        "no clear message: {}",
        dup.describe()
    );

    let weak = add_user(
        tweestap_in(data),
        &["--email", "bert@example.be"],
        "password",
    );
    assert!(!weak.status.success(), "{}", weak.describe());
    assert!(
        weak.stderr.contains("password is too common"),
        "{}",
        weak.describe()
    );

    let bad_email = add_user(tweestap_in(data), &["--email", "not-an-address"], PASSWORD);
    assert!(!bad_email.status.success(), "{}", bad_email.describe());
    assert!(
        bad_email.stderr.contains("not a valid e-mail address"),
        "{}",
        bad_email.describe()
    );

    // clap refuses the role before anything is opened or read.
    let role = add_user(
        tweestap_in(data),
        &["--email", "cas@example.be", "--role", "root"],
        PASSWORD,
    );
    assert_eq!(role.status.code(), Some(2), "{}", role.describe());
    assert!(
        role.stderr.contains("invalid value 'root'") && role.stderr.contains("--role"),
        "{}",
        role.describe()
    );

    // None of the refusals created an account.
    let list = run(
        {
            let mut c = tweestap_in(data);
            c.args(["user", "list"]);
            c
        },
        None,
    );
    assert!(list.status.success(), "{}", list.describe());
    let accounts: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert_eq!(accounts.len(), 1, "{}", list.describe());
}

#[test]
fn user_list_and_audit_show_the_new_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let ok = add_user(
        tweestap_in(data),
        &[
            "--email",
            "An@Example.be",
            "--name",
            "An",
            "--role",
            "support",
        ],
        PASSWORD,
    );
    assert!(ok.status.success(), "{}", ok.describe());

    let mut c = tweestap_in(data);
    c.args(["user", "list"]);
    let list = run(c, None);
    assert!(list.status.success(), "{}", list.describe());
    let mut lines = list.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("E-MAIL") && header.contains("ROLE"),
        "{}",
        list.describe()
    );
    let row = lines
        .find(|l| l.contains("an@example.be"))
        .unwrap_or_else(|| panic!("account not listed: {}", list.describe()));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // E-MAIL NAME ROLE FACTORS SHARED CREATED
    assert_eq!(
        cols[..5],
        ["an@example.be", "An", "support", "0", "no"],
        "{row}"
    );
    assert!(
        !list.stdout.contains("An@Example.be"),
        "{}",
        list.describe()
    );

    let mut c = tweestap_in(data);
    c.arg("audit");
    let audit = run(c, None);
    assert!(audit.status.success(), "{}", audit.describe());
    assert!(
        audit
            .stdout
            .lines()
            .any(|l| l.contains("account_created") && l.contains("an@example.be")),
        "{}",
        audit.describe()
    );

    // Filtering by address (in any case) keeps the event; another address has none.
    let mut c = tweestap_in(data);
    c.args(["audit", "--limit", "5", "--email", "AN@example.be"]);
    let mine = run(c, None);
    assert!(
        mine.stdout.contains("account_created"),
        "{}",
        mine.describe()
    );
    let mut c = tweestap_in(data);
    c.args(["audit", "--email", "nobody@example.be"]);
    let none = run(c, None);
    assert!(none.status.success(), "{}", none.describe());
    assert!(none.stdout.trim().is_empty(), "{}", none.describe());
}

#[test]
fn shared_mailboxes_are_flagged_and_listed_on_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    for email in [
        "an@example.be",
        "Info@example.be",
        "secretariaat+portaal@example.nl",
    ] {
        let ok = add_user(
            tweestap_in(data),
            &["--email", email, "--name", "X"],
            PASSWORD,
        );
        assert!(ok.status.success(), "{}", ok.describe());
    }
    let list = |extra: &[&str], config: Option<&Path>| {
        let mut c = tweestap_in(data);
        if let Some(f) = config {
            c.arg("--config").arg(f);
        }
        c.args(["user", "list"]).args(extra);
        let out = run(c, None);
        assert!(out.status.success(), "{}", out.describe());
        out.stdout
            .lines()
            .skip(1)
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols[0].to_owned(), cols[4].to_owned())
            })
            .collect::<Vec<_>>()
    };
    let all = list(&[], None);
    assert!(
        all.contains(&("an@example.be".into(), "no".into())),
        "{all:?}"
    );
    assert!(
        all.contains(&("info@example.be".into(), "yes".into())),
        "{all:?}"
    );
    let shared = list(&["--shared"], None);
    let names: Vec<&str> = shared.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        ["info@example.be", "secretariaat+portaal@example.nl"],
        "{shared:?}"
    );

    // The list is the organisation's own.
    let file = dir.path().join("tweestap.toml");
    std::fs::write(&file, "[policy]\nshared_mailboxes = [\"an\"]\n").expect("config");
    let shared = list(&["--shared"], Some(&file));
    let names: Vec<&str> = shared.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["an@example.be"], "{shared:?}");
}
