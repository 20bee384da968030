use super::*;
use crate::config::sms::*;
use std::time::Duration;
use tweestap_domain::sms::SmsPolicy;

fn parse(toml_text: &str) -> SmsConfig {
    toml::from_str(toml_text).unwrap()
}

fn gateway_error(toml_text: &str) -> String {
    SmsGateway::from_config(&parse(toml_text), Path::new("/tmp/x"))
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults_are_the_outbox_and_the_domain_policy() {
    let c = parse("");
    assert_eq!(c.gateway, GatewayKind::Outbox);
    assert_eq!(c.policy(), SmsPolicy::default());
    assert_eq!(c.timeout(), Duration::from_secs(10));
    assert_eq!(
        c.retry_policy(),
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(200)
        }
    );
    let g = SmsGateway::from_config(&c, Path::new("data")).unwrap();
    assert_eq!(g.kind(), "outbox");
    assert_eq!(g.outbox(), Some(Path::new("data/sms-outbox")));
    assert!(g.describe().starts_with("outbox "));
}

#[test]
fn every_key_parses_and_unknown_ones_are_refused() {
    let c = parse(
        r#"
            gateway = "http"
            timeout_seconds = 2.5
            retries = 4
            retry_backoff_ms = 50
            allowed_calling_codes = [32]
            per_account_per_hour = 3
            per_number_per_hour = 4
            per_ip_per_hour = 6
            global_per_hour = 100
            default_region = "nl"
            [http]
            url = "https://sms.example/send"
            method = "GET"
            header_name = "X-API-Key"
            header_value = "k"
            body_format = "form"
            body_template = "to={to}&text={text}"
            [twilio]
            base_url = "http://127.0.0.1:1"
            account_sid = "AC1"
            auth_token = "t"
            from = "+3212345678"
            messaging_service_sid = ""
            "#,
    );
    assert_eq!(c.gateway, GatewayKind::Http);
    assert_eq!(c.timeout(), Duration::from_millis(2500));
    assert_eq!(c.retry_policy().attempts, 5);
    assert_eq!(c.http.method, HttpMethod::Get);
    assert_eq!(c.http.body_format, BodyFormat::Form);
    let p = c.policy();
    assert_eq!(p.allowed_calling_codes, vec![32]);
    assert_eq!(p.default_region, "NL");
    assert_eq!(
        (
            p.per_account_per_hour,
            p.per_number_per_hour,
            p.per_ip_per_hour,
            p.global_per_hour
        ),
        (3, 4, 6, 100)
    );
    SmsGateway::from_config(&c, Path::new("d")).unwrap();
    assert_eq!(
        parse("timeout_seconds = 3").timeout(),
        Duration::from_secs(3)
    );
    assert_eq!(
        parse("[http]\nmethod = \"post\"").http.method,
        HttpMethod::Post
    );
    for bad in [
        "gateway = \"carrier-pigeon\"",
        "gatway = \"http\"",
        "[http]\nuri = \"x\"",
        "[twilio]\ntoken = \"x\"",
        "[http]\nmethod = \"PUT\"",
        "[http]\nbody_format = \"xml\"",
    ] {
        assert!(toml::from_str::<SmsConfig>(bad).is_err(), "{bad}");
    }
}

#[test]
fn secrets_stay_out_of_debug_and_the_environment_overrides_them() {
    let mut c =
        parse("[http]\nheader_value = \"Bearer s3cret\"\n[twilio]\nauth_token = \"tok3n\"\n");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("tok3n"),
        "{debug}"
    );
    c.apply_env_from(|n| match n {
        "TWEESTAP_SMS_HTTP_HEADER_VALUE" => Some("Bearer other".into()),
        "TWEESTAP_SMS_TWILIO_AUTH_TOKEN" => Some(String::new()),
        _ => None,
    });
    assert_eq!(c.http.header_value.expose(), "Bearer other");
    assert_eq!(c.twilio.auth_token.expose(), "tok3n");
}

