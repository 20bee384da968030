//! Side by side: privacyIDEA, installed and started by `bench/privacyidea/setup.sh`
//! (a throw-away venv, SQLite, TOTP tokens, gunicorn on loopback), driven through
//! `POST /validate/check` by the same load engine as tweestap's code step.

use crate::load::{drive, Http, Plan, Verdict};
use crate::stats::Summary;
use crate::BoxError;
use chrono::Utc;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tweestap_domain::totp::TotpParams;

#[derive(Deserialize)]
struct Setup {
    url: String,
    #[serde(default)]
    version: Option<String>,
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
struct TokenEntry {
    user: String,
    realm: String,
    secret_base32: String,
}

struct PiToken {
    user: String,
    realm: String,
    secret: Vec<u8>,
}

/// A running privacyIDEA.
pub struct PrivacyIdea {
    http: Http,
    tokens: Arc<Vec<PiToken>>,
    pub version: String,
    out: PathBuf,
    stop_script: PathBuf,
}

/// Runs the set-up script; an error says why (the scenario is then skipped).
pub async fn start(script: &Path, tokens: usize) -> Result<PrivacyIdea, BoxError> {
    if !script.exists() {
        return Err(format!("{} is missing", script.display()).into());
    }
    let out = std::env::temp_dir().join(format!(
        "tweestap-bench-privacyidea-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    let port = crate::server::free_port()?;
    eprintln!(
        "setting up privacyIDEA: {} (installs it into a venv the first time)",
        script.display()
    );
    let status = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&out)
        .args(["--tokens", &tokens.to_string(), "--port", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .status()
        .await?;
    if !status.success() {
        return Err(format!("{} failed ({status})", script.display()).into());
    }
    let setup: Setup = serde_json::from_slice(&std::fs::read(&out)?)?;
    let tokens = setup
        .tokens
        .into_iter()
        .map(|t| {
            let b32 = t.secret_base32.trim_end_matches('=').to_ascii_uppercase();
            Ok(PiToken {
                user: t.user,
                realm: t.realm,
                secret: data_encoding::BASE32_NOPAD.decode(b32.as_bytes())?,
            })
        })
        .collect::<Result<Vec<_>, data_encoding::DecodeError>>()?;
    if tokens.is_empty() {
        return Err("privacyIDEA's set-up listed no tokens".into());
    }
    Ok(PrivacyIdea {
        http: Http::new(&setup.url),
        tokens: Arc::new(tokens),
        version: setup.version.unwrap_or_else(|| "privacyIDEA".into()),
        out,
        stop_script: script.with_file_name("stop.sh"),
    })
}

impl PrivacyIdea {
    /// Wrong codes rotating over the tokens, as tweestap's code step gets them.
    pub async fn wrong_codes(&self, plan: Plan) -> Summary {
        let (http, tokens) = (self.http.clone(), self.tokens.clone());
        let conns = plan.connections;
        let sample = drive(plan, move |w, i| {
            let (http, tokens) = (http.clone(), tokens.clone());
            async move {
                let n = i as usize * conns + w;
                let t = &tokens[n % tokens.len()];
                let code = wrong_code(&t.secret, n as u64 * 7919);
                let r = http
                    .post_form(
                        "/validate/check",
                        &[],
                        &[("user", &t.user), ("realm", &t.realm), ("pass", &code)],
                    )
                    .await;
                match r {
                    Ok(r) if r.status == 200 => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.body).unwrap_or_default();
                        match v["result"]["value"].as_bool() {
                            Some(false) => Verdict::Ok("refused".into()),
                            Some(true) => Verdict::Err("a wrong code was accepted".into()),
                            None => Verdict::Err(format!("unexpected answer: {v}")),
                        }
                    }
                    Ok(r) => Verdict::Err(format!("status {}", r.status)),
                    Err(e) => Verdict::Err(e),
                }
            }
        })
        .await;
        sample.summary(0)
    }

    pub async fn stop(self) {
        let _ = tokio::process::Command::new("bash")
            .arg(&self.stop_script)
            .arg(&self.out)
            .arg("--clean")
            .status()
            .await;
        let _ = std::fs::remove_file(&self.out);
    }
}

/// A code wrong in the current step and either side of it.
fn wrong_code(secret: &[u8], salt: u64) -> String {
    let p = TotpParams::default();
    let now = Utc::now().timestamp();
    let taken: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|d| p.code_at(secret, now + d))
        .collect();
    (0..4u64)
        .map(|k| format!("{:06}", (salt + k) % 1_000_000))
        .find(|c| !taken.contains(c))
        .unwrap_or_else(|| "000000".into())
}
