//! `tweestap keys rotate-secret`, run as a child process on the data directory and
//! database of a running server: every secret at rest is sealed again under a new
//! key while people keep signing in; a rotation stopped after one batch, or killed,
//! finishes when run again; afterwards the old key opens nothing that is stored.

use crate::kit::commands::{output, run, tweestap_on, ChildGuard, Output};
use crate::kit::sms::{nth_sms_in, sms_code_in};
use crate::kit::{Backend, TestApp, PASSWORD};
use base64::Engine as _;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tweestap::at_rest::{read_key, KeyFiles};
use tweestap_domain::mail::{open_link, sealed_bytes, Notice};
use tweestap_domain::secret_box::{key_id_of, AtRestKey, KeyId, Keyring, MasterKey, SecretBox};
use uuid::Uuid;

/// Someone with an authenticator app.
struct Person {
    email: String,
    secret: String,
}

async fn person_with_app(app: &TestApp, email: &str) -> Person {
    app.add_user(email).await;
    let (_, secret) = app.client().enroll(app, email).await;
    Person {
        email: email.to_owned(),
        secret,
    }
}

/// Signs in with the password and the app's current code (in a new time step, so
/// the code is not a replay).
async fn signs_in(app: &TestApp, p: &Person) {
    app.next_step();
    let c = app.client();
    let r = c.login(&p.email, PASSWORD).await;
    assert_eq!(
        r.body["state"], "second_factor",
        "{}: {:?}",
        p.email, r.body
    );
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&p.secret) }),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "{} signs in with the app: {:?}",
        p.email, r.body
    );
}

async fn everyone_signs_in(app: &TestApp, people: &[Person]) {
    for p in people {
        signs_in(app, p).await;
    }
}

/// One sealed value as stored, with what it is sealed to (its associated data
/// travels with the row id).
#[derive(Debug)]
enum Stored {
    Factor(Uuid, Vec<u8>),
    SigningKey(String, Vec<u8>),
    /// A queued mail's id and its sealed link or code (base64url).
    Mail(Uuid, String),
}

impl Stored {
    fn key(&self) -> Option<KeyId> {
        match self {
            Stored::Factor(_, v) | Stored::SigningKey(_, v) => key_id_of(v),
            Stored::Mail(_, s) => key_id_of(&sealed_bytes(s).expect("base64url")),
        }
    }

    fn opens_with(&self, b: &SecretBox) -> bool {
        match self {
            Stored::Factor(id, v) => b.open(v, id.as_bytes()).is_ok(),
            Stored::SigningKey(kid, v) => b.open(v, kid.as_bytes()).is_ok(),
            Stored::Mail(id, s) => open_link(b, *id, s).is_ok(),
        }
    }
}

/// Factor secrets and signing keys by id, mail payloads by id.
type Rows = (
    Vec<(String, Vec<u8>)>,
    Vec<(String, Vec<u8>)>,
    Vec<(String, String)>,
);

/// Every sealed value in the database, read with SQL of its own.
async fn stored(app: &TestApp) -> Vec<Stored> {
    const FACTORS: &str = "SELECT CAST(id AS TEXT), secret_sealed FROM factors";
    const KEYS: &str = "SELECT kid, private_sealed FROM oidc_signing_keys";
    const MAIL: &str = "SELECT CAST(id AS TEXT), payload FROM mail_queue";
    let (factors, keys, mail): Rows = match &app.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.dir.path().join("tweestap.db").display());
            let db = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            let r = (
                sqlx::query_as(FACTORS)
                    .fetch_all(&db)
                    .await
                    .expect("factors"),
                sqlx::query_as(KEYS).fetch_all(&db).await.expect("keys"),
                sqlx::query_as(MAIL).fetch_all(&db).await.expect("mail"),
            );
            db.close().await;
            r
        }
        Backend::Postgres(url) => {
            let db = sqlx::PgPool::connect(url).await.expect("postgres");
            let r = (
                sqlx::query_as(FACTORS)
                    .fetch_all(&db)
                    .await
                    .expect("factors"),
                sqlx::query_as(KEYS).fetch_all(&db).await.expect("keys"),
                sqlx::query_as(MAIL).fetch_all(&db).await.expect("mail"),
            );
            db.close().await;
            r
        }
    };
    let uuid = |s: &str| Uuid::parse_str(s).expect("a uuid");
    let mut all: Vec<Stored> = factors
        .into_iter()
        .map(|(id, v)| Stored::Factor(uuid(&id), v))
        .collect();
    all.extend(keys.into_iter().map(|(kid, v)| Stored::SigningKey(kid, v)));
    all.extend(mail.into_iter().filter_map(|(id, payload)| {
        let notice = Notice::from_json(&payload).expect("a notice");
        Some(Stored::Mail(uuid(&id), notice.sealed()?.to_owned()))
    }));
    all
}

