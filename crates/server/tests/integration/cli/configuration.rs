//! Where the configuration comes from, and what is refused (by name).

use crate::kit::commands::{run, tweestap, tweestap_in};

#[test]
fn a_config_file_with_an_unknown_key_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tweestap.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:9999\"\n").expect("write config");
    let mut c = tweestap_in(&dir.path().join("data"));
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
    let mut c = tweestap_in(&dir.path().join("data"));
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
        let mut c = tweestap();
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

/// A value outside its range stops `serve` before it listens, and the message names
/// the key, the rule and the value.
#[test]
fn serve_refuses_a_value_out_of_range_by_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tweestap.toml");
    std::fs::write(&file, "[database]\nmax_connections = 0\n").expect("write config");
    let mut c = tweestap_in(&dir.path().join("data"));
    c.arg("--config")
        .arg(&file)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let out = run(c, None);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("[database] max_connections must be at least 1, got 0"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains("listening on"), "{}", out.describe());
}
