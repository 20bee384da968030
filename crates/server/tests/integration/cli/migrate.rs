//! `tweestap migrate`, and nodes that do not migrate at start.

use crate::kit::commands::{run, tweestap_in};
use tweestap_testkit::TestDatabase;

/// Nodes told not to migrate refuse an old schema with advice, until `tweestap
/// migrate` has run; on SQLite and on PostgreSQL alike.
fn migrate_runs_once_and_nodes_can_skip_it(database_url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let with = |args: &[&str], skip: bool| {
        let mut c = tweestap_in(data);
        c.args(args);
        if !database_url.is_empty() {
            c.env("TWEESTAP_DATABASE_URL", database_url);
        }
        if skip {
            c.env("TWEESTAP_MIGRATE_AT_START", "false");
        }
        run(c, None)
    };

    let refused = with(&["user", "list"], true);
    assert!(!refused.status.success(), "{}", refused.describe());
    assert!(
        refused.stderr.contains("tweestap migrate"),
        "{}",
        refused.describe()
    );

    let migrated = with(&["migrate"], false);
    assert!(migrated.status.success(), "{}", migrated.describe());
    assert!(
        migrated.stdout.contains("is up to date"),
        "{}",
        migrated.describe()
    );
    assert!(
        !migrated.stdout.contains("s3cret-pw") && !migrated.stderr.contains("s3cret-pw"),
        "never a password in output: {}",
        migrated.describe()
    );
    // Twice is harmless.
    assert!(with(&["migrate"], false).status.success());

    let listed = with(&["user", "list"], true);
    assert!(listed.status.success(), "{}", listed.describe());
    assert!(listed.stdout.contains("E-MAIL"), "{}", listed.describe());
}

#[test]
fn migrate_on_sqlite() {
    migrate_runs_once_and_nodes_can_skip_it("");
}

#[test]
fn migrate_on_postgres() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(database) = rt.block_on(TestDatabase::create()) else {
        return;
    };
    let url = database.url();
    // Trust authentication ignores the password; it is there to be kept out of output.
    let mut with_password = url::Url::parse(url).expect("url");
    with_password
        .set_password(Some("s3cret-pw"))
        .expect("password");
    migrate_runs_once_and_nodes_can_skip_it(with_password.as_str());
}

#[test]
fn an_unknown_database_scheme_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tweestap_in(dir.path());
    c.args(["user", "list"])
        .env("TWEESTAP_DATABASE_URL", "mysql://root:hunter2@localhost/x");
    let out = run(c, None);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("mysql://"), "{}", out.describe());
    assert!(!out.stderr.contains("hunter2"), "the password is redacted");
}
