//! The JSON API's request bodies and query strings, read as their handlers read
//! them.
//!
//! Properties: a body is either taken or refused with 400, 413 or 415 (never a
//! server error); a body is only ever taken with a JSON content type (`application/`
//! and `json`), and never with one a cross-site form or a simple cross-site request
//! can send (text/plain, the form encodings), which is what keeps CSRF out of the
//! API; a query string is taken or refused with 400.

#![no_main]

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use tweestap_web::fuzzing::{api_query, json_body, API_QUERIES, JSON_BODIES};

/// Input: a byte choosing the body (and query), then the Content-Type (none when
/// empty), the body and the query string, separated by 0x1f.
struct Input<'a> {
    which: u8,
    content_type: Option<&'a str>,
    body: &'a [u8],
    query: &'a str,
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
    let name = JSON_BODIES[usize::from(input.which) % JSON_BODIES.len()];
    let mut req = Request::builder().method(Method::POST).uri("/api/v1/x");
    let content_type = input
        .content_type
        .and_then(|ct| HeaderValue::from_str(ct).ok());
    if let Some(ct) = &content_type {
        req = req.header(header::CONTENT_TYPE, ct.clone());
    }
    let req = req
        .body(Body::from(input.body.to_vec()))
        .expect("a request");
    match json_body(name, req) {
        Ok(()) => {
            let ct = content_type
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{name}: taken without a content type"));
            assert!(
                !tweestap_fuzz::cross_site_content_type(ct),
                "{name}: taken as {ct:?}"
            );
            let essence = ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            assert!(
                essence.starts_with("application/") && essence.contains("json"),
                "{name}: taken as {ct:?}"
            );
        }
        Err(status) => assert!(
            matches!(
                status,
                StatusCode::BAD_REQUEST
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::UNSUPPORTED_MEDIA_TYPE
            ),
            "{name}: {status}"
        ),
    }

    let query = API_QUERIES[usize::from(input.which) % API_QUERIES.len()];
    if let Ok(uri) = format!("/api/v1/x?{}", input.query).parse::<Uri>() {
        if let Err(status) = api_query(query, &uri) {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        }
    }
});
