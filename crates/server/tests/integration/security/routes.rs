//! Every route of the router, found rather than listed: the API's from its OpenAPI
//! document (served by the app), the others from the `.route(...)` calls in the web
//! crate's source. The source files are compiled in, and at test time the web
//! crate's folder is searched for `.route(` so that a new file of routes cannot be
//! missed; the API's routes are registered with their documentation, so the
//! document has them all.
//!
//! Also what the suite's tests share about routes: plausible values for their path
//! parameters, JSON bodies made from the document's schemas, and one request as it
//! stands (cookies given by hand, redirects not followed).

use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

/// The files of the web crate that call `.route(`, with their text. Routes of
/// `lib.rs`, `pages.rs` (with `pages/admin.rs` merged in), `oidc.rs` and
/// `oidc_flow.rs` are all at the root (only the API is nested, under `/api/v1`).
const SOURCES: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../../../../web/src/lib.rs")),
    ("pages.rs", include_str!("../../../../web/src/pages.rs")),
    (
        "pages/admin.rs",
        include_str!("../../../../web/src/pages/admin.rs"),
    ),
    ("oidc.rs", include_str!("../../../../web/src/oidc.rs")),
    (
        "oidc_flow.rs",
        include_str!("../../../../web/src/oidc_flow.rs"),
    ),
];

/// Where the OIDC paths (`discovery::TOKEN_PATH`, ...) are defined.
const DISCOVERY: &str = include_str!("../../../../domain/src/oidc/discovery.rs");

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// One route and method.
#[derive(Debug, Clone)]
pub struct Route {
    /// Upper case: `GET`, `POST`, ...
    pub method: String,
    /// The full path with its parameters as written (`/account/2fa/setup/{id}`).
    pub path: String,
    /// Under `/api/v1`, with its OpenAPI operation.
    pub operation: Option<Value>,
}

impl Route {
    pub fn is_api(&self) -> bool {
        self.operation.is_some()
    }

    /// POST, PUT, PATCH or DELETE.
    pub fn changes_state(&self) -> bool {
        self.method != "GET"
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The source text without its comment lines (a doc comment may mention `.route(`).
fn code_only(src: &str) -> String {
    src.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The index of the `)` closing a call whose arguments start `text`.
fn closing_paren(text: &str) -> usize {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        match (in_str, c) {
            (true, '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (true, '"') if !escaped => in_str = false,
            (false, '"') => in_str = true,
            (false, '(') => depth += 1,
            (false, ')') if depth == 0 => return i,
            (false, ')') => depth -= 1,
            _ => {}
        }
        escaped = false;
    }
    panic!("no closing parenthesis in {text:.80}")
}

/// Whether `text` calls `name(` (not as the end of a longer name).
fn calls(text: &str, name: &str) -> bool {
    let pat = format!("{name}(");
    text.match_indices(&pat).any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// `pub const NAME: &str = "value";` of the discovery module.
fn discovery_paths() -> HashMap<String, String> {
    DISCOVERY
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("pub const ")?;
            let (name, rest) = l.split_once(": &str = \"")?;
            Some((name.to_owned(), rest.split_once('"')?.0.to_owned()))
        })
        .collect()
}

/// Every `.route(path, handlers)` of one source file.
fn routes_in(file: &str, src: &str) -> Vec<Route> {
    let consts = discovery_paths();
    let code = code_only(src);
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(".route(") {
        let args = &rest[at + ".route(".len()..];
        let end = closing_paren(args);
        let inner = args[..end].trim_start();
        let (path, handlers) = if let Some(s) = inner.strip_prefix('"') {
            let (p, h) = s.split_once('"').expect("a closed string");
            (p.to_owned(), h)
        } else {
            let (name, h) = inner.split_once(',').expect("path, handlers");
            let short = name.trim().rsplit("::").next().unwrap_or_default();
            let p = consts
                .get(short)
                .unwrap_or_else(|| panic!("{file}: route path {name} is not a discovery path"));
            (p.clone(), h)
        };
        let methods: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| calls(handlers, m))
            .collect();
        assert!(!methods.is_empty(), "{file}: no method for {path}");
        for m in methods {
            out.push(Route {
                method: m.to_ascii_uppercase(),
                path: path.clone(),
                operation: None,
            });
        }
        rest = &args[end..];
    }
    out
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("the web crate's source") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The routes outside the API, from the router's source. Fails when a file of the
/// web crate calls `.route(` but is not read here, or nests a router anywhere but
/// the API's `/api/v1` (its paths would then not be at the root).
pub fn page_routes() -> Vec<Route> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src");
    let mut files = Vec::new();
    files_under(&src, &mut files);
    let mut with_routes = BTreeSet::new();
    let mut bare = BTreeSet::new();
    let mut nests = Vec::new();
    for f in &files {
        let text = code_only(&std::fs::read_to_string(f).expect("source"));
        let rel = f
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .into_owned();
        if text.contains(".route(") {
            with_routes.insert(rel.clone());
        }
        if text.contains("Router::route(") {
            bare.insert(rel.clone());
        }
        for (i, _) in text.match_indices(".nest(") {
            let args = &text[i + ".nest(".len()..];
            nests.push(format!("{rel}: .nest({})", &args[..closing_paren(args)]));
        }
    }
    let read: BTreeSet<String> = SOURCES.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(
        with_routes, read,
        "the files of crates/web/src that call .route( must all be read by the security suite (SOURCES in {})",
        file!()
    );
    // The API registers its routes in one place, from each handler's own
    // description (`api::routing`), and they are read from the document it serves
    // (`api_routes`); a route registered that way anywhere else would be missed here.
    assert_eq!(
        bare,
        BTreeSet::from(["api/routing.rs".to_owned()]),
        "only the API's routing registers routes with Router::route("
    );
    assert_eq!(
        nests,
        vec!["lib.rs: .nest(\"/api/v1\", api::routes())".to_owned()],
        "only the API is nested"
    );
    let mut routes = Vec::new();
    for (file, text) in SOURCES {
        routes.extend(routes_in(file, text));
    }
    let names: BTreeSet<String> = routes.iter().map(Route::name).collect();
    assert_eq!(names.len(), routes.len(), "a route is registered twice");
    routes
}

/// The API's routes, from the document the app serves.
pub async fn api_routes(base: &str) -> (Vec<Route>, Value) {
    let doc: Value = reqwest::get(format!("{base}/api/v1/openapi.json"))
        .await
        .expect("the document")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            routes.push(Route {
                method: method.to_ascii_uppercase(),
                path: format!("/api/v1{path}"),
                operation: Some(op.clone()),
            });
        }
    }
    assert!(routes.len() > 40, "{} API routes", routes.len());
    (routes, doc)
}

