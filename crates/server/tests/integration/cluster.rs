//! Several tweestap nodes on one PostgreSQL, and a database that goes away.
//!
//! These need PostgreSQL (127.0.0.1:5432 or `TWEESTAP_TEST_POSTGRES_URL`); without
//! it they skip loudly, and under `TWEESTAP_REQUIRE_ALL=1` they fail.

use crate::kit::commands::{self, tweestap_in, ChildGuard};
use crate::kit::{session_cookie, totp, PASSWORD};
use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::SystemClock;
use tweestap_testkit::TestDatabase;

/// A `tweestap serve` child process; killed when dropped.
struct Node {
    _child: ChildGuard,
    url: String,
}

/// `tweestap` on `data_dir`, a shared database and a shared secret key.
fn tweestap(data_dir: &std::path::Path, db: &str, key: &str) -> Command {
    let mut c = tweestap_in(data_dir);
    c.env("TWEESTAP_LOG", "warn")
        .env("TWEESTAP_DATABASE_URL", db)
        .env("TWEESTAP_SECRET_KEY", key);
    c
}

fn start_node(data_dir: &std::path::Path, db: &str, key: &str) -> Node {
    start_node_with(tweestap(data_dir, db, key))
}

/// `tweestap serve` from `command`, once it prints its URL.
fn start_node_with(mut command: Command) -> Node {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tweestap");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the node prints its URL");
    let url = line
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Node {
        _child: ChildGuard(child),
        url,
    }
}

fn add_user(data_dir: &std::path::Path, db: &str, key: &str, email: &str) {
    let out = commands::add_user(tweestap(data_dir, db, key), &["--email", email], PASSWORD);
    assert!(out.status.success(), "user add: {}", out.describe());
}

/// A browser-like client: one cookie jar, used against any node.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn post(c: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The code of `secret_b32` `offset_steps` steps from now on the wall clock (the
/// nodes run on it).
fn code(secret_b32: &str, offset_steps: i64) -> String {
    totp::code_at(secret_b32, Utc::now().timestamp() + 30 * offset_steps)
}

/// What two nodes share (a fresh database and the secret key) and what each has
/// of its own (a data directory); `None` without PostgreSQL.
struct Cluster {
    _database: TestDatabase,
    db: String,
    key: String,
    dir_a: tempfile::TempDir,
    dir_b: tempfile::TempDir,
}

impl Cluster {
    /// The `tweestap` command of the node whose data directory is `dir`.
    fn command(&self, dir: &tempfile::TempDir) -> Command {
        tweestap(dir.path(), &self.db, &self.key)
    }

    fn add_user(&self, dir: &tempfile::TempDir, email: &str) {
        add_user(dir.path(), &self.db, &self.key, email);
    }

    fn start(&self, dir: &tempfile::TempDir) -> Node {
        start_node(dir.path(), &self.db, &self.key)
    }
}

async fn cluster() -> Option<Cluster> {
    let database = TestDatabase::create().await?;
    Some(Cluster {
        db: database.url().to_owned(),
        _database: database,
        key: base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        dir_a: tempfile::tempdir().expect("dir"),
        dir_b: tempfile::tempdir().expect("dir"),
    })
}

