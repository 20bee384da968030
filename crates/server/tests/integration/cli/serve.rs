//! `tweestap serve` as a child process, reached over plain HTTP.

use crate::kit::commands::{tweestap_in, ChildGuard, COMMAND_TIMEOUT};
use crate::kit::free_port;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `tweestap serve` in the background: stdout line by line, stderr collected.
pub(super) struct Server {
    child: ChildGuard,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub(super) fn start(mut cmd: Command) -> Self {
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
    pub(super) fn wait_for_line(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, String> {
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

    pub(super) fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
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
        let mut cmd = tweestap_in(&data);
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

/// SIGTERM (as systemd and container runtimes stop a service): tweestap stops
/// taking connections, still answers the request in flight, then exits cleanly.
#[test]
fn sigterm_answers_the_request_in_flight_then_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut attempt = 0;
    let (mut server, port) = loop {
        attempt += 1;
        let port = free_port();
        let mut cmd = tweestap_in(dir.path());
        cmd.arg("serve")
            .env("TWEESTAP_LISTEN", format!("127.0.0.1:{port}"))
            .env("TWEESTAP_LOG", "warn");
        let mut server = Server::start(cmd);
        match server.wait_for_line("listening on", COMMAND_TIMEOUT) {
            Ok(_) => break (server, port),
            Err(why) if attempt < 3 && server.stderr().contains("cannot listen") => {
                eprintln!("port {port} was taken ({why}); trying another");
            }
            Err(why) => panic!("{why}; stderr:\n{}", server.stderr()),
        }
    };
    let (status, _) = get_when_up(port, "/healthz", Duration::from_secs(10));
    assert_eq!(status, 200);

    // A sign-in whose body is only half sent when the signal comes.
    let body = r#"{"email":"nobody@example.be","password":"correct horse battery"}"#;
    let (first, rest) = body.split_at(20);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .expect("half a request");
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(500));

    // No new connections...
    assert!(
        http_get(port, "/healthz").is_err(),
        "still taking connections after SIGTERM"
    );
    // ...but the one in flight gets its answer.
    s.write_all(rest.as_bytes()).expect("the rest");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("the answer");
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply:?}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after SIGTERM; stderr:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}; stderr:\n{}", server.stderr());
}
