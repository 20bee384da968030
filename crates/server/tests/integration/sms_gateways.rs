//! The SMS gateways against real HTTP stubs on loopback (wiremock): what the
//! provider receives, which answers are retried and which are not, and that the
//! text (it holds the code) never reaches the log.

use base64::Engine as _;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tweestap::adapters::sms::SmsGateway;
use tweestap::config::sms::SmsConfig;
use tweestap_domain::sms::{PhoneNumber, SmsMessage, SmsOutcome};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TEXT: &str = "Je tweestap-code is 481 516. \"Deel hem niet\" & niet doorsturen.\nÇa va €";

fn message() -> SmsMessage {
    SmsMessage::new(PhoneNumber::parse("0470 12 34 56", "BE").unwrap(), TEXT)
}

/// Everything logged while the guard lives (this thread: `#[tokio::test]` runs on one).
struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        Self {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// The masked number and the id are there; the text, the code and the whole
    /// number are not.
    fn assert_clean(&self, msg: &SmsMessage) -> String {
        let logs = self.text();
        assert!(logs.contains("+32 4•• •• •• 56"), "{logs}");
        assert!(logs.contains(&msg.id.to_string()), "{logs}");
        for secret in ["481 516", "Deel hem niet", "doorsturen", "470123456"] {
            assert!(!logs.contains(secret), "{secret:?} logged:\n{logs}");
        }
        logs
    }
}

