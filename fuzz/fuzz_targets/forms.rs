//! The pages' forms and query strings, read as their handlers read them, and the
//! fields people type into them that are read further (address, recovery code,
//! password).
//!
//! Properties: a form or query is taken or refused with a 4xx (never a server
//! error); a form is only taken as `application/x-www-form-urlencoded`; an accepted
//! address is trimmed, lower-case, has one `@`, no space or control character, fits
//! the limits and reads the same again; a recovery code as typed becomes either the
//! `xxxxx-xxxxx` form codes are made in or its letters and digits, and again the
//! same; an accepted password has 8 to 256 characters and does not contain the
//! product's name.

#![no_main]

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use tweestap_domain::account::Email;
use tweestap_domain::password::PasswordRules;
use tweestap_domain::recovery::normalise_recovery_code;
use tweestap_web::fuzzing::{form, page_query, FORMS, PAGE_QUERIES};

/// Input: a byte choosing the body (and query), then the Content-Type (none when
/// empty), the body and the query string, separated by 0x1f.
struct Input<'a> {
    which: u8,
    content_type: Option<&'a str>,
    body: &'a [u8],
    query: &'a str,
}

fn check_email(typed: &str) {
    let Ok(e) = Email::parse(typed) else {
        return;
    };
    let s = e.as_str();
    assert_eq!(s, s.trim());
    assert_eq!(s, s.to_lowercase(), "{typed:?}");
    assert_eq!(s.matches('@').count(), 1, "{typed:?}");
    assert!(!tweestap_fuzz::has_control_or_space(s), "{typed:?}");
    assert!(s.len() <= 254 && e.local_part().len() <= 64 && !e.local_part().is_empty());
    assert_eq!(Email::parse(s).as_ref(), Ok(&e), "{typed:?} again");
}

fn check_recovery_code(typed: &str) {
    let code = normalise_recovery_code(typed);
    let letters = code.replace('-', "");
    assert!(letters
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if letters.len() == 10 {
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
    } else {
        assert_eq!(code, letters);
    }
    assert_eq!(normalise_recovery_code(&code), code, "{typed:?}");
}

fn check_password(typed: &str, email: &str) {
    if PasswordRules::default().check(typed, email).is_ok() {
        let n = typed.chars().count();
        assert!((8..=256).contains(&n));
        assert!(!typed.to_lowercase().contains("tweestap"), "{typed:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let [content_type, body, query] = tweestap_fuzz::fields(rest);
    let (Some(content_type), Some(query)) = (
        tweestap_fuzz::text(content_type),
        tweestap_fuzz::text(query),
    ) else {
        return;
    };
    let input = Input {
        which,
        content_type: (!content_type.is_empty()).then_some(content_type),
        body,
        query,
    };
    let name = FORMS[usize::from(input.which) % FORMS.len()];
    let mut req = Request::builder().method(Method::POST).uri("/x");
    let content_type = input
        .content_type
        .and_then(|ct| HeaderValue::from_str(ct).ok());
    if let Some(ct) = &content_type {
        req = req.header(header::CONTENT_TYPE, ct.clone());
    }
    let req = req
        .body(Body::from(input.body.to_vec()))
        .expect("a request");
    match form(name, req) {
        Ok(()) => {
            let ct = content_type
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(
                ct.starts_with("application/x-www-form-urlencoded"),
                "{name}: taken as {ct:?}"
            );
        }
        Err(status) => assert!(status.is_client_error(), "{name}: {status}"),
    }

    let query = PAGE_QUERIES[usize::from(input.which) % PAGE_QUERIES.len()];
    if let Ok(uri) = format!("/x?{}", input.query).parse::<Uri>() {
        if let Err(status) = page_query(query, &uri) {
            assert!(status.is_client_error(), "{query}: {status}");
        }
    }

    // The fields, as the form decoding gives them.
    let mut email = String::new();
    for (k, v) in url::form_urlencoded::parse(input.body) {
        check_email(&v);
        check_recovery_code(&v);
        if k == "email" {
            email = v.into_owned();
        } else {
            check_password(&v, &email);
        }
    }
});
