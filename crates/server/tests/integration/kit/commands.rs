//! The `tweestap` binary as a child process: commands with a clean environment, run
//! to completion with a time limit, and a guard that kills what still runs.

use super::app::{Backend, TestApp};
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous: a debug build on a busy CI machine hashes with 19 MiB of Argon2.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// `tweestap` with none of the caller's `TWEESTAP_*` variables (so the shell
/// cannot change what a test sees), no input, and its output captured.
pub fn tweestap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tweestap"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TWEESTAP_") {
            c.env_remove(name);
        }
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `tweestap --data-dir <dir>`.
pub fn tweestap_in(data_dir: &Path) -> Command {
    let mut c = tweestap();
    c.arg("--data-dir").arg(data_dir);
    c
}

/// `tweestap` on a test app's data directory, database and public URL, logging
/// warnings only.
pub fn tweestap_on(app: &TestApp) -> Command {
    let mut c = tweestap_in(app.dir.path());
    c.env("TWEESTAP_PUBLIC_URL", &app.url)
        .env("TWEESTAP_LOG", "warn");
    if let Backend::Postgres(url) = &app.backend {
        c.env("TWEESTAP_DATABASE_URL", url);
    }
    c
}

/// Kills and reaps the child when dropped, so no test leaves a process behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How a finished command ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit status, stdout and stderr, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn read_all(r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(r).read_to_string(&mut s);
        s
    })
}

/// Runs a command to completion (with `stdin` as its input), killing it after
/// [`COMMAND_TIMEOUT`]. Blocks: from async tests use [`output`].
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
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

/// [`run`] without input, on a blocking thread so an async test's runtime (and the
/// server it may run) keeps going meanwhile.
pub async fn output(cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || run(cmd, None))
        .await
        .expect("the command's thread")
}

/// `tweestap user add <args> --password-stdin` with `password` as input.
pub fn add_user(mut cmd: Command, args: &[&str], password: &str) -> Output {
    cmd.args(["user", "add"]).args(args).arg("--password-stdin");
    run(cmd, Some(&format!("{password}\n")))
}
