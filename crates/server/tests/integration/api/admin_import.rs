//! `POST /api/v1/admin/accounts/import` and `tweestap user import`: an existing user
//! base with the hashes its portal stored, signed in with the old passwords.

use crate::kit::commands::{output, tweestap_on};
use crate::kit::{stored_texts, Backend, Client, Reply, TestApp, PASSWORD};
use argon2::password_hash::{rand_core::OsRng, PasswordHasher as _, SaltString};
use serde_json::{json, Value};

const ADMIN: &str = "admin@example.be";
const HEADER: &str = "email,name,role,password_hash,invite";

/// An administrator whose session passed the code step just now.
async fn admin(app: &TestApp) -> Client {
    app.add_admin(ADMIN).await;
    let c = app.client();
    let (_, secret) = c.enroll(app, ADMIN).await;
    c.post("/api/v1/logout", json!({})).await;
    app.next_step();
    assert_eq!(
        c.login(ADMIN, PASSWORD).await.body["state"],
        "second_factor"
    );
    let code = json!({ "method": "totp", "code": app.code(&secret) });
    let r = c.post("/api/v1/login/second-factor", code).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    c
}

async fn import(c: &Client, query: &str, csv: &str) -> Reply {
    let path = format!("/api/v1/admin/accounts/import{query}");
    c.raw(&path, "text/csv", csv.as_bytes().to_vec()).await
}

async fn texts(app: &TestApp, sql: &str) -> Vec<String> {
    stored_texts(app, sql).await
}

async fn hash_of(app: &TestApp, email: &str) -> String {
    let sql = format!("SELECT password_hash FROM accounts WHERE email = '{email}'");
    texts(app, &sql).await.pop().expect("account")
}

async fn emails(app: &TestApp) -> Vec<String> {
    texts(app, "SELECT email FROM accounts ORDER BY email").await
}

async fn events(app: &TestApp, event: &str) -> Vec<String> {
    let sql =
        format!("SELECT COALESCE(detail, '') FROM audit_log WHERE event = '{event}' ORDER BY id");
    texts(app, &sql).await
}

fn counts(r: &Reply) -> [u64; 4] {
    ["created", "updated", "unchanged", "invited"].map(|k| r.body[k].as_u64().expect(k))
}

fn error_lines(r: &Reply) -> Vec<u64> {
    r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect()
}

/// The hash formats portals store, each made by the library such a portal uses.
fn portal_hashes() -> Vec<(&'static str, String)> {
    let salt = || SaltString::generate(&mut OsRng);
    let argon = |alg, m, t| {
        let params = argon2::Params::new(m, t, 1, None).expect("params");
        argon2::Argon2::new(alg, argon2::Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &salt())
            .expect("argon2")
            .to_string()
    };
    let pbkdf2 = pbkdf2::Pbkdf2
        .hash_password_customized(
            PASSWORD.as_bytes(),
            Some(pbkdf2::Algorithm::Pbkdf2Sha256.ident()),
            None,
            pbkdf2::Params {
                rounds: 1000,
                output_length: 32,
            },
            &salt(),
        )
        .expect("pbkdf2")
        .to_string();
    let scrypt = scrypt::Scrypt
        .hash_password_customized(
            PASSWORD.as_bytes(),
            None,
            None,
            scrypt::Params::new(10, 8, 1, 32).expect("params"),
            &salt(),
        )
        .expect("scrypt")
        .to_string();
    let bcrypt = |v| {
        bcrypt::hash_with_result(PASSWORD, 4)
            .expect("bcrypt")
            .format_for_version(v)
    };
    vec![
        // Weaker than the configured m=19456,t=2: upgraded too.
        ("argon2id", argon(argon2::Algorithm::Argon2id, 8192, 1)),
        ("argon2i", argon(argon2::Algorithm::Argon2i, 8192, 2)),
        ("argon2d", argon(argon2::Algorithm::Argon2d, 8192, 2)),
        ("pbkdf2-sha256", pbkdf2),
        ("scrypt", scrypt),
        ("bcrypt-2a", bcrypt(bcrypt::Version::TwoA)),
        ("bcrypt-2b", bcrypt(bcrypt::Version::TwoB)),
        ("bcrypt-2y", bcrypt(bcrypt::Version::TwoY)),
    ]
}

