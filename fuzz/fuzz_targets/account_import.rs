//! The CSV of an account import (`tweestap user import`, the console's import and
//! `POST /api/v1/admin/accounts/import`).
//!
//! Properties: every row taken has an address that reads the same again, appears
//! once, a recognised password hash if any, and a trimmed name if any; rows and
//! errors each come in the order of their lines, which lie within the file and are
//! never shared by a row and an error; a header without an email column takes no
//! rows; reading the same
//! file twice gives the same answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use tweestap_domain::account::Email;
use tweestap_domain::account_import::parse;
use tweestap_domain::password::formats::recognise;

fuzz_target!(|data: &[u8]| {
    let p = parse(data);
    let line_breaks = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64;

    let mut seen = HashSet::new();
    let mut last = 1;
    for row in &p.rows {
        assert!(row.line > last, "row lines {} after {last}", row.line);
        assert!(
            row.line <= line_breaks + 1,
            "line {} of a file with {line_breaks} breaks",
            row.line
        );
        last = row.line;
        assert_eq!(Email::parse(row.email.as_str()).as_ref(), Ok(&row.email));
        assert!(seen.insert(row.email.clone()), "{} twice", row.email);
        if let Some(h) = &row.password_hash {
            assert!(recognise(h).is_ok(), "{h:?}");
        }
        if let Some(n) = &row.name {
            assert!(!n.is_empty() && n.trim() == n, "{n:?}");
        }
    }
    let mut last = 0;
    for e in &p.errors {
        assert!(
            e.line >= 1 && e.line >= last,
            "error lines {} after {last}",
            e.line
        );
        assert!(
            e.line <= line_breaks + 1,
            "line {} of a file with {line_breaks} breaks",
            e.line
        );
        last = e.line;
        assert!(
            p.rows.iter().all(|r| r.line != e.line),
            "line {} is a row and an error",
            e.line
        );
    }
    // A header without an email column takes nothing.
    let file = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    let mut header = csv::ByteRecord::new();
    let has_email = matches!(reader.read_byte_record(&mut header), Ok(true))
        && header
            .iter()
            .any(|f| String::from_utf8_lossy(f).trim().to_lowercase() == "email");
    if !has_email {
        assert!(p.rows.is_empty(), "rows without an email column");
    }

    let again = parse(data);
    assert_eq!(again.rows, p.rows);
    assert_eq!(again.errors, p.errors);
});
