//! Telling accounts apart by the database work a wrong password costs: a known
//! account took a backstop attempt (a write; 4 to 10 ms on PostgreSQL) that an
//! unknown address did not. Now both take the same throttles — the account (or
//! typed address) from this address, the address's budget, and a backstop (an
//! unknown address's own, by a keyed MAC) — so both run the same statements. The
//! timings are measured with the release build (docs/security.md).

use super::cast::account_id;
use super::threat_kit::{client_at, fresh_address};
use crate::kit::{stored_texts, Backend, TestApp};

crate::on_both_backends!(known_and_unknown_addresses_cost_the_same_statements);

const KNOWN: &str = "bekend@tweestad.example";
const UNKNOWN: &str = "onbekend@tweestad.example";

/// The throttles a wrong password from 127.0.0.`n` for `email` took, by kind,
/// with their counts (the address budget's row keeps a time, not a count).
async fn taken(app: &TestApp, n: u8, backstop: &str) -> Vec<String> {
    let rows = stored_texts(
        app,
        "SELECT key || ' ' || CAST(failures AS TEXT) FROM throttles ORDER BY key",
    )
    .await;
    let address = format!("127.0.0.{n}");
    let mut kinds: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (key, failures) = r.rsplit_once(' ')?;
            if key == format!("password:address:{address}") {
                Some("budget".to_owned())
            } else if key.ends_with(&format!(":{address}")) {
                Some(format!("account and address {failures}"))
            } else if key.starts_with(backstop) {
                Some(format!("backstop {failures}"))
            } else {
                None
            }
        })
        .collect();
    kinds.sort();
    kinds
}

async fn known_and_unknown_addresses_cost_the_same_statements(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user(KNOWN).await;
    let id = account_id(&app, KNOWN).await;
    let (a, b) = (fresh_address(), fresh_address());
    for (n, email) in [(a, KNOWN), (b, UNKNOWN)] {
        let r = client_at(&app, n).login(email, "raden maar").await;
        assert_eq!(r.status, 401, "{:?}", r.body);
    }
    let known = taken(&app, a, &format!("password:backstop:{id}")).await;
    let unknown = taken(&app, b, "password:typed-backstop:").await;
    let expected = ["account and address 1", "backstop 1", "budget"];
    assert_eq!(known, expected, "a known account");
    assert_eq!(
        unknown, known,
        "an unknown address takes what a known one takes"
    );
}
