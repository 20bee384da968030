//! The CI smoke run of the load generator (issue 19): every scenario but the
//! privacyIDEA one for a second, against the debug server binary, on SQLite and
//! PostgreSQL. It checks that the generator works — requests answered as expected,
//! right codes accepted, a report written — never how fast anything is.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The debug `tweestap` next to this package's binary (a workspace test run builds
/// it); built when missing, e.g. under `cargo nextest run -p tweestap-bench`.
fn server_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tweestap-bench")).with_file_name("tweestap");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "tweestap", "--bin", "tweestap"])
            .status()
            .unwrap();
        assert!(status.success(), "building the server failed");
    }
    bin
}

fn require_all() -> bool {
    std::env::var("TWEESTAP_REQUIRE_ALL").is_ok_and(|v| v.trim() == "1")
}

/// Runs the generator; `None` when the backend was skipped (PostgreSQL missing,
/// without `TWEESTAP_REQUIRE_ALL=1`: the generator then fails instead).
fn smoke(backend: &str) -> Option<(Value, String)> {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let md = dir.path().join("benchmarks.md");
    std::fs::write(&md, "# Benchmarks\n\nkept as it is\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tweestap-bench"))
        .args(["footprint", "pages", "code", "signin", "overload"])
        .args(["--backend", backend, "--duration", "1", "--runs", "1"])
        .args([
            "--accounts",
            "300",
            "--wrong-sessions",
            "40",
            "--right-codes",
            "40",
        ])
        .args([
            "--connections",
            "2",
            "--saturating-connections",
            "4",
            "--flood-connections",
            "8",
            "--settle",
            "0.5",
        ])
        .arg("--server-bin")
        .arg(server_bin())
        .arg("--json")
        .arg(&json)
        .arg("--write")
        .arg(&md)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the generator failed:\n{stderr}");
    let results: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let b = &results["backends"][0];
    if let Some(why) = b["skipped"].as_str() {
        assert!(
            !require_all(),
            "TWEESTAP_REQUIRE_ALL=1 but {backend} was skipped: {why}"
        );
        eprintln!("\n=== SKIPPING the {backend} smoke run: {why} ===\n{stderr}");
        return None;
    }
    Some((b.clone(), std::fs::read_to_string(&md).unwrap()))
}

/// The one run of the row `name`.
fn row<'a>(b: &'a Value, name: &str) -> &'a Value {
    b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == name)
        .map(|r| &r[1][0])
        .unwrap_or_else(|| panic!("no row {name:?} in {b}"))
}

fn count(s: &Value, label: &str) -> u64 {
    s["counts"][label].as_u64().unwrap_or(0)
}

fn check(b: &Value, md: &str) {
    for name in [
        "Sign-in page (`GET /login`)",
        "Profile page (`GET /account`)",
        "`GET /api/v1/me`",
        "Forward-auth (`GET /auth/request`)",
        "OIDC userinfo (`GET /oidc/userinfo`)",
    ] {
        let s = row(b, name);
        assert_eq!(s["errors"], 0, "{name}: {s}");
        assert!(count(s, "ok") > 0, "{name}: {s}");
    }
    let wrong = row(b, "Code step, wrong codes");
    assert_eq!(wrong["errors"], 0, "{wrong}");
    assert!(count(wrong, "refused") > 0, "{wrong}");
    // At the maximum rate, then paced at 70% of it: still every answer the check's.
    for name in [
        "Code step, wrong codes, 4 connections (the maximum rate)",
        "Code step, wrong codes, sent at 70% of that maximum (open loop)",
    ] {
        let s = row(b, name);
        assert_eq!(s["errors"], 0, "{name}: {s}");
        assert!(count(s, "refused") > 0, "{name}: {s}");
    }
    let right = row(b, "Code step, right codes");
    assert_eq!(right["errors"], 0, "right codes refused: {right}");
    assert!(count(right, "accepted") > 0, "{right}");
    let sign_in = row(b, "Full sign-in (password + code)");
    assert_eq!(sign_in["errors"], 0, "{sign_in}");
    assert!(count(sign_in, "signed_in") > 0, "{sign_in}");
    assert!(b["ratios"].as_array().unwrap().len() >= 3, "{b}");
    let o = &b["overload"][0];
    let flood = &o["flood"];
    assert!(
        count(flood, "401") + count(flood, "429") + count(flood, "503") > 0,
        "{flood}"
    );
    for alongside in ["code", "pages"] {
        assert_eq!(o[alongside]["errors"], 0, "{alongside}: {o}");
        assert!(o[alongside]["requests"].as_u64().unwrap() > 0, "{o}");
    }
    assert!(o["rss_peak_mb"].as_f64().unwrap() > 0.0, "{o}");
    let f = &b["footprint"][0];
    assert!(f["start_to_ready_ms"].as_f64().unwrap() > 0.0, "{f}");
    assert!(f["idle_rss_mb"].as_f64().unwrap() > 0.0, "{f}");
    assert!(md.starts_with("# Benchmarks\n\nkept as it is\n"), "{md}");
    assert!(md.contains("<!-- bench:begin -->") && md.contains("<!-- bench:end -->"));
    assert!(md.contains("| Code step, right codes |"), "{md}");
}

#[test]
fn the_load_generator_runs_every_scenario_on_sqlite() {
    let (b, md) = smoke("sqlite").expect("SQLite is never skipped");
    check(&b, &md);
}

#[test]
fn the_load_generator_runs_every_scenario_on_postgres() {
    if let Some((b, md)) = smoke("postgres") {
        check(&b, &md);
    }
}