/// Every route: the pages' (and OIDC's, forward-auth's, ...) and the API's.
pub async fn all_routes(base: &str) -> (Vec<Route>, Value) {
    let mut routes = page_routes();
    assert!(routes.len() > 60, "{} page routes", routes.len());
    let (api, doc) = api_routes(base).await;
    routes.extend(api);
    (routes, doc)
}

/// Plausible values for path parameters and bodies, from the test's own data.
#[derive(Debug, Clone, Default)]
pub struct Fill {
    pub email: String,
    pub password: String,
    /// A current code of the account's app.
    pub code: String,
    /// A factor of the account.
    pub factor: String,
    /// A remembered device of the account.
    pub device: String,
    /// Another account (support and the console look at it).
    pub account: String,
    /// An OIDC client.
    pub client: String,
}

impl Fill {
    /// `template` with each `{param}` filled in; an unknown parameter fails the
    /// test, so a new one gets a plausible value here.
    pub fn path(&self, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("a closed parameter");
            let name = &rest[open + 1..close];
            out.push_str(&self.param(name, template));
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    fn param(&self, name: &str, template: &str) -> String {
        let or_random = |s: &str| {
            if s.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                s.to_owned()
            }
        };
        match name {
            "code" => "en".into(),
            // A link's token: well-formed, but none was handed out.
            "token" => "Zm9yZ2VkLWxpbmstdG9rZW4tdGhhdC1pcy1sb25nLWVub3VnaA".into(),
            "client" => self.client.clone(),
            "name" => "0001-password-reset.eml".into(),
            "id" if template.contains("/devices/") => or_random(&self.device),
            "id" if template.contains("/accounts/") => or_random(&self.account),
            "id" => or_random(&self.factor),
            other => panic!("no plausible value for {{{other}}} in {template}: add one"),
        }
    }

    /// The fields of any form: the CSRF token and what the forms ask for.
    pub fn form(&self, csrf: Option<&str>) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = [
            ("email", self.email.as_str()),
            ("password", self.password.as_str()),
            ("code", self.code.as_str()),
            ("name", "Iemand Anders"),
            ("reason", "gevraagd door de persoon zelf"),
            ("role", "admin"),
            ("phone", "+32470123456"),
            ("method", "app"),
            ("choice", "continue"),
            ("confirm", "1"),
            ("confirm_last", "1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        if let Some(t) = csrf {
            f.push(("csrf".into(), t.to_owned()));
        }
        f
    }

