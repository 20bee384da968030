//! The machine the figures come from, read from /proc.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub load_average: String,
    pub rustc: String,
    pub postgres: String,
}

impl Machine {
    pub fn read(postgres: String) -> Self {
        let file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = file("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_kb: f64 = file("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Self {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu,
            memory_gib: memory_kb / 1024.0 / 1024.0,
            kernel: file("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: file("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            rustc,
            postgres,
        }
    }
}

/// The PostgreSQL server's version, as it says it.
pub async fn postgres_version(url: &str) -> String {
    let out = tokio::process::Command::new("psql")
        .args([url, "-tAc", "SHOW server_version"])
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            format!("PostgreSQL {}", String::from_utf8_lossy(&o.stdout).trim())
        }
        _ => "PostgreSQL (version unknown)".into(),
    }
}
