//! CSRF protection for forms: a random cookie, and in each form an HMAC under a
//! server key of it and of the browser's session cookie (signed double-submit,
//! bound to the session). A cross-site page can neither read the cookies nor forge
//! the HMAC. A sibling host that plants a CSRF cookie whose token it knows (over
//! plain http the cookie has no `__Host-` prefix, so it can) still knows no token
//! for the victim's session: its token was minted for its own (or none), and a
//! token minted in one session is refused in any other. The JSON API relies on
//! requiring `application/json` instead, which a cross-site form cannot send
//! without a CORS preflight we never grant.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hmac::Mac;
use subtle::ConstantTimeEq;
use tweestap_domain::secret_box::MasterKey;
use tweestap_domain::token::{hex, Token};

use crate::extract::SESSION_COOKIE;

pub const CSRF_COOKIE: &str = "tweestap_csrf";

/// The cookie's name over https. Browsers take a `__Host-` cookie only from this
/// very host (`Secure`, `Path=/`, no `Domain`), so a portal on a sibling host
/// cannot plant a CSRF cookie whose token it knows (it can set `tweestap_csrf` for
/// the parent domain, and its forms are same-site, so the session cookie goes
/// along).
pub const HOST_CSRF_COOKIE: &str = "__Host-tweestap_csrf";

#[derive(Clone)]
pub struct Csrf {
    key: [u8; 32],
    /// Cookies are `Secure` (https): the cookie is [`HOST_CSRF_COOKIE`].
    secure: bool,
}

impl Csrf {
    pub fn new(master: &MasterKey) -> Self {
        Self {
            key: master.derive("tweestap csrf v1"),
            secure: false,
        }
    }

    /// Served over https (`Secure` cookies): the cookie is [`HOST_CSRF_COOKIE`].
    pub fn over_https(self, secure: bool) -> Self {
        Self { secure, ..self }
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            HOST_CSRF_COOKIE
        } else {
            CSRF_COOKIE
        }
    }

    /// The token for the CSRF cookie `cookie` in the session whose cookie is
    /// `session` (none before sign-in). Both are length-prefixed, so no pair of
    /// values reads as another.
    fn sign(&self, cookie: &str, session: Option<&str>) -> String {
        let mut m = tweestap_domain::secret_box::hmac_sha256(&self.key);
        m.update(b"tweestap csrf v2");
        for part in [Some(cookie), session] {
            match part {
                Some(v) => {
                    m.update(&(v.len() as u64).to_be_bytes());
                    m.update(v.as_bytes());
                }
                None => m.update(&u64::MAX.to_be_bytes()),
            }
        }
        hex(&m.finalize().into_bytes())
    }

    /// The session cookie the token is bound to: the one the response sets, if
    /// it sets one (a jar's `get` sees its own changes), else the request's.
    fn session(jar: &CookieJar) -> Option<&str> {
        jar.get(SESSION_COOKIE).map(|c| c.value())
    }

    /// The form token for this browser, setting the cookie first if it has none.
    pub fn token(&self, jar: CookieJar, secure: bool) -> (CookieJar, String) {
        let name = self.cookie_name();
        if let Some(c) = jar.get(name) {
            let t = self.sign(c.value(), Self::session(&jar));
            return (jar, t);
        }
        let value = Token::generate().as_str().to_owned();
        let t = self.sign(&value, Self::session(&jar));
        let cookie = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(secure || self.secure)
            .same_site(SameSite::Lax)
            .build();
        (jar.add(cookie), t)
    }

    pub fn verify(&self, jar: &CookieJar, submitted: &str) -> bool {
        let Some(c) = jar.get(self.cookie_name()) else {
            return false;
        };
        let expected = self.sign(c.value(), Self::session(jar));
        bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
    }
}
