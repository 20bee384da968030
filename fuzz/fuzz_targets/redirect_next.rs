//! `next`, where the language switch and the console's step-up send the browser
//! back to (`local_return::local_path`), as it arrives in the query string.
//!
//! Properties: an accepted target is a path on this origin: it starts with one `/`
//! (never `//` or `/\`, which browsers read as another host), has no control
//! character, space or backslash in its path, makes a valid `Location` header (a
//! 303, never a 500), and a browser resolving it against any page of this origin
//! stays on the origin and reaches exactly that path and query. Accepting it again
//! gives the same target.

#![no_main]

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect};
use libfuzzer_sys::fuzz_target;
use tweestap_web::local_return::local_path;
use url::Url;

const PAGES: [&str; 3] = [
    "https://login.example.org/lang/en",
    "http://127.0.0.1:8080/admin/step-up?next=%2Fadmin",
    "https://login.example.org:8443/a/b/c/",
];

fuzz_target!(|data: &[u8]| {
    // As the query string `?next=...` brings it (percent-decoded), and as is.
    let query = format!("/lang/en?{}", String::from_utf8_lossy(data));
    let from_query = url::form_urlencoded::parse(
        query
            .split_once('?')
            .map_or(b"" as &[u8], |q| q.1.as_bytes()),
    )
    .find(|(k, _)| k == "next")
    .map(|(_, v)| v.into_owned());
    let raw = std::str::from_utf8(data).ok().map(str::to_owned);
    for next in [from_query, raw].into_iter().flatten() {
        let Some(target) = local_path(&next) else {
            continue;
        };
        assert!(target.starts_with('/'), "{next:?} -> {target:?}");
        assert!(
            !target.starts_with("//") && !target.starts_with("/\\"),
            "{next:?} -> {target:?}"
        );
        let path = target.split('?').next().unwrap_or_default();
        assert!(!path.contains('\\'), "{next:?} -> {target:?}");
        assert!(
            !tweestap_fuzz::has_control_or_space(&target),
            "{next:?} -> {target:?}"
        );

        let response = Redirect::to(&target).into_response();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{next:?} -> {target:?}"
        );
        assert_eq!(
            response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some(target.as_str())
        );

        for page in PAGES {
            let base = Url::parse(page).expect("page");
            let reached = base
                .join(&target)
                .unwrap_or_else(|e| panic!("{target:?}: {e}"));
            assert_eq!(
                reached.origin(),
                base.origin(),
                "{next:?} -> {target:?} from {page}"
            );
            let mut path_and_query = reached.path().to_owned();
            if let Some(q) = reached.query() {
                path_and_query.push('?');
                path_and_query.push_str(q);
            }
            assert_eq!(path_and_query, target, "{next:?} from {page}");
        }
        assert_eq!(
            local_path(&target).as_deref(),
            Some(target.as_str()),
            "{next:?}"
        );
    }
});
