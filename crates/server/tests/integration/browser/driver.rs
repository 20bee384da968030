//! A headless Chromium under chromedriver, and the few things the journeys do in it.

use crate::kit::{free_port, skip_for_want_of};
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// chromedriver, killed with its process group (the chromium it started) on drop.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole process group: a test that panics before closing its session
        // would otherwise leave its chromium running.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(cmds: &[&str]) -> Option<String> {
    cmds.iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|c| c.to_string())
}

/// Starts chromedriver and a browser session, or None when they are not installed.
pub async fn browser(profile: &std::path::Path) -> Option<(Driver, Client)> {
    let driver = find(&["chromedriver", "/usr/bin/chromedriver"]);
    let chromium = find(&["chromium", "/usr/bin/chromium"]);
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        skip_for_want_of(
            "chromium/chromedriver",
            "install Debian's chromium and chromium-driver",
        );
        return None;
    };
    let port = free_port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        // Its own process group, with the chromium it starts (see `Driver`'s drop).
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let guard = Driver(child);
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium_path(&chromium),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1024,900", "--lang=nl-BE",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": "nl-BE,nl" }
        }
    }))
    .expect("capabilities");
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut last_err = String::new();
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                scripts(&c, false).await;
                return Some((guard, c));
            }
            Err(e) => last_err = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("could not start a browser session: {last_err}");
}

/// A DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": self.params });
        (Method::POST, Some(body.to_string()))
    }
}

/// Turns the pages' JavaScript on or off. The journeys run with it off, as for a
/// person who turned it off: every page must work without it. Only the tests' own
/// measuring (axe-core) turns it on for a moment.
pub async fn scripts(c: &Client, on: bool) {
    SCRIPTS_WANTED.store(on, std::sync::atomic::Ordering::SeqCst);
    set_scripts(c, on).await;
}

/// What the test asked for with [`scripts`] (each test is its own process), so a
/// measurement that needs scripts for a moment puts it back.
static SCRIPTS_WANTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn scripts_wanted() -> bool {
    SCRIPTS_WANTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Turns scripts on or off without changing what the test asked for.
pub async fn set_scripts(c: &Client, on: bool) {
    c.issue_cmd(Cdp {
        cmd: "Emulation.setScriptExecutionDisabled",
        params: serde_json::json!({ "value": !on }),
    })
    .await
    .unwrap_or_else(|e| panic!("turning JavaScript {}: {e}", if on { "on" } else { "off" }));
}

/// A DevTools command (e.g. the WebAuthn domain's virtual authenticators).
pub async fn cdp(c: &Client, cmd: &'static str, params: serde_json::Value) -> serde_json::Value {
    c.issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Pages' scripts do not run, here and after navigating elsewhere: a page whose
/// script would rename it keeps its own title.
pub async fn assert_scripts_off(c: &Client) {
    c.goto("data:text/html,<title>still</title><script>document.title='ran'</script>")
        .await
        .expect("a page with a script");
    assert_eq!(
        c.title().await.expect("title"),
        "still",
        "JavaScript is off"
    );
}

fn chromium_path(cmd: &str) -> String {
    if cmd.starts_with('/') {
        return cmd.to_owned();
    }
    let out = Command::new("which").arg(cmd).output().expect("which");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub async fn fill(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(value)
        .await
        .expect("typing");
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// The page's text; retried because a navigation in flight briefly has no body.
pub async fn body_text(c: &Client) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        match c.find(Locator::Css("body")).await {
            Ok(body) => match body.text().await {
                Ok(t) => return t,
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page has no body: {last}");
}

pub async fn path(c: &Client) -> String {
    c.current_url().await.expect("url").path().to_owned()
}

/// Waits (up to 10 s) for the navigation a click started to land on a path matching `want`.
pub async fn wait_path(c: &Client, want: impl Fn(&str) -> bool, what: &str) {
    for _ in 0..200 {
        if want(&path(c).await) && c.find(Locator::Css("main")).await.is_ok() {
            super::seen::look(c).await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never reached {what}; at {}", path(c).await);
}

pub async fn wait_text(c: &Client, needle: &str) {
    for _ in 0..200 {
        if body_text(c).await.contains(needle) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page never showed {needle:?}: {}", body_text(c).await);
}

/// Clicks a button whose form shows the same page again, and waits for the new one.
pub async fn click_and_wait_reload(c: &Client, css: &str) {
    let old = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    old.click().await.expect("click");
    for _ in 0..200 {
        // The element of the old page is gone once the new one is there.
        if old.text().await.is_err() && c.find(Locator::Css("main")).await.is_ok() {
            super::seen::look(c).await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{css}: the page was never shown again");
}
