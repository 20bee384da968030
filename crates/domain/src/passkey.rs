//! Passkeys (WebAuthn): the relying party that checks them (webauthn-rs), what the
//! engine keeps of a ceremony between its two calls, and what a used passkey says
//! about the sign-in (RFC 8176 `amr`). A security key (a USB key used only after the
//! password, perhaps without a PIN) is the same factor kind, kept as a
//! [`RegisteredKey`] that says which of the two it is.

use serde::{Deserialize, Serialize};
use url::Url;
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, CredentialID, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// How long the browser may take to answer (and the ceremony's state lives).
pub const CEREMONY_SECONDS: i64 = 300;

/// Why a passkey was refused; the web layer words each for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyProblem {
    /// This server's address cannot be a relying party (an IP address, say).
    #[error("passkeys are not available at this server's address")]
    Unavailable,
    /// The answer does not belong to a ceremony this server started, or it was
    /// already used or is too old: start again.
    #[error("this passkey request has expired or was already used; try again")]
    Expired,
    /// No passkey of this account (or none at all) has this credential.
    #[error("this passkey is not known here")]
    UnknownKey,
    /// The signature, origin, relying party or flags are wrong.
    #[error("the passkey's answer could not be verified")]
    Invalid,
    /// The signature counter went backwards on a key that cannot be copied: it may
    /// have been cloned.
    #[error("this passkey was refused: it may have been copied")]
    PossibleClone,
    /// The key was already registered (to this or another account).
    #[error("this passkey is already registered")]
    AlreadyRegistered,
}

/// The relying party: this server, as browsers and authenticators know it.
pub struct RelyingParty {
    webauthn: Webauthn,
    rp_id: String,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("rp_id", &self.rp_id)
            .finish()
    }
}

impl RelyingParty {
    /// The relying party of the server people reach at `public_url`. Its id is the
    /// URL's host name; an IP address cannot be one (browsers refuse it), except that
    /// a loopback address stands for `localhost`, so a developer's server works at
    /// `http://localhost:<port>`.
    pub fn for_public_url(public_url: &str, name: &str) -> Result<Self, PasskeyProblem> {
        let mut origin = Url::parse(public_url).map_err(|_| PasskeyProblem::Unavailable)?;
        let host = match origin.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => "localhost".to_owned(),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => "localhost".to_owned(),
            _ => return Err(PasskeyProblem::Unavailable),
        };
        origin
            .set_host(Some(&host))
            .map_err(|_| PasskeyProblem::Unavailable)?;
        origin.set_path("");
        // Security keys ask only for a touch: a PIN-less key (U2F, or FIDO2 without a
        // PIN) must work, and they are only ever a second factor after the password.
        // Passkeys still require user verification (the setting does not touch them).
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| {
                b.rp_name(name)
                    .danger_set_user_presence_only_security_keys(true)
                    .build()
            })
            .map_err(|_| PasskeyProblem::Unavailable)?;
        Ok(Self {
            webauthn,
            rp_id: host,
        })
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    pub fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }
}

/// What the engine keeps of a ceremony until the browser answers (in the database,
/// so any node can finish it). The challenge itself is its key.
#[derive(Debug, Serialize, Deserialize)]
pub enum CeremonyState {
    Register(PasskeyRegistration),
    /// Registering a security key (a second factor only; user verification not asked).
    RegisterSecurityKey(SecurityKeyRegistration),
    /// A second factor, for the passkeys of one account.
    SecondFactor(PasskeyAuthentication),
    /// A second factor for an account with security keys: all its keys, passkeys
    /// too, in one ceremony (each still held to the verification it was registered
    /// with).
    SecondFactorKeys(SecurityKeyAuthentication),
    /// A sign-in without a password: any discoverable passkey.
    Passwordless(DiscoverableAuthentication),
}

/// A stored ceremony: its state, and for a registration the factor it confirms.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    pub factor: Option<uuid::Uuid>,
    pub state: CeremonyState,
}

/// What the database keys a ceremony by: a hash of its challenge (base64url, as
/// sent), so the stored key is no challenge an answer could be made for.
pub fn challenge_hash(challenge: &str) -> String {
    use sha2::Digest as _;
    crate::token::hex(&sha2::Sha256::digest(
        challenge.trim_end_matches('=').as_bytes(),
    ))
}

/// The challenge of options as they go to the browser (`publicKey.challenge`).
pub fn challenge_in(options: &serde_json::Value) -> Option<String> {
    let c = options.get("publicKey")?.get("challenge")?.as_str()?;
    Some(c.trim_end_matches('=').to_owned())
}

