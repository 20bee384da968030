//! CSRF protection for forms: a random cookie, and in each form an HMAC of it under a
//! server key (signed double-submit). A cross-site page can neither read the cookie
//! nor forge the HMAC. The JSON API relies on requiring `application/json` instead,
//! which a cross-site form cannot send without a CORS preflight we never grant.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hmac::Mac;
use subtle::ConstantTimeEq;
use tweestap_domain::secret_box::MasterKey;
use tweestap_domain::token::{hex, Token};

pub const CSRF_COOKIE: &str = "tweestap_csrf";

#[derive(Clone)]
pub struct Csrf {
    key: [u8; 32],
}

impl Csrf {
    pub fn new(master: &MasterKey) -> Self {
        Self {
            key: master.derive("tweestap csrf v1"),
        }
    }

    fn sign(&self, cookie: &str) -> String {
        let mut m = tweestap_domain::secret_box::hmac_sha256(&self.key);
        m.update(cookie.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// The form token for this browser, setting the cookie first if it has none.
    pub fn token(&self, jar: CookieJar, secure: bool) -> (CookieJar, String) {
        if let Some(c) = jar.get(CSRF_COOKIE) {
            let t = self.sign(c.value());
            return (jar, t);
        }
        let value = Token::generate().as_str().to_owned();
        let t = self.sign(&value);
        let cookie = Cookie::build((CSRF_COOKIE, value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .build();
        (jar.add(cookie), t)
    }

    pub fn verify(&self, jar: &CookieJar, submitted: &str) -> bool {
        let Some(c) = jar.get(CSRF_COOKIE) else {
            return false;
        };
        bool::from(self.sign(c.value()).as_bytes().ct_eq(submitted.as_bytes()))
    }
}
