//! Black-box tests of the `tweestap` binary: the administration commands, `serve`,
//! and configuration errors. Every test gets its own data directory; every child
//! process is killed when its guard drops, also when an assertion fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";
/// Generous: a debug build on a busy CI machine hashes with 19 MiB of Argon2.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variables tweestap reads; removed so the caller's shell cannot
/// change what a test sees.
const TWEESTAP_VARS: [&str; 8] = [
    "TWEESTAP_MIGRATE_AT_START",
    "TWEESTAP_CONFIG",
    "TWEESTAP_LISTEN",
    "TWEESTAP_DATA_DIR",
    "TWEESTAP_DATABASE_URL",
    "TWEESTAP_PUBLIC_URL",
    "TWEESTAP_SECRET_KEY",
    "TWEESTAP_LOG",
];

/// `tweestap` with a clean environment and nothing else set.
fn bare_tweestap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tweestap"));
    for v in TWEESTAP_VARS {
        c.env_remove(v);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `tweestap --data-dir <dir>`.
fn tweestap(data_dir: &Path) -> Command {
    let mut c = bare_tweestap();
    c.arg("--data-dir").arg(data_dir);
    c
}

/// Kills and reaps the child when dropped, so no test leaves a server behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_all(r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(r).read_to_string(&mut s);
        s
    })
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn describe(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs a command to completion (with `stdin` as its input), killing it after
/// [`COMMAND_TIMEOUT`].
fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut guard = ChildGuard(cmd.spawn().expect("start tweestap"));
    let child = &mut guard.0;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        match pipe.write_all(input.as_bytes()) {
            // A command refused before it read its input (clap) closes the pipe early.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
            _ => {}
        }
        // Dropping the pipe closes it: end of input.
    }
    let out = read_all(child.stdout.take().expect("stdout pipe"));
    let err = read_all(child.stderr.take().expect("stderr pipe"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for tweestap") {
            break s;
        }
        if Instant::now() > deadline {
            drop(guard);
            panic!(
                "tweestap did not finish within {COMMAND_TIMEOUT:?}; stderr:\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn add_user(data_dir: &Path, args: &[&str], password: &str) -> Output {
    let mut c = tweestap(data_dir);
    c.args(["user", "add"]).args(args).arg("--password-stdin");
    run(c, Some(&format!("{password}\n")))
}

#[test]
fn user_add_creates_accounts_and_refuses_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    let ok = add_user(
        data,
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
        data,
        &["--email", "AN@EXAMPLE.BE"],
        "another good passphrase",
    );
    assert!(!dup.status.success(), "{}", dup.describe());
    assert!(
        dup.stderr.contains("already exists"),
        "no clear message: {}",
        dup.describe()
    );

    let weak = add_user(data, &["--email", "bert@example.be"], "password");
    assert!(!weak.status.success(), "{}", weak.describe());
    assert!(
        weak.stderr.contains("password is too common"),
        "{}",
        weak.describe()
    );

    let bad_email = add_user(data, &["--email", "not-an-address"], PASSWORD);
    assert!(!bad_email.status.success(), "{}", bad_email.describe());
    assert!(
        bad_email.stderr.contains("not a valid e-mail address"),
        "{}",
        bad_email.describe()
    );

    // clap refuses the role before anything is opened or read.
    let role = add_user(
        data,
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
            let mut c = tweestap(data);
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
        data,
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

    let mut c = tweestap(data);
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

    let mut c = tweestap(data);
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
    let mut c = tweestap(data);
    c.args(["audit", "--limit", "5", "--email", "AN@example.be"]);
    let mine = run(c, None);
    assert!(
        mine.stdout.contains("account_created"),
        "{}",
        mine.describe()
    );
    let mut c = tweestap(data);
    c.args(["audit", "--email", "nobody@example.be"]);
    let none = run(c, None);
    assert!(none.status.success(), "{}", none.describe());
    assert!(none.stdout.trim().is_empty(), "{}", none.describe());
}

/// A `tweestap serve` in the background: stdout line by line, stderr collected.
struct Server {
    child: ChildGuard,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(mut cmd: Command) -> Self {
        let mut child = ChildGuard(cmd.spawn().expect("start tweestap serve"));
        let stdout = child.0.stdout.take().expect("stdout pipe");
        let stderr = child.0.stderr.take().expect("stderr pipe");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = collected.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            lines,
            stderr: collected,
        }
    }

    /// The first stdout line containing `needle`; `Err` with the reason when the
    /// process ends or `timeout` passes first.
    fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("no {needle:?} on stdout within {timeout:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Stdout closed: the process is ending. Give it a moment to be reaped.
                    let status = (0..100).find_map(|_| {
                        let s = self.child.0.try_wait().ok().flatten();
                        if s.is_none() {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        s
                    });
                    return Err(format!("tweestap stopped ({status:?}) before {needle:?}"));
                }
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` over plain HTTP/1.1; the status code and the body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP reply: {reply:?}")))?;
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls until `GET path` answers, or panics after `timeout`.
fn get_when_up(port: u16, path: &str, timeout: Duration) -> (u16, String) {
    let deadline = Instant::now() + timeout;
    loop {
        match http_get(port, path) {
            Ok(r) => return r,
            Err(e) if Instant::now() > deadline => panic!("GET {path} failed: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn serve_listens_where_told_and_keeps_its_files_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not there yet: serve creates it.
    let data = dir.path().join("data");

    // The free port may be taken by someone else between finding and binding it;
    // then try another one.
    let mut attempt = 0;
    let (mut server, port) = loop {
        attempt += 1;
        let port = free_port();
        let mut cmd = tweestap(&data);
        cmd.arg("serve")
            .env("TWEESTAP_LISTEN", format!("127.0.0.1:{port}"));
        let mut server = Server::start(cmd);
        match server.wait_for_line("listening on", COMMAND_TIMEOUT) {
            Ok(line) => {
                let want = format!("listening on http://127.0.0.1:{port}");
                assert!(
                    line.contains(&want),
                    "stdout said {line:?}, expected {want:?}"
                );
                break (server, port);
            }
            Err(why) if attempt < 3 && server.stderr().contains("cannot listen") => {
                eprintln!("port {port} was taken ({why}); trying another");
            }
            Err(why) => panic!("{why}; stderr:\n{}", server.stderr()),
        }
    };

    let (status, body) = get_when_up(port, "/healthz", Duration::from_secs(10));
    assert_eq!(status, 200, "/healthz: {body}");
    let (status, body) = get_when_up(port, "/readyz", Duration::from_secs(10));
    assert_eq!(status, 200, "/readyz: {body}");

    assert!(
        data.join("tweestap.db").is_file(),
        "no tweestap.db in {data:?}"
    );
    let key = data.join("secret.key");
    assert!(key.is_file(), "no secret.key in {data:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "secret.key has mode {mode:o}");
    }

    // Still serving: the checks above did not race a crash.
    assert!(
        server.child.0.try_wait().expect("try_wait").is_none(),
        "tweestap exited early; stderr:\n{}",
        server.stderr()
    );
    drop(server);
    // Killed: the port no longer answers.
    assert!(
        http_get(port, "/healthz").is_err(),
        "still serving after kill"
    );
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tweestap.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:9999\"\n").expect("write config");
    let mut c = tweestap(&dir.path().join("data"));
    c.arg("--config").arg(&file).args(["user", "list"]);
    let out = run(c, None);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr.contains(&file.display().to_string()),
        "the error does not name the file: {}",
        out.describe()
    );
    assert!(out.stderr.contains("lisen"), "{}", out.describe());
    assert!(
        !dir.path().join("data").exists(),
        "a refused configuration still touched the data directory"
    );

    let missing = dir.path().join("missing.toml");
    let mut c = tweestap(&dir.path().join("data"));
    c.arg("--config").arg(&missing).args(["user", "list"]);
    let out = run(c, None);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{}",
        out.describe()
    );
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from_file, from_env, from_flag) = (
        dir.path().join("file"),
        dir.path().join("env"),
        dir.path().join("flag"),
    );
    let file = dir.path().join("tweestap.toml");
    std::fs::write(
        &file,
        format!("data_dir = {:?}\n", from_file.display().to_string()),
    )
    .expect("write config");

    let list = |env: bool, flag: bool| {
        let mut c = bare_tweestap();
        c.env("TWEESTAP_CONFIG", &file);
        if env {
            c.env("TWEESTAP_DATA_DIR", &from_env);
        }
        if flag {
            c.arg("--data-dir").arg(&from_flag);
        }
        c.args(["user", "list"]);
        let out = run(c, None);
        assert!(out.status.success(), "{}", out.describe());
    };

    list(false, false);
    assert!(from_file.join("tweestap.db").is_file(), "file ignored");
    list(true, false);
    assert!(from_env.join("tweestap.db").is_file(), "env ignored");
    list(true, true);
    assert!(from_flag.join("tweestap.db").is_file(), "flag ignored");
}

/// Nodes told not to migrate refuse an old schema with advice, until `tweestap
/// migrate` has run; on SQLite and on PostgreSQL alike.
fn migrate_runs_once_and_nodes_can_skip_it(database_url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let with = |args: &[&str], skip: bool| {
        let mut c = tweestap(data);
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
    let Some(url) = rt.block_on(tweestap_store::testing::fresh_postgres_database()) else {
        return;
    };
    // Trust authentication ignores the password; it is there to be kept out of output.
    let mut with_password = url::Url::parse(&url).expect("url");
    with_password
        .set_password(Some("s3cret-pw"))
        .expect("password");
    migrate_runs_once_and_nodes_can_skip_it(with_password.as_str());
    rt.block_on(tweestap_store::testing::drop_database(&url));
}

#[test]
fn an_unknown_database_scheme_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tweestap(dir.path());
    c.args(["user", "list"])
        .env("TWEESTAP_DATABASE_URL", "mysql://root:hunter2@localhost/x");
    let out = run(c, None);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("mysql://"), "{}", out.describe());
    assert!(!out.stderr.contains("hunter2"), "the password is redacted");
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
        let ok = add_user(data, &["--email", email, "--name", "X"], PASSWORD);
        assert!(ok.status.success(), "{}", ok.describe());
    }
    let list = |extra: &[&str], config: Option<&Path>| {
        let mut c = tweestap(data);
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
