//! The otpauth URI of an authenticator app's set-up (and its QR code), the key as
//! people type it, and the TOTP codes it yields.
//!
//! Properties: the URI is plain ASCII without spaces or control characters; an app
//! reading it (label `issuer:account`, percent-decoded, and the query, decoded as a
//! URI or as a form) gets back exactly the issuer, account and secret that went in;
//! the QR code of every valid address's URI can be made; the typed key is the key;
//! a code made for a moment is accepted at that moment, and only such codes are.

#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use tweestap_domain::account::Email;
use tweestap_domain::totp::{base32, grouped, otpauth_uri, TotpParams};

fn decoded(s: &str) -> String {
    match percent_decode_str(s).decode_utf8() {
        Ok(s) => s.into_owned(),
        Err(e) => panic!("{s:?} does not decode to UTF-8: {e}"),
    }
}

// Input: issuer, account, secret (bytes), moment (Unix seconds) and a typed code,
// separated by 0x1f.
fuzz_target!(|data: &[u8]| {
    let [issuer, account, secret, at, typed] = tweestap_fuzz::fields(data);
    let (Some(issuer), Some(account), Some(typed)) = (
        tweestap_fuzz::text(issuer),
        tweestap_fuzz::text(account),
        tweestap_fuzz::text(typed),
    ) else {
        return;
    };
    let (issuer, account, secret, at) = (
        issuer.to_owned(),
        account.to_owned(),
        secret.to_vec(),
        tweestap_fuzz::number(at),
    );
    if secret.is_empty() || secret.len() > 64 {
        return;
    }
    let p = TotpParams::default();

    // The key, in base32 and in groups of four.
    let b32 = base32(&secret);
    assert!(b32
        .bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    assert_eq!(
        data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).ok(),
        Some(secret.clone())
    );
    let typed_key = grouped(&b32);
    assert!(typed_key.split(' ').all(|g| (1..=4).contains(&g.len())));
    assert_eq!(typed_key.replace(' ', ""), b32);

    // The URI.
    let uri = otpauth_uri(&issuer, &account, &b32, &p);
    assert!(uri.is_ascii(), "{uri:?}");
    assert!(!tweestap_fuzz::has_control_or_space(&uri), "{uri:?}");
    let parsed = url::Url::parse(&uri).unwrap_or_else(|e| panic!("{uri:?}: {e}"));
    assert_eq!(parsed.scheme(), "otpauth");
    assert_eq!(parsed.host_str(), Some("totp"));
    let label = parsed.path().strip_prefix('/').expect("a label");
    let (label_issuer, label_account) = label.split_once(':').expect("issuer:account");
    assert_eq!(decoded(label_issuer), issuer, "{uri}");
    assert_eq!(decoded(label_account), account, "{uri}");
    // Apps decode the query as a URI (percent-decoding only) or as a form ('+' is a
    // space): both must read the same.
    let raw: Vec<(String, String)> = parsed
        .query()
        .expect("a query")
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (decoded(k), decoded(v))
        })
        .collect();
    let form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    assert_eq!(raw, form, "{uri}");
    let expected = [
        ("secret", b32.clone()),
        ("issuer", issuer.clone()),
        ("algorithm", "SHA1".to_owned()),
        ("digits", "6".to_owned()),
        ("period", "30".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    assert_eq!(raw, expected, "{uri}");

    // The QR code of a real account's URI (an address, an issuer as configured).
    if let Ok(email) = Email::parse(&account) {
        if issuer.len() <= 64 && secret.len() <= 20 {
            let uri = otpauth_uri(&issuer, email.as_str(), &b32, &p);
            assert!(tweestap_web::fuzzing::qr_svg(&uri).is_ok(), "{uri}");
        }
    }

    // Codes.
    let code = p.code_at(&secret, at);
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
    let now = p.step_at(at);
    let step = p.matching_step(&secret, &code, at).expect("its own code");
    assert!(step + 1 >= now && step <= now + 1);
    if let Some(step) = p.matching_step(&secret, &typed, at) {
        assert!(step + 1 >= now && step <= now + 1);
        assert_eq!(typed, p.code_at(&secret, (step * 30) as i64), "{typed:?}");
    }
});
