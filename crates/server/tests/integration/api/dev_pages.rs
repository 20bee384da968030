//! The developer pages `/dev/outbox` and `/dev/sms-outbox` show reset links and
//! codes (issue 18, finding 9): served only while tweestap runs as on its embedded
//! defaults, and then only to a browser on this machine talking to it directly.

use crate::kit::{Backend, TestApp};

crate::on_both_backends!(
    reading_the_outbox_through_a_proxy_or_a_rebound_host_name,
    reading_the_outbox_of_a_server_with_a_public_address,
);

const PAGES: [&str; 2] = ["/dev/outbox", "/dev/sms-outbox"];

async fn status(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut r = reqwest::Client::new().get(format!("{}{path}", app.url));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.expect("get").status().as_u16()
}

/// On the embedded defaults the pages answer a direct local request, and 404 to
/// one carrying any proxy header, or a `Host` that is not this machine's (a page
/// on another site whose name was rebound to 127.0.0.1, read by the developer's
/// browser).
async fn reading_the_outbox_through_a_proxy_or_a_rebound_host_name(backend: Backend) {
    let app = TestApp::start(backend).await;
    let port = app.url.rsplit(':').next().expect("port").to_owned();
    for path in PAGES {
        assert_eq!(status(&app, path, &[]).await, 200, "{path}");
        for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
            assert_eq!(
                status(&app, path, &[("host", &host)]).await,
                200,
                "{path} {host}"
            );
        }
        for (name, value) in [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-host", "login.example.org"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("via", "1.1 proxy"),
            ("true-client-ip", "203.0.113.9"),
            ("cf-connecting-ip", "203.0.113.9"),
        ] {
            assert_eq!(
                status(&app, path, &[(name, value)]).await,
                404,
                "{path} with {name}"
            );
        }
        for host in [
            format!("evil.example:{port}"),
            format!("127.0.0.1.nip.example:{port}"),
            format!("localhost.evil.example:{port}"),
        ] {
            assert_eq!(
                status(&app, path, &[("host", &host)]).await,
                404,
                "{path} for Host {host}"
            );
        }
    }
}

/// A `public_url` that is not plain http to this machine turns the pages off, as
/// does `[dev] outbox_page = false`; `true` with such an address stops the start.
async fn reading_the_outbox_of_a_server_with_a_public_address(backend: Backend) {
    let public = TestApp::start_configured(backend.clone(), |c| {
        c.public_url = "https://login.example.org".into();
    })
    .await;
    let plain_http = TestApp::start_configured(backend.clone(), |c| {
        c.public_url = "http://login.example.org".into();
    })
    .await;
    let off = TestApp::start_configured(backend.clone(), |c| {
        c.dev.outbox_page = Some(false);
    })
    .await;
    for app in [&public, &plain_http, &off] {
        for path in PAGES {
            assert_eq!(status(app, path, &[]).await, 404, "{path}");
        }
    }
    let mut refused = public.config();
    refused.dev.outbox_page = Some(true);
    let err = match tweestap::spawn(&refused, std::sync::Arc::new(public.clock.clone())).await {
        Ok(_) => panic!("started with outbox_page = true and a public address"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("[dev] outbox_page"), "{err}");
}
