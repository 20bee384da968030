//! A software authenticator (WebAuthn), written from the specification for the
//! tests: it answers the server's options as a browser with a platform authenticator
//! would (`PublicKeyCredential.toJSON()` shape, attestation `none`, ES256), and can
//! be told to misbehave (another origin, a counter going backwards). As a USB
//! security key without a PIN it only proves presence (no UV flag) and keeps no
//! user handle.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .expect("base64url")
}

/// The flags of authenticator data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

pub struct SoftKey {
    /// The origin it reports in client data (a browser's page origin).
    pub origin: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    pub credential_id: Vec<u8>,
    /// The user handle the server gave at registration.
    pub user: Vec<u8>,
    pub rp_id: String,
    /// The signature counter (0: none, as synced passkeys have).
    pub counter: u32,
    /// A synced passkey (backup eligible and backed up), or bound to this device.
    pub synced: bool,
    /// Whether it verifies the person (PIN or biometric).
    pub verifies: bool,
    /// A roaming USB key (cross-platform, no user handle), not a platform one.
    pub usb: bool,
}

impl SoftKey {
    /// A device-bound key with a counter, as a security key is.
    pub fn new(origin: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let mut credential_id = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&rng, &mut credential_id).expect("random");
        Self {
            origin: origin.to_owned(),
            key,
            rng,
            credential_id,
            user: Vec::new(),
            rp_id: String::new(),
            counter: 1,
            synced: false,
            verifies: true,
            usb: false,
        }
    }

    /// A USB security key without a PIN (a touch only), as a PIN-less YubiKey is.
    pub fn usb_key_for_app(url: &str) -> Self {
        let mut k = Self::for_app(url);
        k.verifies = false;
        k.usb = true;
        k
    }

    fn attachment(&self) -> &'static str {
        if self.usb {
            "cross-platform"
        } else {
            "platform"
        }
    }

    /// The origin a browser has on the test app (`localhost`: an IP address cannot
    /// be a relying party).
    pub fn for_app(url: &str) -> Self {
        Self::new(&url.replace("127.0.0.1", "localhost"))
    }

    fn flags(&self, extra: u8) -> u8 {
        let mut f = UP | extra;
        if self.verifies {
            f |= UV;
        }
        if self.synced {
            f |= BE | BS;
        }
        f
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// Answers `navigator.credentials.create()` options (`{"publicKey": {...}}`).
    pub fn register(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        self.rp_id = pk["rp"]["id"].as_str().expect("rp.id").to_owned();
        self.user = unb64(pk["user"]["id"].as_str().expect("user.id"));
        let challenge = pk["challenge"].as_str().expect("challenge");
        let client_data = self.client_data("webauthn.create", challenge);
        let public = self.key.public_key().as_ref(); // 0x04 || x || y
        let mut cose = Vec::new();
        cbor_map(&mut cose, 5);
        cbor_int(&mut cose, 1);
        cbor_int(&mut cose, 2); // kty: EC2
        cbor_int(&mut cose, 3);
        cbor_int(&mut cose, -7); // alg: ES256
        cbor_int(&mut cose, -1);
        cbor_int(&mut cose, 1); // crv: P-256
        cbor_int(&mut cose, -2);
        cbor_bytes(&mut cose, &public[1..33]);
        cbor_int(&mut cose, -3);
        cbor_bytes(&mut cose, &public[33..65]);
        let mut auth = self.auth_data_head(self.flags(AT), self.counter);
        auth.extend_from_slice(&[0u8; 16]); // AAGUID
        let len = u16::try_from(self.credential_id.len()).expect("length");
        auth.extend_from_slice(&len.to_be_bytes());
        auth.extend_from_slice(&self.credential_id);
        auth.extend_from_slice(&cose);
        let mut att = Vec::new();
        cbor_map(&mut att, 3);
        cbor_text(&mut att, "fmt");
        cbor_text(&mut att, "none");
        cbor_text(&mut att, "attStmt");
        cbor_map(&mut att, 0);
        cbor_text(&mut att, "authData");
        cbor_bytes(&mut att, &auth);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": self.attachment(),
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&att),
                "transports": [if self.usb { "usb" } else { "internal" }],
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers `navigator.credentials.get()` options; the counter goes up first.
    pub fn assert(&mut self, options: &Value) -> Value {
        if self.counter > 0 {
            self.counter += 1;
        }
        self.assert_with_counter(options, self.counter)
    }

    /// An answer with the given signature counter (a clone's goes backwards).
    pub fn assert_with_counter(&self, options: &Value, counter: u32) -> Value {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        let auth = self.auth_data_head(self.flags(0), counter);
        let mut signed = auth.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let sig = self.key.sign(&self.rng, &signed).expect("sign");
        let mut response = json!({
            "clientDataJSON": b64(&client_data),
            "authenticatorData": b64(&auth),
            "signature": b64(sig.as_ref()),
        });
        // A key that stores nothing has no user handle to give.
        if !self.usb {
            response["userHandle"] = json!(b64(&self.user));
        }
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": self.attachment(),
            "response": response,
            "clientExtensionResults": {},
        })
    }

    fn auth_data_head(&self, flags: u8, counter: u32) -> Vec<u8> {
        let mut a = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        a.push(flags);
        a.extend_from_slice(&counter.to_be_bytes());
        a
    }
}

// The few CBOR items (RFC 8949) an attestation object needs.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        cbor_head(out, 0, v as u64);
    } else {
        cbor_head(out, 1, (-1 - v) as u64);
    }
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    cbor_head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn cbor_map(out: &mut Vec<u8>, n: u64) {
    cbor_head(out, 5, n);
}
