//! The pages outside the manuals' journeys, walked in the browser so that every one
//! of them fits a phone and a desktop and passes axe-core (`seen`): a third-party
//! portal's consent and the choice of account, removing the last factor from My
//! Profile, and a forgotten password; in Dutch and English.

use super::driver::{assert_scripts_off, click, fill, wait_path, wait_text};
use super::journey::Journey;
use super::seen::look;
use crate::kit::{Backend, PASSWORD};
use fantoccini::{Client, Locator};
use tweestap_domain::account::Role;
use tweestap_domain::oidc::client::ClientOptions;

crate::on_both_backends!(consent_account_choice_removal_and_a_forgotten_password,);

const CALLBACK: &str = "http://127.0.0.1:9/cb";
/// RFC 7636's example: the S256 challenge of its verifier.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Waits for the browser to be sent to the portal's callback (which does not answer:
/// the address is enough) and returns that address.
async fn sent_back(c: &Client) -> String {
    for _ in 0..200 {
        let url = c.current_url().await.expect("url").to_string();
        if url.starts_with(CALLBACK) {
            return url;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "never sent back to the portal; at {}",
        c.current_url().await.expect("url")
    );
}

async fn consent_account_choice_removal_and_a_forgotten_password(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    assert_scripts_off(c).await;
    j.add("an@example.be", "An Peeters", Role::User).await;
    let client = j
        .server
        .app
        .add_client(
            "Extern Loket",
            &[CALLBACK.to_owned()],
            true,
            Default::default(),
            ClientOptions {
                third_party: true,
                ..Default::default()
            },
        )
        .await
        .expect("client")
        .client;
    let authorize = |extra: &str| {
        format!(
            "/oidc/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20email&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
            client.id,
            "http%3A%2F%2F127.0.0.1%3A9%2Fcb",
        )
    };
    j.set_up_app("an@example.be").await;

    // Dutch: the portal asks for the address once.
    j.goto(&authorize("")).await;
    wait_path(c, |p| p == "/oidc/consent", "the consent page").await;
    wait_text(c, "Extern Loket wil je gegevens gebruiken").await;
    click(c, "button[value=allow]").await;
    let back = sent_back(c).await;
    assert!(
        back.contains("code=") && back.contains("state=s1"),
        "{back}"
    );

    // English: which account, then My Profile lists the portal.
    j.goto("/lang/en?next=/account").await;
    wait_path(c, |p| p == "/account", "/account").await;
    j.goto(&authorize("&prompt=select_account")).await;
    wait_path(c, |p| p == "/oidc/select-account", "the account choice").await;
    wait_text(c, "Which account do you want to continue with?").await;
    click(c, "button[value=continue]").await;
    let back = sent_back(c).await;
    assert!(back.contains("code="), "{back}");
    j.goto("/account").await;
    wait_path(c, |p| p == "/account", "/account").await;
    wait_text(c, "Extern Loket").await;

    // A phone as well; removing it names the number and leaves the app.
    j.goto("/account/2fa/sms").await;
    wait_path(c, |p| p == "/account/2fa/sms", "/account/2fa/sms").await;
    fill(c, "#password", PASSWORD).await;
    fill(c, "#phone", "0470 12 34 56").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p.starts_with("/account/2fa/sms/"), "the SMS code").await;
    // In English: the SMS is too.
    let sms = crate::kit::sms::nth_sms_in(&j.data_dir(), 1).await;
    assert!(sms.contains("is your code for tweestap"), "{sms}");
    fill(c, "#code", &crate::kit::sms::sms_code_in(&sms)).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/account", "/account").await;
    let links = c
        .find_all(Locator::Css(
            "a[href^='/account/factors/'][href$='/remove']",
        ))
        .await
        .expect("the remove links");
    let mut names = Vec::new();
    for l in &links {
        let name = l
            .prop("textContent")
            .await
            .expect("text")
            .unwrap_or_default();
        names.push(name.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let phone = names
        .iter()
        .position(|n| n == "Remove: SMS to +32 4•• •• •• 56")
        .unwrap_or_else(|| panic!("each link says what it removes (to screen readers): {names:?}"));
    assert!(
        names.contains(&"Remove: Authenticator app".to_owned()),
        "{names:?}"
    );
    links[phone].click().await.expect("click");
    wait_path(c, |p| p.ends_with("/remove"), "the removal page").await;
    wait_text(
        c,
        "Enter your password to remove the mobile number +32 4•• •• •• 56",
    )
    .await;
    let button = c
        .find(Locator::Css("form.card button[type=submit]"))
        .await
        .expect("the button");
    assert_eq!(
        button.attr("class").await.expect("class").as_deref(),
        Some("danger")
    );
    assert!(
        c.find(Locator::Css("#confirm_last")).await.is_err(),
        "not the last method"
    );
    fill(c, "#password", PASSWORD).await;
    button.click().await.expect("remove");
    wait_path(c, |p| p == "/account", "/account").await;
    wait_text(c, "The mobile number was removed.").await;

    // Removing the only factor: a warning, a tick, the password.
    click(c, "a[href^='/account/factors/'][href$='/remove']").await;
    wait_path(
        c,
        |p| p.starts_with("/account/factors/") && p.ends_with("/remove"),
        "the removal page",
    )
    .await;
    wait_text(c, "This is your last verification method").await;
    wait_text(c, "Remove the authenticator app").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "#confirm_last").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/account", "/account").await;
    wait_text(c, "The authenticator app was removed.").await;

    // A forgotten password, in Dutch again.
    j.goto("/lang/nl-BE?next=/account").await;
    wait_path(c, |p| p == "/account", "/account").await;
    j.sign_out().await;
    click(c, "a[href='/password/forgot']").await;
    wait_path(c, |p| p == "/password/forgot", "/password/forgot").await;
    fill(c, "#email", "an@example.be").await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Als er een account bestaat voor dit adres").await;
    // The same address, another page: looked at as well.
    look(c).await;
    let mail = j.nth_mail("password-reset", 1).await;
    let prefix = format!("{}/password/reset/", j.url);
    let at = mail.find(&prefix).expect("the link") + j.url.len();
    let link: String = mail[at..]
        .chars()
        .take_while(|ch| !ch.is_whitespace())
        .collect();
    j.goto(&link).await;
    wait_path(c, |p| p.starts_with("/password/reset/"), "the reset page").await;
    fill(c, "#password", "een nieuw en lang wachtwoord").await;
    fill(c, "#password2", "een nieuw en lang wachtwoord").await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Je wachtwoord is gewijzigd en je bent overal afgemeld").await;
    look(c).await;
    click(c, "main a[href='/login']").await;
    wait_path(c, |p| p == "/login", "/login").await;
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", "een nieuw en lang wachtwoord").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "signed in with the new password").await;
    // Still off after all these pages, and axe-core's moments with it on.
    assert_scripts_off(c).await;
    j.finish().await;
}
