//! The support account page shows what a reset takes away (the app, the SMS number
//! masked, when each was last used) and the reset asks for a confirmation that says
//! exactly what stops working, behind a button styled as destructive.

use super::{account_id, add, audit, page, signed_in, submit, REASON};
use crate::kit::sms::{nth_sms_in, sms_code_in};
use crate::kit::{csrf_of, Backend, TestApp, PASSWORD};
use serde_json::json;
use tweestap_domain::account::Role;
use tweestap_domain::clock::Clock;
use tweestap_web::dates::{day, day_time, DEFAULT_TIME_ZONE};
use tweestap_web::i18n::Lang;

crate::on_both_backends!(
    support_sees_the_methods_and_confirms_the_reset,
    the_count_of_accounts_found_is_singular_or_plural,
);

async fn support_sees_the_methods_and_confirms_the_reset(backend: Backend) {
    let app = TestApp::start(backend).await;
    add(&app, "an@example.be", "An Peeters", Role::User).await;
    add(&app, "sam@example.be", "Sam Helpdesk", Role::Support).await;
    // An has an app and a Belgian phone.
    let an = app.client();
    let (_, _secret) = an.enroll(&app, "an@example.be").await;
    let body = json!({ "phone": "0470 12 34 56", "password": PASSWORD });
    let r = an.post("/api/v1/me/factors/sms", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let sms_id = r.body["id"].as_str().expect("id").to_owned();
    let code = sms_code_in(&nth_sms_in(app.dir.path(), 1).await);
    let confirm = format!("/api/v1/me/factors/sms/{sms_id}/confirm");
    let r = an.post(&confirm, json!({ "code": code })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let added = app.clock.now();

    let sam = signed_in(&app, "sam@example.be").await;
    let id = account_id(&sam, "an@example.be").await;
    let path = format!("/support/accounts/{id}");
    let (s, _, html) = page(&sam, &path).await;
    assert_eq!(s, 200);
    let methods = html
        .split("id=\"methods\"")
        .nth(1)
        .expect("the methods section")
        .split("</section>")
        .next()
        .expect("its end");
    assert!(methods.contains("Authenticator-app"), "{methods}");
    assert!(
        methods.contains("Sms naar +32 4•• •• •• 56"),
        "the number masked: {methods}"
    );
    assert!(!html.contains("470 12 34"), "never the whole number");
    let when = day(Lang::Nl, DEFAULT_TIME_ZONE, added);
    assert!(
        methods.contains(&format!("toegevoegd op {when}")),
        "{methods}"
    );
    assert!(methods.contains("Geen onthouden browsers."), "{methods}");
    assert!(
        html.contains("class=\"danger\">Verder: controleren en bevestigen</button>"),
        "{html}"
    );

    // The first step only shows what would happen.
    let action = format!("{path}/reset-2fa");
    let (s, _, html) = submit(&sam, &path, &action, &[("reason", REASON)]).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("Tweestapsverificatie van an@example.be opnieuw instellen?"));
    let stops = html
        .split("id=\"stops\"")
        .nth(1)
        .expect("what stops working")
        .split("</ul>")
        .next()
        .expect("its end");
    for what in [
        "Authenticator-app",
        "Sms naar +32 4•• •• •• 56",
        "De herstelcodes.",
        "overal afgemeld",
    ] {
        assert!(stops.contains(what), "{what}: {stops}");
    }
    assert!(html.contains(REASON), "the reason shown again");
    assert!(html.contains("name=\"confirm\" value=\"yes\""));
    assert!(html.contains("class=\"danger\" id=\"confirm-reset\">Ja, nu opnieuw instellen"));
    assert!(html.contains(&format!("href=\"{path}\"")), "a way back");
    let log = audit(&app).await;
    assert!(
        !log.iter().any(|(e, _, _)| e == "two_factor_reset"),
        "nothing reset before the confirmation"
    );
    let me = an.get("/api/v1/me").await;
    assert_eq!(me.status, 200, "An is still signed in");

    // The confirmation, from the confirmation page's own form.
    let csrf = csrf_of(&html);
    let r = sam
        .http
        .post(format!("{}{action}", sam.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("reason", REASON),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 303);
    let (_, _, html) = page(&sam, &format!("{path}?done=reset")).await;
    assert!(html.contains("Tweestapsverificatie is opnieuw ingesteld"));
    assert!(
        html.contains("Geen: tweestapsverificatie staat uit."),
        "{html}"
    );
    assert_eq!(an.get("/api/v1/me").await.status, 401);

    // In English too, with the time of the last use.
    let en = app.client_in(Some("en"));
    add(&app, "bo@example.be", "Bo", Role::User).await;
    let bo = app.client();
    let (_, secret) = bo.enroll(&app, "bo@example.be").await;
    bo.post("/api/v1/logout", json!({})).await;
    app.next_step();
    let fresh = app.client();
    fresh.login("bo@example.be", PASSWORD).await;
    let used = app.clock.now();
    let r = fresh
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(en.login("sam@example.be", PASSWORD).await.status, 200);
    let bo_id = account_id(&en, "bo@example.be").await;
    let bo_path = format!("/support/accounts/{bo_id}");
    let (_, _, html) = page(&en, &bo_path).await;
    let last = day_time(Lang::En, DEFAULT_TIME_ZONE, used);
    assert!(html.contains("Authenticator app"), "{html}");
    assert!(
        html.contains(&format!("last used {last}")),
        "{last}: {html}"
    );
    assert!(last.contains(" at "), "{last}");
    let (s, _, html) = submit(
        &en,
        &bo_path,
        &format!("{bo_path}/reset-2fa"),
        &[("reason", REASON)],
    )
    .await;
    assert_eq!(s, 200);
    assert!(html.contains("Reset two-step verification of bo@example.be?"));
    assert!(html.contains("This stops working at once") && html.contains("Yes, reset now"));
}

async fn the_count_of_accounts_found_is_singular_or_plural(backend: Backend) {
    let app = TestApp::start(backend).await;
    add(&app, "an@example.be", "An Peeters", Role::User).await;
    add(&app, "sam@example.be", "Sam Helpdesk", Role::Support).await;
    let sam = signed_in(&app, "sam@example.be").await;
    let (_, _, html) = page(&sam, "/support?q=peeters").await;
    assert!(html.contains("1 account gevonden."), "{html}");
    let (_, _, html) = page(&sam, "/support").await;
    assert!(html.contains("2 accounts gevonden."), "{html}");
    assert!(!html.contains("account(s)"));
    assert!(
        html.contains("class=\"table-scroll\" role=\"region\""),
        "the table scrolls in its own box"
    );
    let (_, _, html) = page(&sam, "/support?q=nobody").await;
    assert!(html.contains("0 accounts gevonden."), "{html}");
    let en = app.client_in(Some("en"));
    assert_eq!(en.login("sam@example.be", PASSWORD).await.status, 200);
    let (_, _, html) = page(&en, "/support?q=peeters").await;
    assert!(html.contains("1 account found."), "{html}");
    let (_, _, html) = page(&en, "/support").await;
    assert!(html.contains("2 accounts found."), "{html}");
}