    /// A JSON body for an API operation, made from its schema: every required
    /// property (and the known optional ones) with a plausible value.
    pub fn json_body(&self, doc: &Value, op: &Value) -> Option<Value> {
        let content = op["requestBody"]["content"].as_object()?;
        let schema = &content.get("application/json")?["schema"];
        Some(self.value_of(doc, schema, ""))
    }

    fn value_of(&self, doc: &Value, schema: &Value, name: &str) -> Value {
        if let Some(r) = schema["$ref"].as_str() {
            let key = r.rsplit('/').next().unwrap_or_default();
            return self.value_of(doc, &doc["components"]["schemas"][key], name);
        }
        if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
            return first.clone();
        }
        for alt in ["oneOf", "anyOf"] {
            if let Some(first) = schema[alt].as_array().and_then(|a| a.first()) {
                return self.value_of(doc, first, name);
            }
        }
        let by_name = match name {
            "email" | "new_email" => Some(json!(self.email)),
            "password" | "new_password" => Some(json!(self.password)),
            "code" => Some(json!(self.code)),
            "method" => Some(json!("totp")),
            "role" => Some(json!("admin")),
            "reason" => Some(json!("gevraagd door de persoon zelf")),
            "phone" => Some(json!("+32470123456")),
            "name" => Some(json!("Iemand Anders")),
            _ => None,
        };
        if let Some(v) = by_name {
            return v;
        }
        let ty = match &schema["type"] {
            Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or("object"),
            Value::String(s) => s.as_str(),
            _ => "object",
        };
        match ty {
            "object" => {
                let mut m = Map::new();
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(props) = schema["properties"].as_object() {
                    for (k, s) in props {
                        if required.contains(&k.as_str()) || k == "password" {
                            m.insert(k.clone(), self.value_of(doc, s, k));
                        }
                    }
                }
                Value::Object(m)
            }
            "string" => schema["examples"]
                .get(0)
                .cloned()
                .unwrap_or_else(|| json!("x")),
            "boolean" => json!(false),
            "integer" | "number" => json!(1),
            "array" => json!([]),
            _ => Value::Null,
        }
    }
}

/// What a request to the app answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The API's error code (`unauthenticated`, ...), if the body is one.
    pub fn error(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body)
            .ok()?
            .get("error")?
            .as_str()
            .map(str::to_owned)
    }

    /// Every `Set-Cookie` of the answer.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The value this answer gives cookie `name` (`Some("")` when it clears it).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let (k, v) = c.split(';').next()?.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Raw(&'static str, Vec<u8>),
}

/// A client that keeps no cookies and follows no redirects: each request says
/// exactly which cookies it carries.
pub fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("tweestap-security-suite/1.0")
        .build()
        .expect("client")
}

/// One request: `cookies` is the `Cookie` header as it stands ("" for none).
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    cookies: &str,
    body: Body,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = http.request(method, format!("{base}{path}"));
    if !cookies.is_empty() {
        r = r.header("cookie", cookies);
    }
    r = match body {
        Body::None => r,
        Body::Json(v) => r.json(&v),
        Body::Form(f) => r.form(&f),
        Body::Raw(ct, bytes) => r.header("content-type", ct).body(bytes),
    };
    let resp = r.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

/// The session cookie's value in a `Set-Cookie`-carrying answer, as `name=value`.
pub fn session_cookie(a: &Answer) -> String {
    let v = a
        .cookie("tweestap_session")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no session cookie: {} {:?}", a.status, a.set_cookies()));
    format!("tweestap_session={v}")
}

/// The form token a browser carrying `cookies` (its CSRF cookie among them) gets
/// on any form: tokens are bound to the session cookie too, so a browser gets a new
/// one whenever its session changes.
pub async fn csrf_token_in(http: &reqwest::Client, base: &str, cookies: &str) -> String {
    let a = send(http, base, "GET", "/password/forgot", cookies, Body::None).await;
    assert_eq!(a.status, 200, "the form: {:.300}", a.body);
    assert!(
        !a.set_cookies().iter().any(|c| c.contains("tweestap_csrf")),
        "the CSRF cookie was kept: {cookies}"
    );
    crate::kit::csrf_of(&a.body)
}

/// A CSRF cookie (`name=value`, whatever its name's prefix) and its form token, as
/// a browser without a session gets them from any form.
pub async fn csrf_pair(http: &reqwest::Client, base: &str) -> (String, String) {
    let a = send(http, base, "GET", "/login", "", Body::None).await;
    let cookie = a
        .set_cookies()
        .iter()
        .filter_map(|c| c.split(';').next().map(str::to_owned))
        .find(|nv| {
            nv.split('=')
                .next()
                .is_some_and(|n| n.ends_with("tweestap_csrf"))
        })
        .expect("a CSRF cookie");
    (cookie, crate::kit::csrf_of(&a.body))
}