#[tokio::test]
async fn two_nodes_share_sign_ins_replays_and_lock_outs() {
    let Some(cl) = cluster().await else {
        return;
    };
    cl.add_user(&cl.dir_a, "an@example.be");
    cl.add_user(&cl.dir_b, "bo@example.be");
    let a = cl.start(&cl.dir_a);
    let b = cl.start(&cl.dir_b);
    assert_ne!(a.url, b.url);

    // An sets up her app on node A...
    let c = client();
    let (s, r) = post(
        &c,
        &format!("{}/api/v1/login", a.url),
        json!({"email": "an@example.be", "password": PASSWORD}),
    )
    .await;
    assert_eq!((s, r["state"].as_str()), (200, Some("authenticated")));
    let (s, r) = post(
        &c,
        &format!("{}/api/v1/me/factors/totp", b.url),
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "the session of node A is good on node B: {r}");
    let secret = r["secret"].as_str().expect("secret").to_owned();
    let id = r["id"].as_str().expect("id").to_owned();
    // Confirm with the previous step's code, so the current one stays unused.
    let (s, r) = post(
        &c,
        &format!("{}/api/v1/me/factors/totp/{id}/confirm", a.url),
        json!({"code": code(&secret, -1)}),
    )
    .await;
    assert_eq!(s, 200, "{r}");

    // Password on A, code on B.
    let c = client();
    let (s, r) = post(
        &c,
        &format!("{}/api/v1/login", a.url),
        json!({"email": "an@example.be", "password": PASSWORD}),
    )
    .await;
    assert_eq!((s, r["state"].as_str()), (200, Some("second_factor")));
    let now = code(&secret, 0);
    let (s, r) = post(
        &c,
        &format!("{}/api/v1/login/second-factor", b.url),
        json!({"method": "totp", "code": now}),
    )
    .await;
    assert_eq!(
        (s, r["state"].as_str()),
        (200, Some("authenticated")),
        "{r}"
    );
    let me: Value = c
        .get(format!("{}/api/v1/me", a.url))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], "an@example.be");

    // The code just used on B is refused on A.
    let thief = client();
    let (s, _) = post(
        &thief,
        &format!("{}/api/v1/login", a.url),
        json!({"email": "an@example.be", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, r) = post(
        &thief,
        &format!("{}/api/v1/login/second-factor", a.url),
        json!({"method": "totp", "code": now}),
    )
    .await;
    assert_eq!(
        (s, r["error"].as_str()),
        (401, Some("invalid_code")),
        "replay"
    );

    // Wrong codes on A and B add up to one lock-out (5 in a row; one is spent above).
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (s, r) = post(
            &thief,
            &format!("{}/api/v1/login/second-factor", node.url),
            json!({"method": "totp", "code": "000000"}),
        )
        .await;
        assert!(s == 401 || s == 429, "attempt {i}: {s} {r}");
    }
    for node in [&a, &b] {
        let (s, r) = post(
            &thief,
            &format!("{}/api/v1/login/second-factor", node.url),
            json!({"method": "totp", "code": code(&secret, 1)}),
        )
        .await;
        assert_eq!(
            (s, r["error"].as_str()),
            (429, Some("too_many_attempts")),
            "locked on every node, even for a right code: {r}"
        );
        assert!(r["retry_after"].as_i64().unwrap_or(0) > 0);
    }

    // Bo, who has no factor, is untouched by An's lock.
    let (s, r) = post(
        &client(),
        &format!("{}/api/v1/login", b.url),
        json!({"email": "bo@example.be", "password": PASSWORD}),
    )
    .await;
    assert_eq!((s, r["state"].as_str()), (200, Some("authenticated")));

    drop((a, b));
}

/// A session one node keeps is refused by it as soon as another node ends it, or
/// the `tweestap` command disables its account: node B keeps what it read for 30 s
/// here, so only the voiding through PostgreSQL can make it refuse in time.
#[tokio::test]
async fn a_session_ended_elsewhere_is_refused_by_the_node_that_keeps_it() {
    let Some(cl) = cluster().await else {
        return;
    };
    cl.add_user(&cl.dir_a, "cy@example.be");
    cl.add_user(&cl.dir_a, "di@example.be");
    let keeps_long = cl.dir_b.path().join("tweestap.toml");
    std::fs::write(&keeps_long, "[database]\nsession_cache_seconds = 30\n").expect("config");
    let a = cl.start(&cl.dir_a);
    let b = {
        let mut c = cl.command(&cl.dir_b);
        c.env("TWEESTAP_CONFIG", &keeps_long);
        start_node_with(c)
    };

    for (email, ends) in [
        ("cy@example.be", "sign-out on A"),
        ("di@example.be", "user disable"),
    ] {
        let c = client();
        let signed_in = c
            .post(format!("{}/api/v1/login", a.url))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(signed_in.status().as_u16(), 200);
        // B is asked with the session's cookie as it was set, by a client without
        // a jar: the sign-out's removal cookie must not be what makes B refuse.
        let cookie = session_cookie(&signed_in);
        let plain = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let me = || {
            let request = plain
                .get(format!("{}/api/v1/me", b.url))
                .header(reqwest::header::COOKIE, &cookie);
            async move { request.send().await.expect("me").status().as_u16() }
        };
        // B reads the session, then serves it from what it keeps.
        for _ in 0..3 {
            assert_eq!(me().await, 200, "{email} on B");
        }
        if ends == "sign-out on A" {
            let (s, r) = post(&c, &format!("{}/api/v1/logout", a.url), json!({})).await;
            assert!(s == 200 || s == 204, "logout: {s} {r}");
        } else {
            let out = commands::run(
                {
                    let mut cmd = cl.command(&cl.dir_a);
                    cmd.args(["user", "disable", email]);
                    cmd
                },
                None,
            );
            assert!(out.status.success(), "disable: {}", out.describe());
        }
        // The notification comes in milliseconds; on a machine too busy to carry
        // it, B stops trusting what it keeps 1.5 s after its last heartbeat came
        // back (sent every half second), and refuses just the same. Far below the
        // 30 s B would keep it for, and above what a busy machine takes.
        let ended = std::time::Instant::now();
        let mut status = me().await;
        while status == 200 && ended.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            status = me().await;
        }
        assert_eq!(
            status,
            401,
            "{ends}: node B still serves {email}'s session after {:?}",
            ended.elapsed()
        );
    }
    drop((a, b));
}