async fn each_hash_format_signs_in_with_the_old_password_and_becomes_argon2id(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = admin(&app).await;
    let hashes = portal_hashes();
    let mut csv = format!("{HEADER}\n");
    for (format, hash) in &hashes {
        // PHC strings hold commas (m=8192,t=1,p=1): CSV quotes them.
        csv.push_str(&format!(
            "{format}@example.be,Persoon {format},user,\"{hash}\",\n"
        ));
    }
    let r = import(&c, "", &csv).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(counts(&r), [8, 0, 0, 0]);
    assert_eq!(r.body["errors"], json!([]));

    for (format, hash) in &hashes {
        let email = format!("{format}@example.be");
        assert_eq!(&hash_of(&app, &email).await, hash, "copied as it is");
        // A wrong password is still wrong, and upgrades nothing.
        let wrong = app.client().login(&email, "wrong horse battery").await;
        assert_eq!(wrong.status, 401, "{format}");
        assert_eq!(&hash_of(&app, &email).await, hash);

        let r = app.client().login(&email, PASSWORD).await;
        assert_eq!(r.status, 200, "{format}: {:?}", r.body);
        assert_eq!(r.body["state"], "authenticated", "{format}");
        let now = hash_of(&app, &email).await;
        assert!(
            now.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{format}: {now}"
        );
        let sql = format!(
            "SELECT detail FROM audit_log WHERE event = 'password_hash_upgraded' AND email = '{email}'"
        );
        let upgraded = texts(&app, &sql).await;
        let from = format.split('-').next().unwrap_or(format);
        assert_eq!(upgraded.len(), 1, "{format}");
        assert!(
            upgraded[0].contains(&format!("from={from}")),
            "{upgraded:?}"
        );

        // The new hash is used from now on, and is not upgraded again.
        let r = app.client().login(&email, PASSWORD).await;
        assert_eq!(r.status, 200, "{format}");
        assert_eq!(hash_of(&app, &email).await, now);
        assert_eq!(texts(&app, &sql).await.len(), 1);
    }
}

async fn rows_without_a_password_or_with_a_bad_hash_open_no_account(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = admin(&app).await;
    let csv = format!("{HEADER}\nzonder@example.be,Zonder,,,\n");
    assert_eq!(counts(&import(&c, "", &csv).await), [1, 0, 0, 0]);
    for password in [PASSWORD, "", "!no-password"] {
        let r = app.client().login("zonder@example.be", password).await;
        assert_eq!(r.status, 401, "{password:?}");
    }
    // Forgotten password is the way in.
    let r = app
        .client()
        .post(
            "/api/v1/password/forgot",
            json!({ "email": "zonder@example.be" }),
        )
        .await;
    assert!(r.status < 300, "{:?}", r.body);

    for bad in [
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "$1$saltsalt$hash",
        "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ",
        "$2b$10$tooshort",
    ] {
        let csv = format!("{HEADER}\nslecht@example.be,Slecht,user,\"{bad}\",\n");
        let r = import(&c, "", &csv).await;
        assert_eq!((r.status, error_lines(&r)), (422, vec![2]), "{bad}");
        let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("password hash"), "{bad}: {message}");
    }
    assert!(!emails(&app).await.contains(&"slecht@example.be".to_owned()));
}

async fn a_dry_run_writes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = admin(&app).await;
    let before = emails(&app).await;
    let account_events = "SELECT event FROM audit_log WHERE event LIKE 'account%'";
    let audit_before = texts(&app, account_events).await.len();
    let csv = format!("{HEADER}\nan@example.be,An,support,,true\nbo@example.be,Bo,,,\n");
    let r = import(&c, "?dry_run=true", &csv).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(counts(&r), [2, 0, 0, 1]);
    assert_eq!(r.body["written"], false);
    assert_eq!(emails(&app).await, before);
    assert_eq!(texts(&app, account_events).await.len(), audit_before);
    // A dry run answers as the import would: 422 for errors when all or nothing.
    let csv = format!("{HEADER}\nan@example.be,An,root,,\ncas@example.be,,,,\n");
    let r = import(&c, "?dry_run=true", &csv).await;
    assert_eq!((r.status, error_lines(&r)), (422, vec![2]));
    let r = import(&c, "?dry_run=true&all_or_nothing=false", &csv).await;
    assert_eq!((r.status, error_lines(&r)), (200, vec![2]));
    assert_eq!(
        (counts(&r), r.body["written"].clone()),
        ([1, 0, 0, 0], json!(false))
    );
    assert_eq!(emails(&app).await, before);
}