fn config(toml_text: &str) -> SmsConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn gateway(toml_text: &str) -> SmsGateway {
    SmsGateway::from_config(&config(toml_text), Path::new("/nonexistent"))
        .unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

/// A generic JSON gateway at `server`, short timeout and back-off.
fn generic(server: &MockServer, retries: u32) -> SmsGateway {
    gateway(&format!(
        "gateway = \"http\"\ntimeout_seconds = 0.5\nretries = {retries}\nretry_backoff_ms = 10\n\
         [http]\nurl = \"{}/send\"\n",
        server.uri()
    ))
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

fn header(r: &Request, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn form(r: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

/// A stub provider on loopback, answering as `mocks` say (the first that matches).
async fn provider(mocks: impl IntoIterator<Item = Mock>) -> MockServer {
    let server = MockServer::start().await;
    for m in mocks {
        m.mount(&server).await;
    }
    server
}

/// The one request behind an SMS the provider took, under `provider_id`.
async fn taken_once(server: &MockServer, outcome: &SmsOutcome, provider_id: &str) -> Request {
    let provider_id = Some(provider_id.to_owned());
    assert_eq!(outcome, &SmsOutcome::Sent { provider_id });
    let mut received = requests(server).await;
    assert_eq!(received.len(), 1);
    received.remove(0)
}

/// A form body, with its content type.
fn assert_form(r: &Request, pairs: &[(&str, &str)]) {
    assert_eq!(
        header(r, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(form(r), pairs);
}

fn failed(outcome: &SmsOutcome) -> (bool, bool, &str) {
    match outcome {
        SmsOutcome::Failed {
            retryable,
            ambiguous,
            error,
        } => (*retryable, *ambiguous, error),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn generic_json_body_and_bearer_header_are_what_the_provider_receives() {
    let logs = Logs::capture();
    let server = provider([Mock::given(method("POST"))
        .and(path("/v1/sms"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"id":"prov-77"}"#))])
    .await;
    let g = gateway(&format!(
        r#"
        gateway = "http"
        [http]
        url = "{}/v1/sms"
        header_name = "Authorization"
        header_value = "Bearer key-123"
        body_format = "json"
        body_template = '{{"recipients": ["{{to}}"], "body": "{{text}}", "ref": "sms-{{id}}", "sender": "Tweestap", "n": 1}}'
        "#,
        server.uri()
    ));
    let msg = message();
    let r = &taken_once(&server, &g.send(&msg).await, "prov-77").await;
    assert_eq!(header(r, "authorization"), "Bearer key-123");
    assert_eq!(header(r, "content-type"), "application/json");
    assert!(header(r, "user-agent").starts_with("tweestap/"));
    let body: serde_json::Value = r.body_json().unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "recipients": ["+32470123456"],
            "body": TEXT,
            "ref": format!("sms-{}", msg.id),
            "sender": "Tweestap",
            "n": 1
        })
    );
    logs.assert_clean(&msg);
}

#[tokio::test]
async fn generic_default_json_template_carries_to_text_and_reference() {
    let server = provider([Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_string("queued"))])
    .await;
    let msg = message();
    let outcome = generic(&server, 0).send(&msg).await;
    assert_eq!(outcome, SmsOutcome::Sent { provider_id: None });
    let r = &requests(&server).await[0];
    assert_eq!(r.url.path(), "/send");
    assert!(header(r, "authorization").is_empty());
    let body: serde_json::Value = r.body_json().unwrap();
    assert_eq!(
        body,
        serde_json::json!({"to": "+32470123456", "text": TEXT, "reference": msg.id.to_string()})
    );
}

#[tokio::test]
async fn generic_form_body_and_api_key_header_are_what_the_provider_receives() {
    let logs = Logs::capture();
    let server = provider([Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"messages":[{"message-id":"0A00000123ABCDEF"}]}"#),
        )])
    .await;
    let g = gateway(&format!(
        "gateway = \"http\"\n[http]\nurl = \"{}/api/send\"\nheader_name = \"X-API-Key\"\n\
         header_value = \"k-456\"\nbody_format = \"form\"\n\
         body_template = \"\"\"\nto={{to}}\nmessage={{text}}\nsender=Tweestap\nclient_ref={{id}}\n\"\"\"\n",
        server.uri()
    ));
    let msg = message();
    let r = &taken_once(&server, &g.send(&msg).await, "0A00000123ABCDEF").await;
    assert_eq!(header(r, "x-api-key"), "k-456");
    let id = msg.id.to_string();
    assert_form(
        r,
        &[
            ("to", "+32470123456"),
            ("message", TEXT),
            ("sender", "Tweestap"),
            ("client_ref", &id),
        ],
    );
    logs.assert_clean(&msg);
}

#[tokio::test]
async fn generic_get_puts_the_pairs_in_the_query_string() {
    let server = provider([Mock::given(method("GET"))
        .and(path("/sendsms"))
        .respond_with(ResponseTemplate::new(200).set_body_string("OK"))])
    .await;
    let g = gateway(&format!(
        "gateway = \"http\"\n[http]\nurl = \"{}/sendsms?user=tweestap\"\nmethod = \"GET\"\n\
         body_format = \"form\"\nbody_template = \"to={{to}}&text={{text}}\"\n",
        server.uri()
    ));
    let msg = message();
    assert!(g.send(&msg).await.is_sent());
    let r = &requests(&server).await[0];
    assert!(r.body.is_empty());
    let query: Vec<(String, String)> = r.url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("user".to_owned(), "tweestap".to_owned()),
            ("to".to_owned(), "+32470123456".to_owned()),
            ("text".to_owned(), TEXT.to_owned()),
        ]
    );
}

fn twilio(server: &MockServer, sender: &str) -> SmsGateway {
    gateway(&format!(
        "gateway = \"twilio\"\ntimeout_seconds = 0.5\nretry_backoff_ms = 10\n\
         [twilio]\nbase_url = \"{}/\"\naccount_sid = \"AC0123abc\"\nauth_token = \"tok-789\"\n{sender}\n",
        server.uri()
    ))
}

#[tokio::test]
async fn twilio_gets_path_basic_auth_and_form_and_its_sid_is_the_provider_id() {
    let logs = Logs::capture();
    let server = provider([Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC0123abc/Messages.json"))
        .respond_with(ResponseTemplate::new(201).set_body_string(
            r#"{"sid":"SM0123456789abcdef","status":"queued","to":"+32470123456"}"#,
        ))])
    .await;
    let msg = message();
    let outcome = twilio(&server, "from = \"Tweestap\"").send(&msg).await;
    let r = &taken_once(&server, &outcome, "SM0123456789abcdef").await;
    let basic = base64::engine::general_purpose::STANDARD.encode("AC0123abc:tok-789");
    assert_eq!(header(r, "authorization"), format!("Basic {basic}"));
    assert_form(
        r,
        &[("To", "+32470123456"), ("From", "Tweestap"), ("Body", TEXT)],
    );
    logs.assert_clean(&msg);
}

#[tokio::test]
async fn twilio_messaging_service_sid_stands_in_for_from() {
    let server = provider([Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM1"}"#))])
    .await;
    let outcome = twilio(&server, "messaging_service_sid = \"MG42\"")
        .send(&message())
        .await;
    assert!(outcome.is_sent());
    let f = form(&requests(&server).await[0]);
    assert!(f.contains(&("MessagingServiceSid".to_owned(), "MG42".to_owned())));
    assert!(!f.iter().any(|(k, _)| k == "From"));
}

#[tokio::test]
async fn twilio_errors_keep_twilios_code_and_are_not_retried() {
    let server = provider([Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"code":21211,"message":"The 'To' number +32470123456 is not a valid phone number.","status":400}"#,
        ))])
    .await;
    let outcome = twilio(&server, "from = \"Tweestap\"")
        .send(&message())
        .await;
    let (retryable, ambiguous, error) = failed(&outcome);
    assert!(!retryable && !ambiguous);
    assert!(error.contains("400") && error.contains("21211"), "{error}");
    assert!(!error.contains("470123456"), "{error}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_500_then_a_200_is_sent_after_exactly_one_retry() {
    let logs = Logs::capture();
    let server = provider([
        Mock::given(any())
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1),
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"id":"second"}"#)),
    ])
    .await;
    let msg = message();
    let outcome = generic(&server, 2).send(&msg).await;
    assert_eq!(
        outcome,
        SmsOutcome::Sent {
            provider_id: Some("second".into())
        }
    );
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].body, received[1].body,
        "the same SMS both times"
    );
    let logs = logs.assert_clean(&msg);
    assert!(logs.contains("busy or failing"), "{logs}");
}

