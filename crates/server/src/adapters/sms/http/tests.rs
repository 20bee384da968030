use super::*;
use tweestap_domain::sms::PhoneNumber;

fn msg(text: &str) -> SmsMessage {
    SmsMessage::new(PhoneNumber::parse("0470 12 34 56", "BE").unwrap(), text)
}

#[test]
fn placeholders_are_filled_once_and_escaped() {
    let m = msg("say \"{to}\"\n€ & co");
    let v = Values::of(&m);
    let json = fill(
        r#"{"to":"{to}","text":"{text}","id":"{id}","x":"{other}"}"#,
        &v,
        json_escape,
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["to"], "+32470123456");
    assert_eq!(parsed["text"], "say \"{to}\"\n€ & co");
    assert_eq!(parsed["id"], m.id.to_string());
    assert_eq!(parsed["x"], "{other}");
    assert_eq!(
        fill("https://x/?to={to}&m={text}", &v, url_escape),
        "https://x/?to=%2B32470123456&m=say+%22%7Bto%7D%22%0A%E2%82%AC+%26+co"
    );
    assert_eq!(fill("{", &v, str::to_owned), "{");
    assert_eq!(fill("a{tex", &v, str::to_owned), "a{tex");
}

#[test]
fn form_templates_split_on_ampersands_and_lines() {
    let pairs = parse_form("to={to}&text={text}\n  sender = Tweestap \n\n").unwrap();
    assert_eq!(
        pairs,
        [
            ("to".to_owned(), "{to}".to_owned()),
            ("text".to_owned(), "{text}".to_owned()),
            ("sender".to_owned(), "Tweestap".to_owned())
        ]
    );
    assert!(parse_form("=x").is_err());
    assert!(parse_form("novalue").is_err());
}

#[test]
fn error_excerpts_never_carry_the_code() {
    let m = msg("Je code is 123456");
    let s = scrub(
        "{\"error\":\"bad\",\n\"echo\":\"Je code is 123456\",\"to\":\"+32470123456\"}",
        &m,
    );
    assert_eq!(
        s,
        "{\"error\":\"bad\", \"echo\":\"[text]\",\"to\":\"+•••\"}"
    );
    let s = scrub("code 123 456 and 12", &msg("x"));
    assert_eq!(s, "code ••• ••• and 12");
    let long = scrub(&"a".repeat(500), &m);
    assert_eq!(long.chars().count(), MAX_DETAIL_CHARS + 1);
}

#[test]
fn provider_ids_are_found_under_usual_keys() {
    let g = GenericAnswer;
    assert_eq!(g.provider_id(br#"{"id":"abc"}"#).as_deref(), Some("abc"));
    assert_eq!(
        g.provider_id(br#"{"message_id":42}"#).as_deref(),
        Some("42")
    );
    assert_eq!(
        g.provider_id(br#"{"messages":[{"message-id":"v1"}]}"#)
            .as_deref(),
        Some("v1")
    );
    assert_eq!(g.provider_id(b"OK"), None);
    assert_eq!(g.provider_id(br#"{"id":""}"#), None);
    let t = TwilioAnswer;
    assert_eq!(
        t.provider_id(br#"{"sid":"SM1","id":"x"}"#).as_deref(),
        Some("SM1")
    );
    assert_eq!(
        t.error_detail(
            br#"{"code":21211,"message":"The 'To' number +32470123456 is not valid"}"#,
            &msg("x")
        ),
        "Twilio error 21211: The 'To' number +••• is not valid"
    );
}

#[test]
fn described_urls_show_no_secrets() {
    assert_eq!(
        describe_url("https://user:pw@sms.example:8443/send?api_key=s3cret"),
        "https://sms.example:8443/send"
    );
}
