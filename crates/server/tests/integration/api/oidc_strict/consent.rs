//! prompt=none, select_account and consent answered per OIDC Core; a third-party
//! client's consent page (its scopes listed), remembered per person, refusable
//! (access_denied) and revocable in My Profile.

use super::browser::{code, forms, password, send, sign_in_for, visit, HtmlForm, Landing};
use super::*;
use crate::kit::Client;

crate::on_both_backends!(
    prompts_are_answered_per_oidc_core,
    third_party_clients_ask_consent_once_until_it_is_revoked,
    refusing_consent_is_access_denied,
);

/// The page's text without its tags, lowercased.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.to_lowercase()
}

/// Whether a button means no.
fn is_no(form: &HtmlForm, b: usize) -> bool {
    let (name, value, text) = &form.buttons[b];
    let all = format!("{name} {value} {text} {}", form.action).to_lowercase();
    all.split(|c: char| !c.is_alphanumeric()).any(|t| {
        ["no", "nee", "niet", "not", "don"].contains(&t)
            || [
                "deny", "weiger", "refuse", "reject", "cancel", "annule", "decline",
            ]
            .iter()
            .any(|w| t.starts_with(w))
    })
}

/// A consent page for `client_name`: a page (no password, no code) naming the
/// client, with a yes and a no.
fn assert_consent_page(l: &Landing, client_name: &str) {
    assert!(!l.url.contains("/login"), "{}", l.url);
    assert_eq!(
        l.status, 200,
        "not a page: {} {}\n{}",
        l.status, l.url, l.body
    );
    assert!(!l.is_password_page() && !l.is_code_page(), "{}", l.url);
    assert!(
        l.body.contains(client_name),
        "the client is not named:\n{}",
        l.body
    );
    assert!(consent_choice(l, false).is_some(), "no yes:\n{}", l.body);
    assert!(consent_choice(l, true).is_some(), "no no:\n{}", l.body);
}

/// The form and button meaning yes (or no) on a consent page.
fn consent_choice(l: &Landing, no: bool) -> Option<(HtmlForm, usize)> {
    forms(&l.body)
        .into_iter()
        .filter(|f| f.action != "/logout")
        .find_map(|f| {
            let b = (0..f.buttons.len()).find(|&b| is_no(&f, b) == no)?;
            Some((f, b))
        })
}

async fn answer(c: &Client, l: &Landing, no: bool) -> Landing {
    let (f, b) = consent_choice(l, no).expect("a choice");
    send(c, &f, &[], Some(b)).await
}

async fn prompts_are_answered_per_oidc_core(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;

    // Nobody signed in: prompt=none is login_required.
    let fresh = app.client();
    let l = visit(&fresh, &authorize(PORTAL, "openid", "&prompt=none")).await;
    assert_eq!(error_in(&app, PORTAL, &l.url), "login_required");

    let c = app.client();
    sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    // Signed in: prompt=none is a code; with a sign-in too old for max_age, login_required.
    let l = visit(&c, &authorize(PORTAL, "openid", "&prompt=none")).await;
    code_in(&app, PORTAL, &l.url);
    let l = visit(&c, &authorize(PORTAL, "openid", "&prompt=none&max_age=0")).await;
    assert_eq!(error_in(&app, PORTAL, &l.url), "login_required");
    // A third party nobody consented to: consent_required.
    let l = visit(&c, &authorize(EXTERN, "openid email", "&prompt=none")).await;
    assert_eq!(error_in(&app, EXTERN, &l.url), "consent_required");

    // select_account: a page to choose the account on, not a code; choosing the
    // signed-in account then completes.
    let l = visit(&c, &authorize(PORTAL, "openid", "&prompt=select_account")).await;
    assert!(!l.left(&app.url), "select_account answered with {}", l.url);
    assert_eq!(l.status, 200, "{}\n{}", l.url, l.body);
    assert!(l.body.contains("<html"), "not a page");
    assert!(
        l.body.contains(EMAIL),
        "the account to choose is not shown:\n{}",
        l.body
    );
    let choice = forms(&l.body)
        .into_iter()
        .find(|f| f.action != "/logout" && !f.names.iter().any(|n| n == "password"))
        .unwrap_or_else(|| panic!("no choice on the page:\n{}", l.body));
    let back = send(&c, &choice, &[], (!choice.buttons.is_empty()).then_some(0)).await;
    code_in(&app, PORTAL, &back.url);

    // prompt=consent: a consent page, also for a first-party client.
    let l = visit(&c, &authorize(PORTAL, "openid email", "&prompt=consent")).await;
    assert!(!l.left(&app.url), "prompt=consent answered with {}", l.url);
    assert_consent_page(&l, "Portaal");
    let back = answer(&c, &l, false).await;
    code_in(&app, PORTAL, &back.url);

    // prompt=none cannot be combined.
    let l = visit(&c, &authorize(PORTAL, "openid", "&prompt=none%20consent")).await;
    assert_eq!(error_in(&app, PORTAL, &l.url), "invalid_request");
}