/// A TCP relay between tweestap and PostgreSQL that the test can cut and restore,
/// like a network failure or a database restart would.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(JoinSet::new()));
        let (up2, links2) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound); // refused while "down"
                    continue;
                }
                let upstream = upstream.clone();
                links2.lock().await.spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Self {
            port,
            up,
            links,
            accept,
        }
    }

    /// Every open connection dies and new ones are closed at once.
    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.links.lock().await.abort_all();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[tokio::test]
async fn database_outage_answers_503_and_recovers_without_losing_or_doubling() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let db = database.url().to_owned();
    let mut target = url::Url::parse(&db).expect("url");
    let upstream = format!(
        "{}:{}",
        target.host_str().unwrap_or("127.0.0.1"),
        target.port().unwrap_or(5432)
    );
    let relay = Relay::start(upstream).await;
    target.set_port(Some(relay.port)).expect("port");
    let dir = tempfile::tempdir().expect("dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_owned(),
        database_url: target.to_string(),
        ..Config::default()
    };
    config.database.acquire_timeout_seconds = 1;
    let server = tweestap::spawn(&config, Arc::new(SystemClock))
        .await
        .expect("server");
    server
        .app
        .add_account("an@example.be", "An", Role::User, PASSWORD)
        .await
        .expect("account");
    let url = server.url();
    let http = client();

    // Traffic: sign-ins in a loop, counting what the clients were told.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, url) = (stop.clone(), url.clone());
        tokio::spawn(async move {
            let (mut ok, mut unavailable, mut other) = (0u32, 0u32, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let c = client();
                let r = c
                    .post(format!("{url}/api/v1/login"))
                    .json(&json!({"email": "an@example.be", "password": PASSWORD}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) if r.status() == 503 => {
                        let retry = r.headers().get("retry-after").is_some();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        assert_eq!(body["error"], "unavailable", "{body}");
                        assert!(retry, "503 carries Retry-After");
                        unavailable += 1;
                    }
                    Ok(r) => other.push(r.status().as_u16()),
                    Err(e) => panic!("the node stopped answering: {e}"),
                }
            }
            (ok, unavailable, other)
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.cut().await;
    // While the database is away: readiness says so, pages and API answer 503.
    let mut saw_unready = false;
    for _ in 0..50 {
        let r = http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .expect("readyz");
        if r.status() == 503 {
            saw_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_unready, "/readyz reports the database");
    assert_eq!(
        http.get(format!("{url}/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200,
        "liveness does not depend on the database"
    );
    let page = http
        .get(format!("{url}/account"))
        .header(
            "cookie",
            "tweestap_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .send()
        .await
        .expect("page");
    assert_eq!(
        page.status(),
        503,
        "a page, not a crash or a false sign-out"
    );
    assert!(page
        .text()
        .await
        .expect("text")
        .contains("tijdelijk niet bereikbaar"));
    tokio::time::sleep(Duration::from_secs(3)).await;

    relay.restore();
    let mut ready = false;
    for _ in 0..100 {
        let r = http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .expect("readyz");
        if r.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the node recovers by itself");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, unavailable, other) = traffic.await.expect("traffic");
    eprintln!("outage traffic: {ok} answered 200, {unavailable} answered 503");
    assert!(other.is_empty(), "only 200 or 503, got {other:?}");
    assert!(unavailable > 0, "the outage was seen");
    assert!(ok > 0);

    // Nothing lost, nothing doubled: one audit entry per sign-in a client was told
    // succeeded, and the account is still one account.
    let log = server
        .app
        .audit_log(100_000, Some("an@example.be"))
        .await
        .expect("audit");
    let successes = log.iter().filter(|r| r.event == "login_succeeded").count() as u32;
    // The one request in flight at the instant of the cut may have committed while
    // its answer was lost (no database can avoid that); anything more is a bug.
    assert!(
        successes == ok || successes == ok + 1,
        "{successes} recorded, {ok} answered 200, {unavailable} answered 503"
    );
    assert_eq!(server.app.accounts().await.expect("accounts").len(), 1);
    let (s, _) = post(
        &http,
        &format!("{url}/api/v1/login"),
        json!({"email": "an@example.be", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200);

    server.stop();
    drop(relay);
}
