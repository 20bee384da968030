//! tweestap rotates its signing keys: a token signed with a key Loket has not seen
//! makes it fetch the JWKS again, for ID tokens and logout tokens alike.

use crate::backchannel::{browser_of, deliver, signed_in};
use crate::provider::{loket, Provider};
use crate::Browser;

#[tokio::test]
async fn an_id_token_signed_with_a_new_key_is_accepted() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    p.rotate("k2");
    let mut b = Browser::new();
    let l = b.open(&format!("{loket}/")).await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert!(l.body.contains("Welkom, An Peeters"), "{}", l.body);
}

#[tokio::test]
async fn a_new_signing_key_is_fetched_when_its_kid_is_unknown() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = browser_of(&p, &loket, "an", "sessie-1").await;
    p.rotate("k2");
    let (status, body) = deliver(&loket, &p.logout_token("an", "sessie-1")).await;
    assert_eq!(status, 200, "{body}");
    assert!(!signed_in(&mut b, &loket).await);
}
