//! Loket, the example portal, against a real tweestap over plain HTTP (no Chromium
//! needed): step-up before changing the bank account (`max_age` and `acr_values`
//! sent, the password and the code asked again) and back-channel logout (signing
//! out in tweestap ends the Loket session of that browser, and only that one).

use crate::kit::{eventually, Backend, TestApp, PASSWORD};
use std::sync::Arc;
use tweestap_domain::clock::Clock;
use tweestap_domain::oidc::discovery::ACR_TWO_FACTOR;

crate::on_both_backends!(loket_steps_up_and_hears_of_the_sign_out);

const LOKET_SECRET: &str = "geheim-van-het-loket";
const EMAIL: &str = "an@example.be";

/// A browser: cookies for both hosts, redirects followed by hand.
struct Browser {
    http: reqwest::Client,
    /// Every URL visited.
    visited: Vec<String>,
}

/// Where a browser ended up.
struct Landing {
    url: String,
    status: u16,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            visited: Vec::new(),
        }
    }

    async fn open(&mut self, url: &str) -> Landing {
        let r = self.http.get(url).send().await.expect("get");
        self.follow(url, r).await
    }

    async fn follow(&mut self, url: &str, mut r: reqwest::Response) -> Landing {
        let mut url = url::Url::parse(url).expect("url");
        self.visited.push(url.to_string());
        for _ in 0..20 {
            let Some(to) = r.headers().get("location") else {
                break;
            };
            url = url.join(to.to_str().expect("location")).expect("url");
            self.visited.push(url.to_string());
            r = self.http.get(url.clone()).send().await.expect("get");
        }
        Landing {
            url: url.to_string(),
            status: r.status().as_u16(),
            body: r.text().await.expect("body"),
        }
    }

    /// Submits the form of `page` that has an input `field`, as it stands (hidden
    /// and filled-in inputs, ticked boxes) with `set` filled in.
    async fn submit(&mut self, page: &Landing, field: &str, set: &[(&str, &str)]) -> Landing {
        let has = format!("name=\"{field}\"");
        let (action, mut fields) = form(&page.body, |_, inner| inner.contains(&has))
            .unwrap_or_else(|| panic!("no form with {field} at {}:\n{}", page.url, page.body));
        fields.retain(|(n, _)| !set.iter().any(|(k, _)| k == n));
        fields.extend(set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let url = url::Url::parse(&page.url)
            .expect("url")
            .join(&action)
            .expect("action");
        let r = self
            .http
            .post(url.clone())
            .form(&fields)
            .send()
            .await
            .expect("post");
        self.follow(url.as_str(), r).await
    }

    /// The password, then the app's code (on the next 30-second step), ticking
    /// "remember this browser" when `remember`.
    async fn sign_in(
        &mut self,
        app: &TestApp,
        page: Landing,
        secret: &str,
        remember: bool,
    ) -> Landing {
        assert!(
            page.body.contains("name=\"password\""),
            "not the sign-in page: {} {}\n{}",
            page.status,
            page.url,
            page.body
        );
        let page = self
            .submit(
                &page,
                "password",
                &[("email", EMAIL), ("password", PASSWORD)],
            )
            .await;
        assert!(
            page.body.contains("name=\"code\""),
            "not the code page: {} {}\n{}",
            page.status,
            page.url,
            page.body
        );
        app.next_step();
        let code = app.code(secret);
        let mut set = vec![("code", code.as_str())];
        if remember {
            assert!(page.body.contains("name=\"remember\""), "{}", page.body);
            set.push(("remember", "1"));
        }
        self.submit(&page, "code", &set).await
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x2F;", "/")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    ['"', '\''].into_iter().find_map(|q| {
        let pat = format!(" {name}={q}");
        let rest = &tag[tag.find(&pat)? + pat.len()..];
        Some(unescape(&rest[..rest.find(q)?]))
    })
}

/// The action and the inputs a browser would send of the first form that `pick`
/// (given its tag and its inner HTML) chooses.
fn form(html: &str, pick: impl Fn(&str, &str) -> bool) -> Option<(String, Vec<(String, String)>)> {
    html.split("<form").skip(1).find_map(|part| {
        let (tag, rest) = part.split_once('>')?;
        let inner = rest.split("</form>").next().unwrap_or_default();
        if !pick(tag, inner) {
            return None;
        }
        let fields = inner
            .split("<input")
            .skip(1)
            .filter_map(|i| {
                let t = format!(" {}", i.split('>').next().unwrap_or_default());
                let kind = attr(&t, "type").unwrap_or_default().to_ascii_lowercase();
                let unticked = matches!(kind.as_str(), "checkbox" | "radio")
                    && !t.split_whitespace().any(|w| w.starts_with("checked"));
                (kind != "submit" && !unticked)
                    .then(|| Some((attr(&t, "name")?, attr(&t, "value").unwrap_or_default())))
                    .flatten()
            })
            .collect();
        Some((
            attr(&format!(" {tag}"), "action").unwrap_or_default(),
            fields,
        ))
    })
}

