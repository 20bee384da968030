//! axe-core (the accessibility rules of WCAG 2 A and AA) run on a page in the
//! browser: zero violations. The script comes from npm (`axe-core`), installed by
//! `.ci/run` under `target/axe/`; without it the check is skipped loudly (and fails
//! when `TWEESTAP_REQUIRE_ALL=1`).

use crate::kit::skip_for_want_of;
use fantoccini::Client;
use std::sync::OnceLock;

/// Where `.ci/run` installs it, from the integration test's working directory
/// (the crate); `TWEESTAP_AXE_JS` names another file.
const INSTALLED: &str = "../../target/axe/node_modules/axe-core/axe.min.js";

fn script() -> Option<&'static str> {
    static AXE: OnceLock<Option<String>> = OnceLock::new();
    AXE.get_or_init(|| {
        let path = std::env::var("TWEESTAP_AXE_JS").unwrap_or_else(|_| INSTALLED.to_owned());
        let found = std::fs::read_to_string(&path).ok();
        if found.is_none() {
            skip_for_want_of(
                "axe-core",
                "npm install --prefix target/axe axe-core@4.14.1",
            );
        }
        found
    })
    .as_deref()
}

/// No WCAG 2 A/AA violation on the page the browser shows; `what` names it.
pub(super) async fn assert_accessible(c: &Client, what: &str) {
    let Some(axe) = script() else { return };
    let run = format!(
        "{axe}\n;const done = arguments[arguments.length - 1];
         axe.run(document, {{ runOnly: {{ type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }} }})
           .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): '
               + v.nodes.map(n => n.target.join(' ')).join(', '))))
           .catch(e => done(['axe failed: ' + e]));"
    );
    // The pages run with JavaScript off; axe-core needs it for a moment.
    super::driver::set_scripts(c, true).await;
    let found = c.execute_async(&run, vec![]).await;
    super::driver::set_scripts(c, super::driver::scripts_wanted()).await;
    let found = found.unwrap_or_else(|e| panic!("{what}: running axe-core: {e}"));
    let violations: Vec<String> = found
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        violations.is_empty(),
        "{what}: accessibility violations:\n{}",
        violations.join("\n")
    );
}
