//! What the fuzz targets share: the checks a browser or an HTTP client would make
//! of what tweestap answers.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::CookieJar;

/// Whether `s` has a character a URL, header or cookie must never carry raw: ASCII
/// control characters, DEL, or any whitespace.
pub fn has_control_or_space(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\u{7f}')
}

/// `Content-Type` values a cross-site page can send without asking (the CORS
/// "safelisted" ones): what a JSON endpoint must refuse to keep CSRF out. The
/// essence as the Fetch standard reads it: up to `;`, HTTP whitespace trimmed,
/// lower-cased.
pub fn cross_site_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_matches([' ', '\t', '\r', '\n'])
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
    )
}

/// The `Cookie` header a browser sends back after the `Set-Cookie` headers of `jar`:
/// each cookie's `name=value`, the attributes dropped.
pub fn browser_cookie_header(jar: CookieJar) -> Option<HeaderValue> {
    let response = jar.into_response();
    let pairs: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .collect();
    HeaderValue::from_str(&pairs.join("; ")).ok()
}

/// The jar a browser's request would carry after `jar`'s `Set-Cookie` headers.
pub fn round_trip(jar: CookieJar) -> CookieJar {
    let mut headers = HeaderMap::new();
    if let Some(v) = browser_cookie_header(jar) {
        headers.insert(header::COOKIE, v);
    }
    CookieJar::from_headers(&headers)
}

/// The separator of an input's fields: the ASCII unit separator, so that the
/// committed corpora stay readable (`cat -v` shows it as `^_`).
pub const SEP: u8 = 0x1f;

/// An input's first `N` fields, split at [`SEP`]; missing ones are empty, and the last
/// one keeps any further separators.
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for (i, slot) in out.iter_mut().enumerate() {
        if i + 1 == N {
            *slot = rest;
            break;
        }
        match rest.iter().position(|&b| b == SEP) {
            Some(at) => {
                *slot = &rest[..at];
                rest = &rest[at + 1..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    out
}

/// A field as text (None when it is not UTF-8).
pub fn text(field: &[u8]) -> Option<&str> {
    std::str::from_utf8(field).ok()
}

/// A field as a decimal number (0 when it is none).
pub fn number(field: &[u8]) -> i64 {
    text(field)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_default()
}