#[test]
fn http_settings_that_cannot_work_are_named() {
    let e = gateway_error("gateway = \"http\"");
    assert_eq!(e, "[sms] gateway = \"http\" needs [sms.http] url");
    let e = gateway_error("gateway = \"http\"\n[http]\nurl = \"ftp://x/\"");
    assert!(e.contains("[sms] http.url") && e.contains("http"), "{e}");
    let e = gateway_error("gateway = \"http\"\n[http]\nurl = \"not a url\"");
    assert!(e.contains("http.url"), "{e}");
    let e = gateway_error(
        "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nbody_template = \"{\\\"to\\\": {to}}\"",
    );
    assert!(
        e.contains("http.body_template") && e.contains("JSON"),
        "{e}"
    );
    let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nbody_template = \"{\\\"to\\\": \\\"{to}\\\"}\"",
        );
    assert!(e.contains("{text}"), "{e}");
    let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nbody_format = \"form\"\nbody_template = \"to={to}&oops\"",
        );
    assert!(e.contains("key=value"), "{e}");
    let e = gateway_error("gateway = \"http\"\n[http]\nurl = \"https://x/\"\nmethod = \"GET\"");
    assert!(e.contains("body_format"), "{e}");
    let e =
        gateway_error("gateway = \"http\"\n[http]\nurl = \"https://x/\"\nheader_name = \"X-Key\"");
    assert!(e.contains("header_value"), "{e}");
    let e = gateway_error("gateway = \"http\"\n[http]\nurl = \"https://x/\"\nheader_value = \"k\"");
    assert!(e.contains("header_name"), "{e}");
    let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nheader_name = \"bad header\"\nheader_value = \"k\"",
        );
    assert!(e.contains("http.header_name"), "{e}");
}

#[test]
fn twilio_settings_that_cannot_work_are_named() {
    let ok = "gateway = \"twilio\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"\n";
    let e = gateway_error(ok);
    assert!(
        e.contains("from") && e.contains("messaging_service_sid"),
        "{e}"
    );
    SmsGateway::from_config(
        &parse(&format!("{ok}from = \"+32470123456\"\n")),
        Path::new("d"),
    )
    .unwrap();
    SmsGateway::from_config(
        &parse(&format!("{ok}messaging_service_sid = \"MG1\"\n")),
        Path::new("d"),
    )
    .unwrap();
    let e = gateway_error(&format!(
        "{ok}from = \"x\"\nmessaging_service_sid = \"MG1\"\n"
    ));
    assert!(e.contains("not both"), "{e}");
    let e = gateway_error("gateway = \"twilio\"\n[twilio]\nauth_token = \"t\"\nfrom = \"x\"\n");
    assert_eq!(
        e,
        "[sms] gateway = \"twilio\" needs [sms.twilio] account_sid"
    );
    let e = gateway_error("gateway = \"twilio\"\n[twilio]\naccount_sid = \"AC1\"\nfrom = \"x\"\n");
    assert!(e.contains("auth_token"), "{e}");
    let e = gateway_error(
        &format!("{ok}from = \"x\"\naccount_sid = \"AC/../x\"\n")
            .replace("account_sid = \"AC1\"\n", ""),
    );
    assert!(e.contains("twilio.account_sid"), "{e}");
}

#[test]
fn policy_keys_are_checked() {
    assert!(gateway_error("default_region = \"XX\"").contains("default_region"));
    assert!(gateway_error("allowed_calling_codes = [0]").contains("allowed_calling_codes"));
    assert!(gateway_error("allowed_calling_codes = [1000]").contains("allowed_calling_codes"));
    assert!(gateway_error("timeout_seconds = 0").contains("timeout_seconds"));
    assert!(gateway_error("timeout_seconds = -1.5").contains("timeout_seconds"));
    assert!(gateway_error("retries = 11").contains("retries"));
    assert!(gateway_error("retry_backoff_ms = 600000").contains("retry_backoff_ms"));
    assert!(toml::from_str::<SmsConfig>("retries = -1").is_err());
}

#[test]
fn the_outbox_file_holds_number_id_and_text() {
    let to = tweestap_domain::sms::PhoneNumber::parse("0470 12 34 56", "BE").unwrap();
    let msg = SmsMessage::new(to, "Je code is 123 456");
    let at = chrono::DateTime::parse_from_rfc3339("2026-05-01T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        outbox_file_text(&msg, at),
        format!(
            "To: +32470123456\nId: {}\nDate: 2026-05-01T10:00:00Z\n\nJe code is 123 456\n",
            msg.id
        )
    );
}