async fn a_second_run_of_the_same_file_changes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = admin(&app).await;
    let bcrypt = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let csv = format!(
        "{HEADER}\nan@example.be,An Peeters,support,{bcrypt},false\nbo@example.be,Bo,,,\n{ADMIN},,admin,,\n"
    );
    let first = import(&c, "", &csv).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(counts(&first), [2, 0, 1, 0]);
    assert_eq!(first.body["written"], true);
    let account_events = "SELECT event FROM audit_log WHERE event LIKE 'account%' ORDER BY id";
    let audit = texts(&app, account_events).await.len();
    let again = import(&c, "", &csv).await;
    assert_eq!(counts(&again), [0, 0, 3, 0]);
    // Only the import itself is recorded.
    let after = texts(&app, account_events).await;
    assert_eq!(after.len(), audit + 1);
    assert_eq!(after.last().map(String::as_str), Some("accounts_imported"));
    let imported = events(&app, "accounts_imported").await;
    assert_eq!(imported.len(), 2);
    assert!(
        imported[1].contains(&format!("by={ADMIN}")) && imported[1].contains("unchanged=3"),
        "{imported:?}"
    );
    assert_eq!(events(&app, "account_created").await.len(), 3); // the admin and two

    // A changed row updates what it gives, and only that.
    let csv = format!("{HEADER}\nan@example.be,,user,,\nbo@example.be,Bo Janssens,,,\n");
    let r = import(&c, "", &csv).await;
    assert_eq!(counts(&r), [0, 2, 0, 0]);
    let updated = events(&app, "account_updated").await;
    assert!(updated[0].contains("role support -> user"), "{updated:?}");
    assert!(
        updated[1].contains("name \"Bo\" -> \"Bo Janssens\""),
        "{updated:?}"
    );
    assert_eq!(hash_of(&app, "an@example.be").await, bcrypt);
    let names = texts(
        &app,
        "SELECT name FROM accounts WHERE email = 'an@example.be'",
    )
    .await;
    assert_eq!(names, vec!["An Peeters".to_owned()]);
}

async fn bad_lines_are_reported_by_their_line_in_the_file(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = admin(&app).await;
    let before = emails(&app).await;
    // The quoted name of line 2 runs on to line 3; "line" is the line of the file a
    // row starts on, the header being line 1.
    let csv = "role,EMAIL,name,invite\n\
               user,an@example.be,\"An\nPeeters\",\n\
               user,geen-adres,Bo,\n\
               baas,cas@example.be,Cas,\n\
               user,dirk@example.be,Dirk,misschien\n\
               user,AN@example.be,An again,\n\
               support,eva@example.be,Eva,1\n";
    let r = import(&c, "", csv).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(error_lines(&r), vec![4, 5, 6, 7]);
    let messages: Vec<&str> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages[0].contains("not a valid e-mail address"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("unknown role \"baas\""),
        "{messages:?}"
    );
    assert!(messages[2].contains("invite"), "{messages:?}");
    assert!(messages[3].contains("first on line 2"), "{messages:?}");
    // What would have been done, but nothing was.
    assert_eq!(counts(&r), [2, 0, 0, 1]);
    assert_eq!(r.body["written"], false);
    assert_eq!(emails(&app).await, before);

    let r = import(&c, "", "email,naam,telefoon\nan@example.be,An,0470\n").await;
    assert_eq!((r.status, error_lines(&r)), (422, vec![1]));
    let m = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(m.contains("\"naam\"") && m.contains("\"telefoon\""), "{m}");
    let r = import(&c, "", "name,role\nAn,user\n").await;
    assert_eq!((r.status, error_lines(&r)), (422, vec![1]));
}

async fn keep_going_writes_the_good_lines_and_reports_the_bad(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = admin(&app).await;
    let csv =
        format!("{HEADER}\nan@example.be,An,,,\nnot-an-address,X,,,\nbo@example.be,Bo,boss,,\n");
    let r = import(&c, "?all_or_nothing=false", &csv).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(counts(&r), [1, 0, 0, 0]);
    assert_eq!(error_lines(&r), vec![3, 4]);
    assert_eq!(r.body["written"], true);
    assert!(emails(&app).await.contains(&"an@example.be".to_owned()));
    assert!(!emails(&app).await.contains(&"bo@example.be".to_owned()));
    let imported = events(&app, "accounts_imported").await;
    assert!(imported[0].contains("errors=2"), "{imported:?}");
}

