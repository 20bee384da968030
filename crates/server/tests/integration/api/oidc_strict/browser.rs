//! A browser on the pages: it submits forms as they stand (every hidden field, the
//! checkboxes it ticks, the button it presses) and follows redirects until it
//! leaves the server or lands on a page — so the tests do not depend on how the
//! pages carry their state.

use super::{authorize, Rp, EMAIL};
use crate::kit::{Client, TestApp, PASSWORD};

/// A form on a page.
#[derive(Debug, Clone)]
pub struct HtmlForm {
    pub action: String,
    /// Inputs a browser sends as they stand: hidden, text, checked boxes.
    pub fields: Vec<(String, String)>,
    /// Every input's name (also unchecked boxes and empty ones).
    pub names: Vec<String>,
    /// Submit buttons: name, value, text.
    pub buttons: Vec<(String, String, String)>,
    /// The form's inner HTML.
    pub inner: String,
}

/// Where a browser ends up: a page of the server (status, body) or a URL outside it
/// (status 302, no body).
#[derive(Debug)]
pub struct Landing {
    pub url: String,
    pub status: u16,
    pub body: String,
}

impl Landing {
    pub fn left(&self, base: &str) -> bool {
        !self.url.starts_with(base)
    }
    pub fn is_code_page(&self) -> bool {
        self.status == 200 && self.body.contains("name=\"code\"")
    }
    pub fn is_password_page(&self) -> bool {
        self.status == 200 && self.body.contains("name=\"password\"")
    }
}

pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// An attribute of a tag (`<input ...>`), unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let pat = format!(" {name}={quote}");
        if let Some(at) = tag.find(&pat) {
            let rest = &tag[at + pat.len()..];
            let end = rest.find(quote)?;
            return Some(unescape(&rest[..end]));
        }
    }
    None
}

