//! The tweestap server under test: built, configured, started as a child process
//! and watched through /proc.

use crate::BoxError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The release binary, built now (a no-op when it is up to date).
pub fn build_release() -> Result<PathBuf, BoxError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building the server: cargo build --release -p tweestap");
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "-p", "tweestap", "--bin", "tweestap"])
        .status()?;
    if !status.success() {
        return Err("cargo build --release -p tweestap failed".into());
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Ok(PathBuf::from(target).join("release").join("tweestap"))
}

/// A free port on loopback (bound, then let go).
pub fn free_port() -> Result<u16, BoxError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The configuration file the server and the seeding read. The lock-outs and
/// password throttles are set out of the way, so that every wrong code and every
/// flooding password takes the full check and writes its failure record (an
/// attacker spread over many accounts and addresses meets the same costs).
pub fn write_config(dir: &Path, port: u16, database_url: &str) -> Result<PathBuf, BoxError> {
    let data = dir.join("data");
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\n\
         data_dir = \"{}\"\n\
         database_url = \"{database_url}\"\n\
         public_url = \"http://127.0.0.1:{port}\"\n\
         [lockout]\n\
         max_failures = 1000000\n\
         password_max_failures = 1000000\n\
         password_account_max_failures = 1000000\n\
         password_address_max_failures = 1000000\n",
        data.display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A running server.
pub struct Running {
    child: Child,
    pub pid: u32,
    pub url: String,
    /// From the spawn to the first answer of `/healthz`.
    pub start_to_ready: Duration,
}

pub async fn start(bin: &Path, config: &Path, port: u16) -> Result<Running, BoxError> {
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("TWEESTAP_LOG", "error")
        .env_remove("TWEESTAP_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the server exited at once")?;
    let addr = format!("127.0.0.1:{port}");
    // Readiness by a raw request, polled every millisecond: precise enough for a
    // start that takes tens of milliseconds.
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(format!("the server exited while starting: {status}").into());
        }
        if healthz(&addr).await {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the server did not answer /healthz within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(Running {
        start_to_ready: started.elapsed(),
        child,
        pid,
        url,
    })
}

async fn healthz(addr: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let req = "GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    buf.starts_with(b"HTTP/1.1 200")
}

impl Running {
    pub async fn stop(mut self) {
        // SIGTERM first: a graceful stop lets SQLite checkpoint its log.
        let _ = std::process::Command::new("kill")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (field_kb(&status, "VmRSS:"), field_kb(&status, "VmHWM:"))
}

/// (VmRSS, RssAnon, RssFile, RssShmem) of a process, in KiB, read at one instant:
/// its resident memory, what of it is its own, what is mapped from files (the
/// binary's code, the C library) and what is shared memory.
pub fn rss_parts_kb(pid: u32) -> [u64; 4] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["VmRSS:", "RssAnon:", "RssFile:", "RssShmem:"].map(|name| field_kb(&status, name))
}

/// A field of a `/proc/<pid>/status` text in KiB (0 if missing).
fn field_kb(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The CPU time (user + system) a process has used, in seconds: what it got of
/// the cores, whatever else runs on them.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, 2)
}

/// The CPU seconds of every process on this machine whose command is `comm`,
/// summed with what the children they reaped had used: e.g. all of
/// PostgreSQL's (its server, whose reaped children include the connections
/// that ended meanwhile, and one process per open connection). None when none
/// runs here.
pub fn processes_cpu_seconds(comm: &str) -> Option<f64> {
    let dir = std::fs::read_dir("/proc").ok()?;
    let pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect();
    (!pids.is_empty()).then(|| pids.into_iter().map(|p| stat_seconds(p, 4)).sum())
}

/// The first `n` of a process's utime, stime, cutime and cstime, summed, in
/// seconds.
fn stat_seconds(pid: u32, n: usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first,
    // utime the 12th, then stime, cutime and cstime (USER_HZ, 100 a second).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(n)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// Samples a process's resident memory every 50 ms until stopped; the highest
/// value seen.
pub struct RssProbe {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssProbe {
    pub fn start(pid: u32) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = memory_kb(pid).0;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                peak = peak.max(memory_kb(pid).0);
            }
            peak.max(memory_kb(pid).0)
        });
        Self { stop, task }
    }

    pub async fn peak_kb(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}