/// The challenge a browser's answer carries (base64url, as it was sent), read from
/// its `clientDataJSON`, to find the ceremony it answers. Nothing here is trusted:
/// webauthn-rs checks it all again against the stored state.
pub fn challenge_of(credential: &serde_json::Value) -> Option<String> {
    use base64::Engine as _;
    let client_data = credential
        .get("response")?
        .get("clientDataJSON")?
        .as_str()?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(client_data.trim_end_matches('='))
        .ok()?;
    let parsed: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let challenge = parsed.get("challenge")?.as_str()?;
    (!challenge.is_empty() && challenge.len() <= 128).then(|| challenge.to_owned())
}

/// A registration answer, in the `PublicKeyCredential.toJSON()` shape.
pub fn registration(
    credential: &serde_json::Value,
) -> Result<RegisterPublicKeyCredential, PasskeyProblem> {
    serde_json::from_value(credential.clone()).map_err(|_| PasskeyProblem::Invalid)
}

/// A sign-in answer, in the `PublicKeyCredential.toJSON()` shape.
pub fn assertion(credential: &serde_json::Value) -> Result<PublicKeyCredential, PasskeyProblem> {
    serde_json::from_value(credential.clone()).map_err(|_| PasskeyProblem::Invalid)
}

/// webauthn-rs's refusals, as we tell them.
pub fn problem_of(e: &WebauthnError) -> PasskeyProblem {
    match e {
        WebauthnError::CredentialPossibleCompromise => PasskeyProblem::PossibleClone,
        WebauthnError::CredentialNotFound | WebauthnError::InvalidUserUniqueId => {
            PasskeyProblem::UnknownKey
        }
        _ => PasskeyProblem::Invalid,
    }
}

/// What the profile shows of a passkey and the sign-in records of its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyTraits {
    /// The key may be copied to other devices (backup eligible: a synced passkey).
    pub synced: bool,
    /// The key is copied now (backup state).
    pub backed_up: bool,
    pub counter: u32,
}

impl KeyTraits {
    pub fn of(key: &RegisteredKey) -> Self {
        Self {
            synced: key.cred.backup_eligible,
            backed_up: key.cred.backup_state,
            counter: key.cred.counter,
        }
    }
}

/// Which WebAuthn API a key was registered with, and so is used with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Verifies the person (PIN or biometric): a second factor, or by itself a
    /// sign-in without a password.
    #[default]
    Passkey,
    /// Only proves possession (a touch): always after the password, never alone.
    SecurityKey,
}

/// A registered key with its kind, as kept (sealed) with its factor.
#[derive(Debug, Clone)]
pub struct RegisteredKey {
    pub kind: KeyKind,
    cred: Credential,
}

/// The sealed form: a passkey as webauthn-rs writes it (as before security keys
/// existed), a security key wrapped, so neither can be read as the other.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    SecurityKey { security_key: SecurityKey },
    Passkey(Passkey),
}

impl RegisteredKey {
    pub fn from_passkey(key: Passkey) -> Self {
        Self {
            kind: KeyKind::Passkey,
            cred: key.into(),
        }
    }

    pub fn from_security_key(key: SecurityKey) -> Self {
        Self {
            kind: KeyKind::SecurityKey,
            cred: key.into(),
        }
    }

    pub fn cred_id(&self) -> &CredentialID {
        &self.cred.cred_id
    }

    pub fn credential(&self) -> &Credential {
        &self.cred
    }

    /// For the passkey API (a passkey, or a sign-in without a password).
    pub fn as_passkey(&self) -> Passkey {
        self.cred.clone().into()
    }

    /// For the security-key API: a ceremony that takes every key of an account.
    pub fn as_security_key(&self) -> SecurityKey {
        self.cred.clone().into()
    }