fn has_flag(tag: &str, flag: &str) -> bool {
    tag.split(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .any(|w| w == flag)
}

/// Every form of a page.
pub fn forms(html: &str) -> Vec<HtmlForm> {
    let mut out = Vec::new();
    for part in html.split("<form").skip(1) {
        let Some(tag_end) = part.find('>') else {
            continue;
        };
        let tag = format!(" {}", &part[..tag_end]);
        let inner = part[tag_end + 1..]
            .split("</form>")
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut f = HtmlForm {
            action: attr(&tag, "action").unwrap_or_default(),
            fields: Vec::new(),
            names: Vec::new(),
            buttons: Vec::new(),
            inner: inner.clone(),
        };
        for input in inner.split("<input").skip(1) {
            let t = format!(" {}", input.split('>').next().unwrap_or_default());
            let Some(name) = attr(&t, "name") else {
                continue;
            };
            let value = attr(&t, "value").unwrap_or_default();
            let kind = attr(&t, "type")
                .unwrap_or_else(|| "text".into())
                .to_ascii_lowercase();
            f.names.push(name.clone());
            match kind.as_str() {
                "checkbox" | "radio" if !has_flag(&t, "checked") => {}
                "submit" => f.buttons.push((name, value.clone(), value)),
                _ => f.fields.push((name, value)),
            }
        }
        for button in inner.split("<button").skip(1) {
            let (t, rest) = button.split_once('>').unwrap_or((button, ""));
            let t = format!(" {t}");
            let text = rest
                .split("</button>")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            f.buttons.push((
                attr(&t, "name").unwrap_or_default(),
                attr(&t, "value").unwrap_or_default(),
                unescape(&text),
            ));
        }
        out.push(f);
    }
    out
}

/// The form with an input named `field`.
pub fn form_with(html: &str, field: &str) -> HtmlForm {
    forms(html)
        .into_iter()
        .find(|f| f.names.iter().any(|n| n == field))
        .unwrap_or_else(|| panic!("no form with {field} on the page:\n{html}"))
}

fn absolute(c: &Client, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else if url.starts_with('/') {
        format!("{}{url}", c.base)
    } else {
        format!("{}/{url}", c.base)
    }
}

/// Follows redirects from the answer `r` (to a request for `url`).
async fn follow_from(c: &Client, mut url: String, mut r: reqwest::Response) -> Landing {
    for _ in 0..20 {
        let status = r.status().as_u16();
        if !(300..400).contains(&status) {
            let body = r.text().await.expect("body");
            return Landing { url, status, body };
        }
        let to = crate::kit::location(&r);
        assert!(!to.is_empty(), "{status} without a Location from {url}");
        url = absolute(c, &to);
        if !url.starts_with(&c.base) {
            return Landing {
                url,
                status,
                body: String::new(),
            };
        }
        r = c.http.get(&url).send().await.expect("get");
    }
    panic!("more than 20 redirects, last {url}");
}

/// GETs `url` (a path or an absolute URL) and follows the redirects.
pub async fn visit(c: &Client, url: &str) -> Landing {
    let url = absolute(c, url);
    let r = c.http.get(&url).send().await.expect("get");
    follow_from(c, url, r).await
}

/// Submits `form` with `set` filled in (replacing what stands), pressing `button`
/// (an index into its buttons), and follows the redirects.
pub async fn send(
    c: &Client,
    form: &HtmlForm,
    set: &[(&str, &str)],
    button: Option<usize>,
) -> Landing {
    let mut fields: Vec<(String, String)> = form
        .fields
        .iter()
        .filter(|(n, _)| !set.iter().any(|(k, _)| k == n))
        .cloned()
        .collect();
    fields.extend(set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    if let Some((name, value, _)) = button.map(|i| &form.buttons[i]) {
        if !name.is_empty() {
            fields.push((name.clone(), value.clone()));
        }
    }
    let url = absolute(c, &form.action);
    let r = c.http.post(&url).form(&fields).send().await.expect("post");
    follow_from(c, url, r).await
}

/// Posts the password on the sign-in page `page` (as it came).
pub async fn password(c: &Client, page: &Landing, email: &str, pw: &str) -> Landing {
    assert!(
        page.is_password_page(),
        "not the sign-in page: {} {}\n{}",
        page.status,
        page.url,
        page.body
    );
    let f = form_with(&page.body, "password");
    send(c, &f, &[("email", email), ("password", pw)], None).await
}

/// Enters the app's code (on the next 30-second step) on the code page `page`,
/// ticking "remember this device" when asked.
pub async fn code(
    c: &Client,
    app: &TestApp,
    page: &Landing,
    secret: &str,
    remember: bool,
) -> Landing {
    assert!(
        page.is_code_page(),
        "not the code page: {} {}\n{}",
        page.status,
        page.url,
        page.body
    );
    app.next_step();
    let f = form_with(&page.body, "code");
    let code = app.code(secret);
    let mut set = vec![("code", code.as_str())];
    if remember {
        assert!(f.names.iter().any(|n| n == "remember"), "no remember box");
        set.push(("remember", "1"));
    }
    send(c, &f, &set, None).await
}

/// A full sign-in for `rp`'s request `url` in browser `c`: the sign-in page, the
/// password, the code; the authorization response's URL.
pub async fn sign_in_for(
    c: &Client,
    app: &TestApp,
    url: &str,
    secret: &str,
    remember: bool,
) -> String {
    let page = visit(c, url).await;
    let after = password(c, &page, EMAIL, PASSWORD).await;
    let back = code(c, app, &after, secret, remember).await;
    assert!(
        back.left(&app.url),
        "still on the pages: {} {}\n{}",
        back.status,
        back.url,
        back.body
    );
    back.url
}

/// Signs in for `rp` (scope openid email) from a fresh browser; the browser and
/// the authorization response.
pub async fn signed_in(app: &TestApp, rp: Rp, scope: &str, secret: &str) -> (Client, String) {
    let c = app.client();
    let back = sign_in_for(&c, app, &authorize(rp, scope, ""), secret, false).await;
    (c, back)
}

/// The sign-out form of a page of a signed-in browser (the header's), pressed.
pub async fn sign_out_by_page(c: &Client) {
    let page = visit(c, "/account").await;
    assert_eq!(page.status, 200, "{}", page.url);
    let f = forms(&page.body)
        .into_iter()
        .find(|f| f.action == "/logout")
        .unwrap_or_else(|| panic!("no sign-out form on /account:\n{}", page.body));
    let after = send(c, &f, &[], None).await;
    assert!(
        after.status < 400,
        "sign-out: {} {}",
        after.status,
        after.url
    );
    assert_eq!(c.get("/api/v1/me").await.status, 401, "still signed in");
}