fn master_of(data_dir: &Path) -> MasterKey {
    let text = std::fs::read_to_string(data_dir.join("secret.key")).expect("secret.key");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("base64");
    MasterKey::from_bytes(&raw).expect("a key")
}

/// A box holding `key` alone.
fn only(master: &MasterKey, key: AtRestKey) -> SecretBox {
    SecretBox::with_keys(master, Keyring::new(key, None))
}

/// Every stored secret is sealed under `key`, which opens it; `old` opens none.
async fn all_under(app: &TestApp, key: &AtRestKey, old: &SecretBox) {
    let master = master_of(app.dir.path());
    let new = only(&master, key.clone());
    let stored = stored(app).await;
    assert!(stored.len() >= 6, "{stored:?}");
    for s in &stored {
        assert_eq!(s.key(), Some(key.id()), "{s:?}");
        assert!(s.opens_with(&new), "{s:?}");
        assert!(!s.opens_with(old), "the old key still opens {s:?}");
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn rotate(app: &TestApp, args: &[&str]) -> std::process::Command {
    let mut c = tweestap_on(app);
    c.args(["keys", "rotate-secret"]).args(args);
    c
}

/// Three people with an app (one also with a phone) and a password link in the
/// mail queue: secrets of every kind, sealed under the key derived from the
/// master key, as before any rotation.
async fn before_a_rotation(app: &TestApp) -> Vec<Person> {
    let mut people = Vec::new();
    for email in ["an@example.be", "bert@example.be", "chris@example.be"] {
        people.push(person_with_app(app, email).await);
    }
    // An adds a phone, signed in with her app.
    app.next_step();
    let c = app.client();
    c.login("an@example.be", PASSWORD).await;
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&people[0].secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let phone = json!({ "phone": "0470 12 34 56", "password": PASSWORD });
    let r = c.post("/api/v1/me/factors/sms", phone).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let code = sms_code_in(&nth_sms_in(app.dir.path(), 1).await);
    let r = c
        .post(
            &format!("/api/v1/me/factors/sms/{id}/confirm"),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .client()
        .post(
            "/api/v1/password/forgot",
            json!({ "email": "bert@example.be" }),
        )
        .await;
    assert_eq!(r.status, 202);
    let derived = AtRestKey::derived(&master_of(app.dir.path())).id();
    // The request runs after its 202 (the time taken tells nothing about the
    // address): its mail is queued a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stored = loop {
        let stored = stored(app).await;
        if stored.iter().any(|s| matches!(s, Stored::Mail(..)))
            || std::time::Instant::now() > deadline
        {
            break stored;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        stored.iter().any(|s| matches!(s, Stored::Mail(..))),
        "a sealed link in the mail queue: {stored:?}"
    );
    assert!(
        stored.iter().all(|s| s.key() == Some(derived)),
        "{stored:?}"
    );
    people
}

/// The phone still works: an SMS code signs an in.
async fn signs_in_by_sms(app: &TestApp, nth: usize) {
    let c = app.client();
    c.login("an@example.be", PASSWORD).await;
    let r = c.post("/api/v1/login/sms", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let code = sms_code_in(&nth_sms_in(app.dir.path(), nth).await);
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "sms", "code": code }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

fn succeeded(out: &Output) {
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout.contains("done: "), "{}", out.describe());
}

async fn rotating_the_secret_key_while_the_server_runs(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let mut people = before_a_rotation(&app).await;
    let master = master_of(app.dir.path());
    let files = KeyFiles::new(app.dir.path());

    // People keep signing in, and someone sets up an app, while the command runs.
    let cmd = tokio::spawn(output(rotate(&app, &["--wait", "3", "--batch-size", "2"])));
    let mut rounds = 0;
    while !cmd.is_finished() {
        signs_in(&app, &people[rounds % people.len()]).await;
        if rounds == 3 {
            people.push(person_with_app(&app, "dirk@example.be").await);
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = cmd.await.expect("the command");
    succeeded(&out);
    assert!(rounds > 4, "the server kept working during the rotation");
    assert!(
        out.stdout.contains("derived from secret.key"),
        "{}",
        out.describe()
    );

    let first = read_key(&files.current_path())
        .unwrap()
        .expect("at-rest.key");
    assert_eq!(mode(&files.current_path()), 0o600);
    assert!(!files.next_path().exists());
    all_under(&app, &first, &SecretBox::new(&master)).await;
    assert!(people.iter().any(|p| p.email == "dirk@example.be"));

    // The running server, and one restarted with the new key alone.
    everyone_signs_in(&app, &people).await;
    app.restart().await;
    everyone_signs_in(&app, &people).await;
    signs_in_by_sms(&app, 2).await;
    let audit = app.engine().audit_log(1000, None).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.event == "secrets_resealed")
            .count(),
        1,
        "the rotation is in the audit log"
    );

    // A second rotation, to a key given in a file: the old key file is kept apart.
    let given = AtRestKey::generate();
    let given_file = app.dir.path().join("given.key");
    tweestap::at_rest::write_key(&given_file, &given).unwrap();
    let given_arg = given_file.to_str().unwrap();
    let out = output(rotate(&app, &["--wait", "0", "--new-key-file", given_arg])).await;
    succeeded(&out);
    let kept = files.retired_path(first.id());
    assert!(
        out.stdout.contains(kept.to_str().unwrap()),
        "{}",
        out.describe()
    );
    assert_eq!(mode(&kept), 0o600);
    assert_eq!(read_key(&kept).unwrap().unwrap().id(), first.id());
    all_under(&app, &given, &only(&master, first)).await;
    everyone_signs_in(&app, &people).await;
    signs_in_by_sms(&app, 3).await;
}

async fn an_interrupted_rotation_finishes_when_run_again(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let people = before_a_rotation(&app).await;
    let master = master_of(app.dir.path());
    let files = KeyFiles::new(app.dir.path());
    let derived = AtRestKey::derived(&master);

    // Stopped after its first batch of one secret, as a crash would.
    let stop = [
        "--wait",
        "0",
        "--batch-size",
        "1",
        "--stop-after-batches",
        "1",
    ];
    let out = output(rotate(&app, &stop)).await;
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("run `tweestap keys rotate-secret` again"),
        "{}",
        out.describe()
    );
    let next = read_key(&files.next_path())
        .unwrap()
        .expect("at-rest.key.next");
    assert_eq!(mode(&files.next_path()), 0o600);
    let keys: Vec<Option<KeyId>> = stored(&app).await.iter().map(Stored::key).collect();
    assert_eq!(
        keys.iter().filter(|k| **k == Some(next.id())).count(),
        1,
        "one secret moved: {keys:?}"
    );
    assert!(keys
        .iter()
        .all(|k| *k == Some(next.id()) || *k == Some(derived.id())));
    everyone_signs_in(&app, &people).await;
    app.restart().await;
    everyone_signs_in(&app, &people).await;

    // Killed in the middle of a run (at a moment of its own: every moment must
    // leave every secret readable), once it has moved a few more secrets.
    let mut child = ChildGuard(
        rotate(
            &app,
            &["--wait", "0", "--batch-size", "1", "--pause-ms", "150"],
        )
        .spawn()
        .expect("start tweestap"),
    );
    crate::kit::eventually(30, "the rotation to move two more secrets", || async {
        let keys = stored(&app).await;
        keys.iter().filter(|s| s.key() == Some(next.id())).count() >= 3
    })
    .await;
    child.0.kill().expect("kill");
    let _ = child.0.wait();
    let keys: Vec<Option<KeyId>> = stored(&app).await.iter().map(Stored::key).collect();
    assert!(
        keys.iter().any(|k| *k == Some(derived.id())),
        "killed before it finished: {keys:?}"
    );
    assert!(files.next_path().exists());
    everyone_signs_in(&app, &people).await;

    // Run again: it finishes, with the key it started with.
    let out = output(rotate(&app, &["--wait", "0"])).await;
    succeeded(&out);
    let resumed = format!("resuming the rotation to at-rest key {}", next.id());
    assert!(out.stdout.contains(&resumed), "{}", out.describe());
    assert_eq!(
        read_key(&files.current_path()).unwrap().unwrap().id(),
        next.id()
    );
    all_under(&app, &next, &only(&master, derived)).await;
    everyone_signs_in(&app, &people).await;
    app.restart().await;
    everyone_signs_in(&app, &people).await;
    signs_in_by_sms(&app, 2).await;
}

crate::on_both_backends!(
    rotating_the_secret_key_while_the_server_runs,
    an_interrupted_rotation_finishes_when_run_again
);

/// Without a rotation under way there is nothing to promote, and a key file that
/// is not a key is refused before anything changes.
#[test]
fn a_bad_key_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    let mut c = crate::kit::commands::tweestap_in(dir.path());
    c.args(["keys", "rotate-secret", "--new-key-file"])
        .arg(&bad);
    let out = run(c, None);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("bad.key"), "{}", out.describe());
    assert!(!KeyFiles::new(dir.path()).next_path().exists());
}