/// Sign-in, then the consent page listing the scopes; yes gives a code; the next
/// request goes straight through; revoked in My Profile, it asks again.
async fn third_party_clients_ask_consent_once_until_it_is_revoked(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let url = authorize(EXTERN, "openid email profile", "");
    let page = visit(&c, &url).await;
    let after = password(&c, &page, EMAIL, PASSWORD).await;
    let l = code(&c, &app, &after, &secret, false).await;
    assert!(!l.left(&app.url), "no consent asked: {}", l.url);
    assert_consent_page(&l, "Extern Loket");
    let text = text_of(&l.body);
    assert!(
        text.contains("e-mail") || text.contains("email"),
        "email not listed:\n{text}"
    );
    assert!(
        ["profile", "profiel", "naam", "name"]
            .iter()
            .any(|w| text.contains(w)),
        "profile not listed:\n{text}"
    );
    let back = answer(&c, &l, false).await;
    let t = tokens(&app, EXTERN, &back.url).await;
    let claims = id_claims(&app, &t, "extern").await;
    assert_eq!(claims["email"], EMAIL);

    // Remembered: straight through, also with prompt=none.
    let l = visit(&c, &url).await;
    code_in(&app, EXTERN, &l.url);
    let l = visit(&c, &authorize(EXTERN, "openid email", "&prompt=none")).await;
    code_in(&app, EXTERN, &l.url);
    // More than was allowed: asked again, for the new scope.
    let more = authorize(EXTERN, "openid email profile offline_access", "");
    let l = visit(&c, &more).await;
    assert_consent_page(&l, "Extern Loket");
    let back = answer(&c, &l, false).await;
    let offline = tokens(&app, EXTERN, &back.url).await;
    let rt = offline["refresh_token"]
        .as_str()
        .expect("offline_access")
        .to_owned();

    // My Profile lists the app; revoking it there asks again.
    let profile = visit(&c, "/account").await;
    assert!(
        profile.body.contains("Extern Loket"),
        "not in My Profile:\n{}",
        profile.body
    );
    let revoke = forms(&profile.body)
        .into_iter()
        .find(|f| {
            f.action.starts_with("/account")
                && (f.action.contains("extern") || f.inner.contains("Extern Loket"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no form to revoke Extern Loket on /account:\n{}",
                profile.body
            )
        });
    let after = send(&c, &revoke, &[], (!revoke.buttons.is_empty()).then_some(0)).await;
    assert!(
        after.status < 400,
        "revoking: {} {}",
        after.status,
        after.url
    );
    // What the app held ends with its access.
    let (status, e) = refresh(&app, EXTERN, &rt).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    let profile = visit(&c, "/account").await;
    assert!(
        !profile.body.contains("Extern Loket"),
        "still listed after revoking"
    );
    let l = visit(&c, &authorize(EXTERN, "openid email", "&prompt=none")).await;
    assert_eq!(error_in(&app, EXTERN, &l.url), "consent_required");
    let l = visit(&c, &url).await;
    assert_consent_page(&l, "Extern Loket");

    // Consent is per person: someone else in another browser is asked too.
    let bo_secret = person_named(&app, "bo@example.be").await;
    let bo = app.client();
    let page = visit(&bo, &url).await;
    let after = password(&bo, &page, "bo@example.be", PASSWORD).await;
    let l = code(&bo, &app, &after, &bo_secret, false).await;
    assert_consent_page(&l, "Extern Loket");
}

/// No on the consent page: error=access_denied back to the client (state, iss),
/// and nothing remembered.
async fn refusing_consent_is_access_denied(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let page = visit(&c, &authorize(EXTERN, "openid email", "")).await;
    let after = password(&c, &page, EMAIL, PASSWORD).await;
    let l = code(&c, &app, &after, &secret, false).await;
    assert_consent_page(&l, "Extern Loket");
    let back = answer(&c, &l, true).await;
    assert_eq!(error_in(&app, EXTERN, &back.url), "access_denied");
    let l = visit(&c, &authorize(EXTERN, "openid email", "")).await;
    assert_consent_page(&l, "Extern Loket");
    // A forged yes (no CSRF token) is refused.
    let (f, b) = consent_choice(&l, false).unwrap();
    let mut forged = f.clone();
    forged.fields.retain(|(n, _)| n != "csrf");
    let r = send(&c, &forged, &[], Some(b)).await;
    assert!(
        r.status >= 400 || !r.left(&app.url),
        "a consent without CSRF token: {}",
        r.url
    );
    assert!(param(&r.url, "code").is_none());
}
