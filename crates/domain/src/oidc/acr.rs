//! How strongly a sign-in proved who signed in: the one record (a session's
//! methods) that both `acr` and `amr` are derived from, so they cannot disagree.

use serde::{Deserialize, Serialize};

/// `acr` of a sign-in with the password only.
pub const ACR_PASSWORD: &str = "urn:tweestap:acr:pwd";
/// `acr` of a sign-in with the password on a browser remembered after a second
/// factor (within the remember period): no second factor in this sign-in.
pub const ACR_REMEMBERED: &str = "urn:tweestap:acr:remembered";
/// `acr` of a sign-in with the password and a second factor, both in this sign-in.
pub const ACR_TWO_FACTOR: &str = "urn:tweestap:acr:mfa";

/// The levels, weakest first (the order of `acr_values_supported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthLevel {
    Password,
    Remembered,
    TwoFactor,
}

impl AuthLevel {
    pub const ALL: [AuthLevel; 3] = [
        AuthLevel::Password,
        AuthLevel::Remembered,
        AuthLevel::TwoFactor,
    ];

    pub fn acr(self) -> &'static str {
        match self {
            AuthLevel::Password => ACR_PASSWORD,
            AuthLevel::Remembered => ACR_REMEMBERED,
            AuthLevel::TwoFactor => ACR_TWO_FACTOR,
        }
    }

    pub fn from_acr(acr: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.acr() == acr)
    }
}

/// What a session's methods (as stored: `pwd`, `pwd otp`, `pwd sms`, `pwd mfa` for a
/// recovery code, `pwd device` for a remembered browser, `[pwd] hwk|swk user [pin] pk`
/// for a passkey and `pwd hwk [pin] pk` for a security key, as the passkey module
/// writes them) say about the sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInProof {
    /// RFC 8176 values: what was done in this sign-in, nothing else.
    pub amr: Vec<String>,
    pub level: AuthLevel,
}

/// The passkey's method names as `'static` strings.
fn m_static(m: &str) -> &'static str {
    match m {
        "hwk" => "hwk",
        "swk" => "swk",
        _ => "user",
    }
}

impl SignInProof {
    pub fn of(session_methods: &str) -> Self {
        let mut amr = Vec::new();
        let mut second = false;
        let mut remembered = false;
        let mut passkey = false;
        let mut verified = false;
        for m in session_methods.split_whitespace() {
            match m {
                "pwd" => amr.push("pwd"),
                "otp" => {
                    amr.push("otp");
                    second = true;
                }
                "sms" => {
                    amr.push("sms");
                    second = true;
                }
                // A recovery code: a one-time password from the printed list.
                "mfa" => {
                    amr.push("otp");
                    second = true;
                }
                "device" => remembered = true,
                "hwk" | "swk" | "user" => amr.push(m_static(m)),
                "pin" => {
                    amr.push("pin");
                    verified = true;
                }
                "pk" => passkey = true,
                _ => {}
            }
        }
        // A passkey is a second factor after a password; with the person verified on
        // the authenticator (PIN or biometric) it is two factors by itself.
        let second = second || passkey;
        let level = if second && (amr.contains(&"pwd") || (passkey && verified)) {
            amr.push("mfa");
            AuthLevel::TwoFactor
        } else if remembered {
            AuthLevel::Remembered
        } else {
            AuthLevel::Password
        };
        let mut out: Vec<String> = Vec::new();
        for a in amr {
            if !out.iter().any(|o| o == a) {
                out.push(a.to_owned());
            }
        }
        Self { amr: out, level }
    }

    /// Whether a remembered browser stood in for the second factor.
    pub fn used_remembered_device(session_methods: &str) -> bool {
        session_methods.split_whitespace().any(|m| m == "device")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_and_amr_come_from_the_same_methods() {
        let p = SignInProof::of("pwd");
        assert_eq!(
            (p.amr, p.level),
            (vec!["pwd".to_owned()], AuthLevel::Password)
        );
        let p = SignInProof::of("pwd otp");
        assert_eq!(p.amr, ["pwd", "otp", "mfa"]);
        assert_eq!(p.level.acr(), ACR_TWO_FACTOR);
        let p = SignInProof::of("pwd sms");
        assert_eq!(p.amr, ["pwd", "sms", "mfa"]);
        let p = SignInProof::of("pwd mfa");
        assert_eq!(p.amr, ["pwd", "otp", "mfa"]);
        // Passkeys: after a password, and by themselves when the person was verified.
        let p = SignInProof::of("pwd hwk user pin pk");
        assert_eq!(p.amr, ["pwd", "hwk", "user", "pin", "mfa"]);
        assert_eq!(p.level, AuthLevel::TwoFactor);
        let p = SignInProof::of("swk user pin pk");
        assert_eq!(p.amr, ["swk", "user", "pin", "mfa"]);
        assert_eq!(p.level, AuthLevel::TwoFactor);
        let p = SignInProof::of("hwk user pk");
        assert_eq!(p.amr, ["hwk", "user"]);
        assert_eq!(p.level, AuthLevel::Password);
        // A security key touched after the password: possession, no verification.
        let p = SignInProof::of("pwd hwk pk");
        assert_eq!(p.amr, ["pwd", "hwk", "mfa"]);
        assert_eq!(p.level, AuthLevel::TwoFactor);
        // A remembered browser is not a second factor of this sign-in.
        let p = SignInProof::of("pwd device");
        assert_eq!(p.amr, ["pwd"]);
        assert_eq!(p.level.acr(), ACR_REMEMBERED);
        // Never mfa without the password.
        assert_eq!(SignInProof::of("otp").level, AuthLevel::Password);
        assert!(AuthLevel::Password < AuthLevel::Remembered);
        assert!(AuthLevel::Remembered < AuthLevel::TwoFactor);
        for l in AuthLevel::ALL {
            assert_eq!(AuthLevel::from_acr(l.acr()), Some(l));
        }
    }
}