/// A query parameter of one of `urls`, the last that has it.
fn param_in(urls: &[String], name: &str) -> Option<String> {
    urls.iter().rev().find_map(|u| {
        url::Url::parse(u)
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// Whether `b` is signed in at Loket (its home page, not off to sign in).
async fn at_loket(b: &Browser, loket: &str) -> bool {
    let r = b.http.get(format!("{loket}/")).send().await.expect("get");
    r.status().as_u16() == 200
}

/// Loket signs An in (password and code, "remember this browser" ticked), steps up
/// before changing the bank account once the sign-in is over five minutes old
/// (password and code again), and hears of the sign-out in tweestap: that
/// browser's Loket session ends; another browser's stays.
async fn loket_steps_up_and_hears_of_the_sign_out(backend: Backend) {
    let loket_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let loket = format!("http://{loket_addr}");
    let (callback, logout_uri) = (
        format!("{loket}/callback"),
        format!("{loket}/backchannel-logout"),
    );
    let hash = tweestap_domain::oidc::client::secret_hash(LOKET_SECRET);
    let cb = callback.clone();
    let app = TestApp::start_configured(backend, move |c| {
        c.oidc.clients = vec![tweestap::config::oidc::ClientConfig {
            id: "loket".into(),
            name: "Loket".into(),
            redirect_uris: vec![cb.clone()],
            secret_hash: Some(hash.clone()),
            backchannel_logout_uri: Some(logout_uri.clone()),
            ..Default::default()
        }];
    })
    .await;
    app.add_user(EMAIL).await;
    let (_, secret) = app.client().enroll(&app, EMAIL).await;
    let clock = app.clock.clone();
    let (_, loket_task) = tweestap_example_portal::serve_with(
        tweestap_example_portal::Config {
            issuer: app.url.clone(),
            client_id: "loket".into(),
            client_secret: LOKET_SECRET.into(),
            listen: loket_addr,
            redirect_url: callback,
            require_mfa: true,
        },
        tweestap_example_portal::Options {
            step_up_max_age: std::time::Duration::from_secs(300),
            now: Arc::new(move || clock.now()),
        },
    )
    .await
    .expect("Loket starts");

    // Two browsers sign in at Loket: two tweestap sessions.
    let mut b = Browser::new();
    let page = b.open(&format!("{loket}/")).await;
    let home = b.sign_in(&app, page, &secret, true).await;
    assert_eq!(home.url, format!("{loket}/"), "{}", home.body);
    assert!(home.body.contains(ACR_TWO_FACTOR), "{}", home.body);
    let mut other = Browser::new();
    let page = other.open(&format!("{loket}/")).await;
    let home = other.sign_in(&app, page, &secret, false).await;
    assert_eq!(home.url, format!("{loket}/"), "{}", home.body);

    // Just signed in with the code: the sensitive page at once.
    let n = b.visited.len();
    let l = b.open(&format!("{loket}/gegevens-wijzigen")).await;
    assert!(l.body.contains("id=\"sensitive\""), "{}", l.body);
    assert_eq!(b.visited.len(), n + 1, "{:?}", &b.visited[n..]);

    // Five minutes later: off to tweestap with max_age and acr_values, which asks
    // the password and the code again (the remembered browser does not skip the
    // code then); then the page.
    app.clock.advance(chrono::Duration::seconds(301));
    let n = b.visited.len();
    let page = b.open(&format!("{loket}/gegevens-wijzigen")).await;
    assert_eq!(param_in(&b.visited[n..], "max_age").as_deref(), Some("300"));
    assert_eq!(
        param_in(&b.visited[n..], "acr_values").as_deref(),
        Some(ACR_TWO_FACTOR)
    );
    let l = b.sign_in(&app, page, &secret, false).await;
    assert_eq!(l.url, format!("{loket}/gegevens-wijzigen"), "{}", l.body);
    assert!(l.body.contains("id=\"sensitive\""), "{}", l.body);

    // Signing out in tweestap ends that browser's Loket session, not the other's.
    let account = b.open(&format!("{}/account", app.url)).await;
    assert_eq!(account.status, 200, "{}", account.url);
    let (action, fields) = form(&account.body, |tag, _| tag.contains("action=\"/logout\""))
        .expect("a sign-out form on /account");
    let r = b
        .http
        .post(format!("{}{action}", app.url))
        .form(&fields)
        .send()
        .await
        .expect("sign out");
    assert!(r.status().as_u16() < 400, "sign-out: {}", r.status());
    let bref = &b;
    let at = loket.as_str();
    eventually(15, "the back-channel logout at Loket", || async move {
        !at_loket(bref, at).await
    })
    .await;
    assert!(
        at_loket(&other, &loket).await,
        "the other browser's session"
    );

    loket_task.abort();
}
