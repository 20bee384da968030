//! CSV downloads (the console's lists and audit log): RFC 4180 quoting, and cells
//! that a spreadsheet would run as a formula defused.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// One field: quoted when it holds a comma, quote or line break; a leading `=`,
/// `+`, `-` or `@` gets a `'` first, so a spreadsheet never runs it as a formula.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The rows as a CSV attachment named `name`.
pub fn response(name: &str, lines: &[Vec<String>]) -> Response {
    let body: String = lines
        .iter()
        .map(|l| {
            let mut row = l.iter().map(|f| field(f)).collect::<Vec<_>>().join(",");
            row.push_str("\r\n");
            row
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The audit log's rows with their header, as both the API and the console export
/// them.
pub fn audit_lines(rows: &[(i64, tweestap_domain::audit::AuditRecord)]) -> Vec<Vec<String>> {
    let header = [
        "id",
        "at",
        "event",
        "account_id",
        "email",
        "ip",
        "user_agent",
        "detail",
    ];
    let mut lines = vec![header.map(str::to_owned).to_vec()];
    for (id, r) in rows {
        lines.push(vec![
            id.to_string(),
            r.at.to_rfc3339(),
            r.event.clone(),
            r.account_id.map(|a| a.to_string()).unwrap_or_default(),
            r.email.clone().unwrap_or_default(),
            r.ip.clone().unwrap_or_default(),
            r.user_agent.clone().unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
        ]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_defuses() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
    }
}