    /// Keeps what a sign-in reported (counter, backup state), as its API does.
    pub fn update(&mut self, result: &AuthenticationResult) {
        match self.kind {
            KeyKind::Passkey => {
                let mut k = self.as_passkey();
                k.update_credential(result);
                self.cred = k.into();
            }
            KeyKind::SecurityKey => {
                let mut k = self.as_security_key();
                k.update_credential(result);
                self.cred = k.into();
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        match self.kind {
            KeyKind::Passkey => serde_json::to_vec(&Stored::Passkey(self.as_passkey())),
            KeyKind::SecurityKey => serde_json::to_vec(&Stored::SecurityKey {
                security_key: self.as_security_key(),
            }),
        }
    }

    pub fn from_json(raw: &[u8]) -> serde_json::Result<Self> {
        Ok(match serde_json::from_slice(raw)? {
            Stored::Passkey(k) => Self::from_passkey(k),
            Stored::SecurityKey { security_key } => Self::from_security_key(security_key),
        })
    }
}

/// The session methods (as stored; the OIDC `acr`/`amr` are read from them) of a
/// sign-in with a passkey: `hwk` for a key bound to its device, `swk` for one that
/// can be synced; `user` for the presence test and `pin` when the authenticator
/// verified the person (PIN or biometric); `pk` marks the passkey as a second factor
/// by itself (possession and verification in one).
pub fn session_methods(password_too: bool, synced: bool, verified: bool) -> String {
    let mut m = Vec::new();
    if password_too {
        m.push("pwd");
    }
    m.push(if synced { "swk" } else { "hwk" });
    m.push("user");
    if verified {
        m.push("pin");
    }
    m.push("pk");
    m.join(" ")
}

/// The session methods of a second factor with a security key: after the password,
/// `hwk` (or `swk`), `pin` only when the key did verify the person, never `user`
/// (no presence test beyond a touch is claimed), and `pk`, the key's marker.
pub fn security_key_methods(synced: bool, verified: bool) -> String {
    let mut m = vec!["pwd", if synced { "swk" } else { "hwk" }];
    if verified {
        m.push("pin");
    }
    m.push("pk");
    m.join(" ")
}

/// The largest credential answer accepted (bytes of JSON): real ones are a few KB.
pub const MAX_CREDENTIAL_JSON: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn a_loopback_address_stands_for_localhost_and_other_addresses_cannot_be_relying_parties() {
        let rp = RelyingParty::for_public_url("http://127.0.0.1:8080", "t").unwrap();
        assert_eq!(rp.rp_id(), "localhost");
        assert_eq!(
            rp.webauthn().get_allowed_origins()[0].as_str(),
            "http://localhost:8080/"
        );
        let rp = RelyingParty::for_public_url("https://login.tweestad.example/", "t").unwrap();
        assert_eq!(rp.rp_id(), "login.tweestad.example");
        assert_eq!(
            RelyingParty::for_public_url("https://192.0.2.7", "t").unwrap_err(),
            PasskeyProblem::Unavailable
        );
        assert!(RelyingParty::for_public_url("not a url", "t").is_err());
    }

    #[test]
    fn the_challenge_is_read_from_client_data() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let cd = b64.encode(br#"{"type":"webauthn.get","challenge":"abc_-1","origin":"x"}"#);
        let v = serde_json::json!({"response": {"clientDataJSON": cd}});
        assert_eq!(challenge_of(&v).as_deref(), Some("abc_-1"));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"response": {"clientDataJSON": "%%%"}}),
            serde_json::json!({"response": {"clientDataJSON": b64.encode(b"[1]")}}),
            serde_json::json!({"response": {"clientDataJSON": b64.encode(br#"{"challenge":""}"#)}}),
        ] {
            assert_eq!(challenge_of(&bad), None, "{bad}");
        }
    }

    #[test]
    fn session_methods_name_the_key_and_the_verification() {
        assert_eq!(session_methods(true, false, true), "pwd hwk user pin pk");
        assert_eq!(session_methods(false, true, true), "swk user pin pk");
        assert_eq!(session_methods(false, false, false), "hwk user pk");
        assert_eq!(security_key_methods(false, false), "pwd hwk pk");
        assert_eq!(security_key_methods(false, true), "pwd hwk pin pk");
    }

    #[test]
    fn a_stored_passkey_and_a_stored_security_key_read_back_as_what_they_are() {
        // A credential as webauthn-rs serialises one (from its own tests).
        let cred = serde_json::json!({"cred": {"cred_id": "uZcVDBVS68E_MtAgeQpElJxldF_6cY9s",
            "cred": {"type_": "ES256", "key": {"EC_EC2": {"curve": "SECP256R1",
            "x": [194,126,127,109,252,23,131,21,252,6,223,99,44,254,140,27,230,17,94,5,133,28,
                  104,41,144,69,171,149,161,26,200,243],
            "y": [143,123,183,156,24,178,21,248,117,159,162,69,171,52,188,252,26,59,6,47,103,
                  92,19,58,117,103,249,0,219,8,95,196]}}},
            "counter": 2, "user_verified": false, "backup_eligible": false,
            "backup_state": false, "registration_policy": "preferred",
            "extensions": {"cred_protect": "NotRequested", "hmac_create_secret": "NotRequested"},
            "attestation": {"data": "None", "metadata": "None"}, "attestation_format": "None"}});
        let as_passkey = serde_json::to_vec(&cred).unwrap();
        let key = RegisteredKey::from_json(&as_passkey).unwrap();
        assert_eq!(key.kind, KeyKind::Passkey);
        let sk = RegisteredKey {
            kind: KeyKind::SecurityKey,
            cred: key.cred.clone(),
        };
        let again = RegisteredKey::from_json(&sk.to_json().unwrap()).unwrap();
        assert_eq!(again.kind, KeyKind::SecurityKey);
        assert_eq!(again.cred_id(), key.cred_id());
        let again = RegisteredKey::from_json(&key.to_json().unwrap()).unwrap();
        assert_eq!(again.kind, KeyKind::Passkey);
    }
}
