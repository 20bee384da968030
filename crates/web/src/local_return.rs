//! Where a page may send the browser back to inside tweestap (`next` of the language
//! switch, the console's step-up): parsed as browsers parse a URL (the WHATWG rules,
//! which drop tabs and newlines and read `\` as `/`), and kept only when it stays on
//! this origin. The answer is the parsed path and query, re-serialised, so it never
//! carries a control character into a `Location` header.

use url::Url;

/// A base no real host has: only its origin matters.
const BASE: &str = "http://tweestap.invalid/";

/// The local path and query `next` names, or None when it leaves this origin (or
/// is not a URL at all).
pub fn local_path(next: &str) -> Option<String> {
    let base = Url::parse(BASE).ok()?;
    // A relative reference must start at the root: "evil.example" or "?x" would be
    // read against the base's path.
    if !next
        .trim_start_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
        .starts_with('/')
    {
        return None;
    }
    let url = base.join(next).ok()?;
    if url.origin() != base.origin() {
        return None;
    }
    let mut out = url.path().to_owned();
    // Dot segments and encoded dots ("/.//evil.example", "/a/..//evil.example",
    // "/%2e//evil.example") resolve to a path that starts with "//", which a browser
    // reads as another host.
    if out.starts_with("//") {
        return None;
    }
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_home_or_goes_nowhere() {
        for ok in [
            "/",
            "/account",
            "/admin/accounts?q=an&two_factor=none",
            "/%2F%2Fevil.example",
        ] {
            assert_eq!(local_path(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "http:evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
            " //evil.example",
            "/\\/evil.example",
            "//xn--80ak6aa92e.com",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
        // Control characters are dropped or encoded, never passed on.
        assert_eq!(local_path("/a\nb").as_deref(), Some("/ab"));
        assert_eq!(local_path("/a\0b").as_deref(), Some("/a%00b"));
    }

    /// Found by fuzzing (fuzz target redirect_next): dot segments that leave a path
    /// starting with "//" sent the browser to another host.
    #[test]
    fn dot_segments_do_not_open_a_redirect() {
        for bad in [
            "/.//evil.example",
            "/./\\evil.example",
            "/x/..//evil.example",
            "/%2e//evil.example",
            "/.%2e//evil.example",
            "/%2E%2E//evil.example",
            "\n/.//evil.example",
            "/././/evil.example/path?q=1",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
        assert_eq!(local_path("/./account").as_deref(), Some("/account"));
        assert_eq!(local_path("/a/../b//c").as_deref(), Some("/b//c"));
    }
}
