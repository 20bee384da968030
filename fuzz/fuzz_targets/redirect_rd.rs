//! `rd`, the URL a sign-in returns to (forward-auth and `/login?rd=`), and the cookie
//! that keeps it meanwhile.
//!
//! Properties: an accepted URL is http(s) without user name or password, on one of
//! the origins the configuration allows (scheme, host and port compared, as worked
//! out here by hand), with no control character or space; accepting it again gives
//! the same URL; the sign-in link forward-auth builds carries it intact; and the
//! return cookie brings back exactly that URL.

#![no_main]

use axum_extra::extract::cookie::CookieJar;
use libfuzzer_sys::fuzz_target;
use tweestap_web::fuzzing::{allowed_return_to, return_cookie, RETURN_COOKIE};

/// Input: a byte of flags (bit 0: tweestap runs on http; bit 1: secure cookies),
/// then the URL.
#[derive(Debug)]
struct Input {
    http_public: bool,
    secure: bool,
    url: String,
}

fn return_hosts() -> Vec<String> {
    [
        "app.example.org",
        "portal.example.org:8443",
        "http://legacy.example.org",
        "https://bücher.example",
        " spaced.example.org ",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The origins allowed, written out: (scheme, host, port).
fn allowed(http_public: bool) -> Vec<(&'static str, &'static str, u16)> {
    let mut o = vec![
        ("https", "app.example.org", 443),
        ("https", "portal.example.org", 8443),
        ("http", "legacy.example.org", 80),
        ("https", "xn--bcher-kva.example", 443),
        ("https", "spaced.example.org", 443),
    ];
    if http_public {
        o.extend([
            ("http", "127.0.0.1", 8080),
            ("http", "app.example.org", 80),
            ("http", "portal.example.org", 8443),
            ("http", "spaced.example.org", 80),
        ]);
    } else {
        o.push(("https", "login.example.org", 443));
    }
    o
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, url)) = data.split_first() else {
        return;
    };
    let Some(url) = tweestap_fuzz::text(url) else {
        return;
    };
    let input = Input {
        http_public: flags & 1 != 0,
        secure: flags & 2 != 0,
        url: url.to_owned(),
    };
    let public = if input.http_public {
        "http://127.0.0.1:8080"
    } else {
        "https://login.example.org/"
    };
    let hosts = return_hosts();
    let Some(back) = allowed_return_to(public, &hosts, &input.url) else {
        return;
    };
    let u = url::Url::parse(&back).unwrap_or_else(|e| panic!("{back:?}: {e}"));
    assert!(
        u.username().is_empty() && u.password().is_none(),
        "{:?} -> {back}",
        input.url
    );
    let origin = (
        u.scheme(),
        u.host_str().unwrap_or_default(),
        u.port_or_known_default().unwrap_or_default(),
    );
    assert!(
        allowed(input.http_public)
            .iter()
            .any(|&(s, h, p)| (s, h, p) == origin),
        "{:?} -> {back} is on {origin:?}",
        input.url
    );
    assert!(!tweestap_fuzz::has_control_or_space(&back), "{back:?}");
    assert_eq!(
        allowed_return_to(public, &hosts, &back).as_deref(),
        Some(back.as_str())
    );

    // forward-auth's sign-in link: `<public>/login?rd=<back>`.
    let rd: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    let login = url::Url::parse(&format!("{}/login?rd={rd}", public.trim_end_matches('/')))
        .expect("the sign-in link");
    let carried: Vec<String> = login
        .query_pairs()
        .filter(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(carried, vec![back.clone()]);

    // The return cookie, set and sent back by a browser.
    let jar =
        tweestap_fuzz::round_trip(CookieJar::new().add(return_cookie(back.clone(), input.secure)));
    let kept = jar.get(RETURN_COOKIE).map(|c| c.value().to_owned());
    assert_eq!(
        kept.as_deref(),
        Some(back.as_str()),
        "the return cookie of {back}"
    );
});
