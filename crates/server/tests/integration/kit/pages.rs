//! The pages over plain HTTP: forms with their CSRF token, redirects, signing in as
//! a person would.

use super::app::TestApp;
use super::client::Client;

/// The CSRF token in a page's form.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..at + 64].to_owned()
}

/// The `Location` of an answer ("" without one).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// One query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// GET an absolute URL or a path of the server.
pub async fn get(c: &Client, url: &str) -> reqwest::Response {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}{url}", c.base)
    };
    c.http.get(url).send().await.expect("get")
}

/// POST a form as it stands.
pub async fn post_form(c: &Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    c.http
        .post(format!("{}{path}", c.base))
        .form(form)
        .send()
        .await
        .expect("post")
}

/// Signs in through the pages as a person would: the password form of the page at
/// `login` (which may carry a return address), then the app's code; the browser
/// ends signed in, sent to `/`.
pub async fn sign_in_through_pages(
    c: &Client,
    app: &TestApp,
    login: &str,
    (email, password): (&str, &str),
    totp_secret: &str,
) {
    let page = get(c, login).await.text().await.expect("the sign-in page");
    let r = post_form(
        c,
        "/login",
        &[
            ("csrf", &csrf_of(&page)),
            ("email", email),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(location(&r), "/login/code");
    let page = get(c, "/login/code")
        .await
        .text()
        .await
        .expect("the code page");
    let r = post_form(
        c,
        "/login/code",
        &[("csrf", &csrf_of(&page)), ("code", &app.code(totp_secret))],
    )
    .await;
    assert_eq!(location(&r), "/");
}

/// GET a page: status and body.
pub async fn page(c: &Client, path: &str) -> (u16, String) {
    let r = get(c, path).await;
    (r.status().as_u16(), r.text().await.expect("text"))
}

/// Posts a form with the CSRF token of `from` (a page's HTML): status, body, location.
pub async fn submit(
    c: &Client,
    from: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let csrf = csrf_of(from);
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &csrf));
    let r = post_form(c, action, &form).await;
    let location = Some(location(&r)).filter(|l| !l.is_empty());
    (r.status().as_u16(), r.text().await.expect("text"), location)
}
