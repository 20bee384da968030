//! Every page a browser test lands on is looked at as a person would see it, once per
//! test for each page (path, language, heading, messages): at 390 px and at 1280 px
//! nothing sticks out of the window, and axe-core finds no WCAG A/AA violation. A
//! screenshot of each width is kept under `target/screenshots/pages/<test>/` for a
//! person to look at. `wait_path` calls it, so no journey can add a page that is
//! never checked.

use fantoccini::{Client, Locator};
use std::collections::HashSet;
use std::sync::Mutex;

pub(super) const WIDTHS: [u32; 2] = [390, 1280];

/// The pages this test process has looked at already (nextest runs one test per process).
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// What tells two pages apart for a person: where, in which language, its heading,
/// and the messages it shows.
async fn identity(c: &Client) -> String {
    let found = c
        .execute(
            "const h = document.querySelector('main h1');
             const said = [...document.querySelectorAll('[role=alert], [role=status], .error, .notice')]
               .map(e => e.className).join(',');
             return [location.pathname, document.documentElement.lang,
                     h ? h.textContent.trim() : '', said].join(' | ');",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("reading the page: {e}"));
    found.as_str().unwrap_or_default().to_owned()
}

/// The running test's name, for the screenshots' folder.
fn test_name() -> String {
    let args: Vec<String> = std::env::args().collect();
    let name = args
        .iter()
        .position(|a| a == "--exact")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::thread::current().name().map(str::to_owned))
        .unwrap_or_else(|| "test".to_owned());
    slug(&name)
}

pub(super) fn slug(s: &str) -> String {
    s.chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
        .collect()
}

/// Looks at the page the browser shows, unless this test saw it already.
pub(super) async fn look(c: &Client) {
    let id = identity(c).await;
    let n = {
        let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        let seen = seen.get_or_insert_with(HashSet::new);
        if !seen.insert(id.clone()) {
            return;
        }
        seen.len()
    };
    let path = c.current_url().await.expect("url").path().to_owned();
    let size = c.get_window_size().await.expect("window size");
    let dir = format!("../../target/screenshots/pages/{}", test_name());
    if n == 1 {
        // Only this run's pages: an earlier run's would mislead.
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::create_dir_all(&dir);
    for w in WIDTHS {
        super::looks::width(c, w).await;
        if let Ok(png) = c.screenshot().await {
            let _ = std::fs::write(format!("{dir}/{n:02}{}-{w}.png", slug(&path)), png);
        }
        super::looks::assert_fits(c, &format!("{id} at {w} px")).await;
    }
    super::axe::assert_accessible(c, &id).await;
    let _ = c.set_window_size(size.0 as u32, size.1 as u32).await;
    // Resizing must not have left the test on another page.
    assert!(
        c.find(Locator::Css("main")).await.is_ok(),
        "{id}: still there"
    );
}
