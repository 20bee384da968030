//! Changing the bank account needs a recent sign-in with a second factor; Loket
//! asks tweestap again with `max_age` and `acr_values`, and checks the answer.

use crate::provider::{loket, Person, Provider, MFA, PWD};
use crate::Browser;
use chrono::TimeDelta;

const PAGE: &str = "/gegevens-wijzigen";

/// Signs `b` in at Loket (the provider answers with its next person).
async fn sign_in(b: &mut Browser, loket: &str) {
    let l = b.open(&format!("{loket}/")).await;
    assert_eq!(l.url, format!("{loket}/"), "{}", l.body);
    assert!(l.body.contains("Welkom, An Peeters"), "{}", l.body);
}

#[tokio::test]
async fn a_fresh_sign_in_with_a_second_factor_goes_straight_to_the_action() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = Browser::new();
    sign_in(&mut b, &loket).await;
    let requests = b.visited.len();

    let l = b.open(&format!("{loket}{PAGE}")).await;
    assert_eq!(l.status, 200);
    assert!(l.body.contains("id=\"sensitive\""), "{}", l.body);
    assert_eq!(b.visited.len(), requests + 1, "no trip to the provider");

    let l = b
        .post(
            &format!("{loket}{PAGE}"),
            &[("iban", "be68 5390 0754 7034")],
        )
        .await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert!(l.body.contains("BE68539007547034"), "{}", l.body);
    let l = b.open(&format!("{loket}/")).await;
    assert!(l.body.contains("BE68539007547034"), "{}", l.body);
}

#[tokio::test]
async fn an_old_sign_in_is_stepped_up_with_max_age_and_acr_values() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = Browser::new();
    sign_in(&mut b, &loket).await;
    let first = p.last_request();
    assert!(!first.contains_key("max_age") && !first.contains_key("acr_values"));

    p.clock.advance(TimeDelta::seconds(301));
    // The form posted from a page that stood open is sent to the step-up first.
    let l = b
        .post(&format!("{loket}{PAGE}"), &[("iban", "BE68539007547034")])
        .await;
    assert_eq!(l.url, format!("{loket}{PAGE}"));
    assert!(l.body.contains("id=\"sensitive\""), "{}", l.body);
    let q = p.last_request();
    assert_eq!(q["max_age"], "300");
    assert_eq!(q["acr_values"], MFA);
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("nonce") && q.contains_key("state"));
    assert_ne!(q["state"], first["state"]);
    assert_ne!(q["nonce"], first["nonce"]);
    // Fresh now: no second trip.
    let n = b.visited.len();
    let l = b.open(&format!("{loket}{PAGE}")).await;
    assert!(l.body.contains("id=\"sensitive\""));
    assert_eq!(b.visited.len(), n + 1);
}

#[tokio::test]
async fn a_password_only_sign_in_is_stepped_up_however_recent() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = Browser::new();
    p.next_person(Person {
        acr: PWD.into(),
        ..Person::new("an", "sessie-1")
    });
    sign_in(&mut b, &loket).await;
    p.next_person(Person::new("an", "sessie-1"));
    let l = b.open(&format!("{loket}{PAGE}")).await;
    assert!(l.body.contains("id=\"sensitive\""), "{}", l.body);
    assert_eq!(p.last_request()["acr_values"], MFA);
}

#[tokio::test]
async fn an_answer_without_the_second_factor_is_refused() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = Browser::new();
    p.next_person(Person {
        acr: PWD.into(),
        ..Person::new("an", "sessie-1")
    });
    sign_in(&mut b, &loket).await;
    // The provider ignores acr_values.
    let l = b.open(&format!("{loket}{PAGE}")).await;
    assert_eq!(l.status, 403);
    assert!(l.body.contains(MFA), "{}", l.body);
    assert!(!l.body.contains("id=\"sensitive\""));
}

#[tokio::test]
async fn an_answer_older_than_max_age_is_refused() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = Browser::new();
    sign_in(&mut b, &loket).await;
    p.clock.advance(TimeDelta::seconds(600));
    // The provider ignores max_age: its sign-in is ten minutes old.
    p.next_person(Person {
        signed_in_ago: TimeDelta::seconds(600),
        ..Person::new("an", "sessie-1")
    });
    let l = b.open(&format!("{loket}{PAGE}")).await;
    assert_eq!(l.status, 403);
    assert!(l.body.contains("niet recent genoeg"), "{}", l.body);
    // Still signed in, but not allowed the action.
    let l = b.open(&format!("{loket}/")).await;
    assert!(l.body.contains("Welkom"), "{}", l.body);
}

#[tokio::test]
async fn a_step_up_as_someone_else_ends_the_session() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = Browser::new();
    sign_in(&mut b, &loket).await;
    p.clock.advance(TimeDelta::seconds(400));
    p.next_person(Person::new("bert", "sessie-2"));
    let l = b.open(&format!("{loket}{PAGE}")).await;
    assert_eq!(l.status, 403);
    assert!(l.body.contains("ander account"), "{}", l.body);
    let n = b.visited.len();
    b.open(&format!("{loket}/")).await;
    assert!(
        b.visited[n..].iter().any(|u| u.ends_with("/login")),
        "{:?}",
        &b.visited[n..]
    );
}

#[tokio::test]
async fn a_visitor_not_signed_in_signs_in_with_max_age_and_lands_on_the_action() {
    let p = Provider::start().await;
    let (loket, _h) = loket(&p, 300).await;
    let mut b = Browser::new();
    let l = b.open(&format!("{loket}{PAGE}")).await;
    assert_eq!(l.url, format!("{loket}{PAGE}"));
    assert!(l.body.contains("id=\"sensitive\""), "{}", l.body);
    assert_eq!(p.last_request()["max_age"], "300");
    assert_eq!(p.last_request()["acr_values"], MFA);
}
