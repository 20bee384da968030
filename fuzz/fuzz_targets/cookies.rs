//! The `Cookie` header: the session, remembered-device, CSRF and language cookies
//! as the extractors read them, and `Accept-Language`.
//!
//! Properties: a session token taken from a cookie is one tweestap could have made
//! (43 base64url characters) and is the cookie's value; the device token is the
//! cookie's value; a language read from the cookie, kept again as the language
//! switch keeps it, reads back as itself; the CSRF token made for whatever cookie a
//! browser brings verifies, and nothing else does; cookies tweestap sets come back
//! from a browser as they were set.

#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tweestap_domain::secret_box::MasterKey;
use tweestap_domain::token::Token;
use tweestap_web::fuzzing::{
    device_token, session_token, set_device, set_session, CSRF_COOKIE, DEVICE_COOKIE,
    SESSION_COOKIE,
};
use tweestap_web::i18n::{Dutch, Lang, LANG_COOKIE};
use tweestap_web::Csrf;

/// Input: a byte of flags (bit 0: secure cookies; bit 1: plain `nl` is Flemish),
/// then the Cookie header, a submitted CSRF token and an Accept-Language header,
/// separated by 0x1f.
struct Input<'a> {
    cookie: &'a [u8],
    submitted: &'a str,
    accept_language: &'a str,
    secure: bool,
    flemish: bool,
}

static CSRF: LazyLock<Csrf> =
    LazyLock::new(|| Csrf::new(&MasterKey::from_bytes(&[7; 32]).expect("a 32-byte key")));

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let [cookie, submitted, accept_language] = tweestap_fuzz::fields(rest);
    let (Some(submitted), Some(accept_language)) = (
        tweestap_fuzz::text(submitted),
        tweestap_fuzz::text(accept_language),
    ) else {
        return;
    };
    let input = Input {
        cookie,
        submitted,
        accept_language,
        secure: flags & 1 != 0,
        flemish: flags & 2 != 0,
    };
    let Ok(value) = HeaderValue::from_bytes(input.cookie) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, value);
    let jar = CookieJar::from_headers(&headers);
    let dutch = if input.flemish { Dutch::Be } else { Dutch::Nl };

    if let Some(t) = session_token(&jar) {
        let s = t.as_str();
        assert!(
            s.len() == 43
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(jar.get(SESSION_COOKIE).map(|c| c.value()), Some(s));
    }
    if let Some(d) = device_token(&jar) {
        assert_eq!(jar.get(DEVICE_COOKIE).map(|c| c.value()), Some(d.as_str()));
    }
    if let Some(l) = jar
        .get(LANG_COOKIE)
        .and_then(|c| Lang::from_tag(c.value(), dutch))
    {
        // The language switch keeps the choice as `cookie_value`: it reads back.
        assert_eq!(
            Lang::from_tag(l.cookie_value(), dutch),
            Some(l),
            "{:?}",
            jar.get(LANG_COOKIE)
        );
    }
    let _ = Lang::negotiate_with(Some(input.accept_language), dutch);

    // CSRF: the token of this browser's cookie (or of a new one) verifies after the
    // round trip through the browser; what was submitted only when it is that token.
    let had_cookie = jar.get(CSRF_COOKIE).is_some();
    let (jar, token) = CSRF.token(jar, input.secure);
    let back = if had_cookie {
        jar.clone()
    } else {
        // The browser sends the new cookie along with the session cookie it had,
        // which the token is bound to.
        let back = tweestap_fuzz::round_trip(jar.clone());
        match jar.get(SESSION_COOKIE) {
            Some(s) => back.add(Cookie::new(SESSION_COOKIE, s.value().to_owned())),
            None => back,
        }
    };
    assert!(
        CSRF.verify(&back, &token),
        "the token of {:?}",
        back.get(CSRF_COOKIE)
    );
    assert_eq!(
        CSRF.verify(&back, input.submitted),
        input.submitted == token
    );

    // The session and device cookies as set come back as they were.
    let t = Token::generate();
    let back = tweestap_fuzz::round_trip(set_device(
        set_session(CookieJar::new(), &t, input.secure),
        &t,
        input.secure,
        7,
    ));
    assert_eq!(session_token(&back), Some(t.clone()));
    assert_eq!(device_token(&back).as_deref(), Some(t.as_str()));
});