async fn only_signed_in_admins_may_import(backend: Backend) {
    let app = TestApp::start(backend).await;
    let _admin = admin(&app).await;
    let csv = format!("{HEADER}\nnieuw@example.be,Nieuw,admin,,\n");
    let r = import(&app.client(), "", &csv).await;
    assert_eq!(
        (r.status, r.body["error"].clone()),
        (401, json!("unauthenticated"))
    );

    app.add_user("an@example.be").await;
    let user = app.client();
    assert_eq!(user.login("an@example.be", PASSWORD).await.status, 200);
    let r = import(&user, "", &csv).await;
    assert_eq!(
        (r.status, r.body["error"].clone()),
        (403, json!("forbidden"))
    );

    // The body is judged first, as everywhere in the API.
    let r = user
        .raw(
            "/api/v1/admin/accounts/import",
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].clone()),
        (415, json!("unsupported_media_type"))
    );
    assert!(!emails(&app).await.contains(&"nieuw@example.be".to_owned()));
}

/// Far past the API's 64 KiB body limit, in several batches of rows.
async fn a_large_file_is_imported_in_one_go(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = admin(&app).await;
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let mut csv = format!("{HEADER}\n");
    for i in 0..2500 {
        csv.push_str(&format!("persoon{i}@example.be,Persoon {i},user,{hash},\n"));
    }
    assert!(csv.len() > 150_000);
    let r = import(&c, "", &csv).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(counts(&r), [2500, 0, 0, 0]);
    assert_eq!(emails(&app).await.len(), 2501);
    assert_eq!(events(&app, "account_created").await.len(), 2501);
    let r = app.client().login("persoon2499@example.be", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn the_command_line_imports_the_same_way(backend: Backend) {
    let app = TestApp::start(backend).await;
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let file = app.dir.path().join("mensen.csv");
    let csv = format!("{HEADER}\nan@example.be,An,support,{hash},\nbo@example.be,Bo,,,\n");
    std::fs::write(&file, &csv).expect("write");
    let run = |args: &[&str]| {
        let mut cmd = tweestap_on(&app);
        cmd.args(["user", "import"]).arg(&file).args(args);
        output(cmd)
    };

    let dry = run(&["--dry-run"]).await;
    assert!(dry.status.success(), "{}", dry.describe());
    assert!(dry.stdout.contains("created: 2"), "{}", dry.describe());
    assert!(emails(&app).await.is_empty());

    let done = run(&["--json"]).await;
    assert!(done.status.success(), "{}", done.describe());
    let report: Value = serde_json::from_str(&done.stdout).expect("json");
    assert_eq!(
        (report["created"].clone(), report["errors"].clone()),
        (json!(2), json!([]))
    );
    let again = run(&[]).await;
    assert!(
        again.stdout.contains("unchanged: 2"),
        "{}",
        again.describe()
    );
    let imported = events(&app, "accounts_imported").await;
    assert!(imported[0].contains("by=cli"), "{imported:?}");

    let r = app.client().login("an@example.be", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(hash_of(&app, "an@example.be")
        .await
        .starts_with("$argon2id$"));

    std::fs::write(&file, format!("{HEADER}\ncas@example.be,Cas,,,\nbad,,,,\n")).expect("write");
    let bad = run(&[]).await;
    assert!(!bad.status.success(), "{}", bad.describe());
    assert!(bad.stdout.contains("line 3:"), "{}", bad.describe());
    assert!(
        bad.stderr.contains("nothing was written"),
        "{}",
        bad.describe()
    );
    let kept = run(&["--keep-going"]).await;
    assert!(!kept.status.success(), "{}", kept.describe());
    assert!(emails(&app).await.contains(&"cas@example.be".to_owned()));
}

crate::on_both_backends!(
    each_hash_format_signs_in_with_the_old_password_and_becomes_argon2id,
    rows_without_a_password_or_with_a_bad_hash_open_no_account,
    a_dry_run_writes_nothing,
    a_second_run_of_the_same_file_changes_nothing,
    bad_lines_are_reported_by_their_line_in_the_file,
    keep_going_writes_the_good_lines_and_reports_the_bad,
    only_signed_in_admins_may_import,
    a_large_file_is_imported_in_one_go,
    the_command_line_imports_the_same_way,
);