#[tokio::test]
async fn a_429_then_a_200_is_retried_too() {
    let server = provider([
        Mock::given(any())
            .respond_with(ResponseTemplate::new(429))
            .up_to_n_times(1),
        Mock::given(any()).respond_with(ResponseTemplate::new(200)),
    ])
    .await;
    assert!(generic(&server, 2).send(&message()).await.is_sent());
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_500_every_time_fails_retryable_after_all_attempts() {
    let logs = Logs::capture();
    let server =
        provider([Mock::given(any())
            .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))])
        .await;
    let msg = message();
    let started = Instant::now();
    let outcome = generic(&server, 3).send(&msg).await;
    let (retryable, ambiguous, error) = failed(&outcome);
    assert!(retryable && !ambiguous);
    assert!(
        error.contains("503") && error.contains("after 4 attempts"),
        "{error}"
    );
    assert_eq!(requests(&server).await.len(), 4);
    // Back-off 10 + 20 + 40 ms between the four attempts.
    assert!(started.elapsed() >= Duration::from_millis(70));
    let logs = logs.assert_clean(&msg);
    assert!(logs.contains("giving up"), "{logs}");
}

#[tokio::test]
async fn a_400_is_not_retried_and_its_answer_is_scrubbed() {
    let server =
        provider([
            Mock::given(any()).respond_with(ResponseTemplate::new(400).set_body_string(format!(
                "{{\"error\":\"invalid sender\",\"echo\":{}}}",
                serde_json::Value::String(TEXT.into())
            ))),
        ])
        .await;
    let outcome = generic(&server, 2).send(&message()).await;
    let (retryable, ambiguous, error) = failed(&outcome);
    assert!(!retryable && !ambiguous);
    assert!(error.starts_with("HTTP 400"), "{error}");
    assert!(error.contains("invalid sender"), "{error}");
    assert!(!error.contains("481"), "{error}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = provider([Mock::given(any()).respond_with(
        ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:1/"),
    )])
    .await;
    let outcome = generic(&server, 2).send(&message()).await;
    let (retryable, ambiguous, error) = failed(&outcome);
    assert!(!retryable && !ambiguous && error.contains("302"), "{error}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_slow_gateway_is_ambiguous_after_exactly_one_request() {
    let logs = Logs::capture();
    let server = provider([Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))])
    .await;
    let g = gateway(&format!(
        "gateway = \"http\"\ntimeout_seconds = 0.3\nretries = 3\nretry_backoff_ms = 10\n\
         [http]\nurl = \"{}/send\"\n",
        server.uri()
    ));
    let msg = message();
    let started = Instant::now();
    let outcome = g.send(&msg).await;
    let elapsed = started.elapsed();
    let (retryable, ambiguous, error) = failed(&outcome);
    assert!(ambiguous && !retryable, "{outcome:?}");
    assert!(error.contains("may or may not have been sent"), "{error}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(requests(&server).await.len(), 1);
    let logs = logs.assert_clean(&msg);
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("may or may not have been sent"), "{logs}");
}

#[tokio::test]
async fn a_slow_twilio_is_ambiguous_too() {
    let server = provider([Mock::given(any())
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(3)))])
    .await;
    let outcome = twilio(&server, "from = \"Tweestap\"")
        .send(&message())
        .await;
    let (retryable, ambiguous, _) = failed(&outcome);
    assert!(ambiguous && !retryable);
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_closed_port_is_retried_then_fails_retryable() {
    let logs = Logs::capture();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let g = gateway(&format!(
        "gateway = \"http\"\ntimeout_seconds = 0.5\nretries = 2\nretry_backoff_ms = 25\n\
         [http]\nurl = \"http://127.0.0.1:{port}/send?to={{to}}&text={{text}}\"\n"
    ));
    let msg = message();
    let started = Instant::now();
    let outcome = g.send(&msg).await;
    let (retryable, ambiguous, error) = failed(&outcome);
    assert!(retryable && !ambiguous, "{outcome:?}");
    assert!(
        error.contains("cannot connect") && error.contains("after 3 attempts"),
        "{error}"
    );
    // Neither the URL (it holds the text here) nor the code is in the error.
    assert!(
        !error.contains("481") && !error.contains("send?"),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(75));
    let logs = logs.assert_clean(&msg);
    assert_eq!(logs.matches("SMS gateway unreachable").count(), 3, "{logs}");
}

#[tokio::test]
async fn the_outbox_writes_one_file_per_sms() {
    let logs = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let g = SmsGateway::from_config(&SmsConfig::default(), dir.path()).unwrap();
    assert_eq!(g.outbox(), Some(dir.path().join("sms-outbox").as_path()));
    let first = message();
    let second = message();
    assert_eq!(g.send(&first).await, SmsOutcome::Sent { provider_id: None });
    assert!(g.send(&second).await.is_sent());
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("sms-outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].ends_with(&format!("-{}.txt", first.id)),
        "{names:?}"
    );
    assert!(
        names[1].ends_with(&format!("-{}.txt", second.id)),
        "{names:?}"
    );
    let text = std::fs::read_to_string(dir.path().join("sms-outbox").join(&names[0])).unwrap();
    assert!(text.starts_with("To: +32470123456\n"), "{text}");
    assert!(text.contains(&format!("Id: {}\n", first.id)), "{text}");
    assert!(text.ends_with(&format!("\n\n{TEXT}\n")), "{text}");
    let logs = logs.assert_clean(&first);
    assert!(logs.contains("sms-outbox"), "{logs}");
}

#[tokio::test]
async fn an_unwritable_outbox_fails_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let g = SmsGateway::Outbox(blocker.join("sms-outbox"));
    let (retryable, ambiguous, _) = failed(&g.send(&message()).await);
    assert!(retryable && !ambiguous);
}
