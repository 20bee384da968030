//! The roll-out console in the browser, JavaScript off: the step-up, the dashboard
//! with its chart and table, a new account with an invitation, a CSV file imported
//! (a dry run first), the policy changed (and a refused value named), the audit
//! log. Every page is checked at 390 and 1280 px and by axe-core (`seen`).

use super::driver::{body_text, click, fill, path, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::Backend;
use fantoccini::{Client, Locator};
use tweestap_domain::account::Role;

crate::on_both_backends!(an_administrator_rolls_out_two_step_verification,);

async fn select(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(&format!("{css} option[value='{value}']")))
        .await
        .unwrap_or_else(|e| panic!("{css} {value}: {e}"))
        .click()
        .await
        .expect("choose");
}

async fn set(c: &Client, css: &str, value: &str) {
    let field = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

async fn an_administrator_rolls_out_two_step_verification(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("beheer@example.be", "Bea Beheer", Role::Admin).await;
    for i in 0..3 {
        j.add(
            &format!("loket{i}@example.be"),
            &format!("Loket {i}"),
            Role::User,
        )
        .await;
    }
    let (key, _) = j.set_up_app("beheer@example.be").await;
    // The header offers the console to administrators.
    j.goto("/").await;
    wait_path(c, |p| p == "/", "/").await;
    click(c, "nav.user a[href='/admin']").await;

    // Set up without a code at sign-in: the console asks for one first.
    wait_path(c, |p| p == "/admin/step-up", "the step-up").await;
    fill(c, "#code", "000000").await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Die code klopt niet").await;
    super::seen::look(c).await;
    crate::kit::totp::next_step(&j.clock);
    fill(c, "#code", &j.code(&key)).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/admin", "the dashboard").await;

    // The dashboard: counts per role, the chart and its table, who still has none.
    let text = body_text(c).await;
    assert!(text.contains("Hoe ver de uitrol staat"), "{text}");
    assert!(text.contains("loket0@example.be"), "{text}");
    let chart = c
        .find(Locator::Css("figure.chart svg[role=img]"))
        .await
        .expect("the chart");
    assert!(chart.find(Locator::Css("polyline.line-with")).await.is_ok());
    assert!(c
        .find(Locator::Css("figure.chart + details table"))
        .await
        .is_ok());

    // A new account with an invitation.
    click(c, "nav.admin-nav a[href='/admin/accounts']").await;
    wait_path(c, |p| p == "/admin/accounts", "the accounts").await;
    fill(c, "#new-email", "nieuw@example.be").await;
    fill(c, "#new-name", "Nina Nieuw").await;
    click(c, "#new form button[type=submit]").await;
    wait_path(c, |p| p.starts_with("/admin/accounts/"), "the new account").await;
    wait_text(c, "De uitnodiging is gemaild.").await;
    let mail = j.nth_mail("invite", 1).await;
    assert!(mail.contains("Kies eerst een wachtwoord"), "{mail}");

    // The same address again: a clear message, what was typed kept.
    j.goto("/admin/accounts").await;
    wait_path(c, |p| p == "/admin/accounts", "the accounts").await;
    fill(c, "#new-email", "nieuw@example.be").await;
    click(c, "#new form button[type=submit]").await;
    wait_text(c, "Er bestaat al een account met dit e-mailadres.").await;
    super::seen::look(c).await;

    // Filter: those without two-step verification.
    j.goto("/admin/accounts").await;
    wait_path(c, |p| p == "/admin/accounts", "the accounts").await;
    select(c, "#two_factor", "none").await;
    click(c, "form.filters button[type=submit]").await;
    wait_text(c, "loket2@example.be").await;
    assert!(!body_text(c).await.contains("beheer@example.be"));

    // Import a file: a dry run first, then for real.
    let file = j.dir.path().join("mensen.csv");
    std::fs::write(
        &file,
        "email,name,role\nanna@example.be,Anna,user\nbert@example.be,Bert,support\nfout-adres,Fout,user\n",
    )
    .expect("csv");
    click(c, "nav.admin-nav a[href='/admin/import']").await;
    wait_path(c, |p| p == "/admin/import", "the import").await;
    c.find(Locator::Css("#file"))
        .await
        .expect("file field")
        .send_keys(&file.display().to_string())
        .await
        .expect("choose the file");
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Regels met een fout").await;
    let text = body_text(c).await;
    assert!(
        text.contains("Er is niets geïmporteerd") || text.contains("Gecontroleerd"),
        "{text}"
    );
    super::seen::look(c).await;
    let line = c
        .find(Locator::Css("table.import-errors tbody th"))
        .await
        .expect("the bad line")
        .text()
        .await
        .expect("text");
    assert_eq!(line, "4", "the header is line 1");
    // The good lines, for real.
    c.find(Locator::Css("#file"))
        .await
        .expect("file field")
        .send_keys(&file.display().to_string())
        .await
        .expect("choose the file");
    click(c, "#dry_run").await;
    click(c, "#keep_going").await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Geïmporteerd").await;
    assert_eq!(
        c.find(Locator::Css("#created"))
            .await
            .expect("count")
            .text()
            .await
            .expect("text"),
        "2"
    );
    j.goto("/admin/accounts?q=bert").await;
    wait_text(c, "bert@example.be").await;

    // The policy: users must from a date; a refused value is named.
    click(c, "nav.admin-nav a[href='/admin/policy']").await;
    wait_path(c, |p| p == "/admin/policy", "the policy").await;
    select(c, "#user_two_factor", "required").await;
    set(c, "#remember_device_days", "3").await;
    set(c, "#reminder_days", "30, nul").await;
    click(c, "form.policy button[type=submit]").await;
    wait_text(c, "Niet opgeslagen: reminder_days").await;
    super::seen::look(c).await;
    set(c, "#reminder_days", "30, 14, 7, 1").await;
    click(c, "form.policy button[type=submit]").await;
    wait_text(c, "Het beleid is opgeslagen").await;
    super::seen::look(c).await;
    assert_eq!(j.server.app.policy().remember_device_days, 3);
    assert_eq!(
        j.server.app.policy().roles.user.two_factor,
        tweestap_domain::policy::TwoFactorMode::Required
    );

    // The audit log shows what was done, filtered by event.
    click(c, "nav.admin-nav a[href='/admin/audit']").await;
    wait_path(c, |p| p == "/admin/audit", "the audit log").await;
    fill(c, "#event", "policy_changed").await;
    click(c, "form.filters button[type=submit]").await;
    wait_text(c, "policy_changed").await;
    assert!(body_text(c).await.contains("beheer@example.be"));
    assert!(c
        .find(Locator::Css("a[href^='/admin/audit.csv']"))
        .await
        .is_ok());

    // In English too.
    j.goto("/lang/en?next=/admin").await;
    wait_path(c, |p| p == "/admin", "the dashboard").await;
    wait_text(c, "How far the roll-out has come").await;
    assert!(path(c).await == "/admin");

    // Nina's invitation (in this browser, which signs the administrator out):
    // her first password, then she signs in.
    j.goto("/lang/nl-BE?next=/login").await;
    let at = mail.find("/password/reset/").expect("the link");
    let link: String = mail[at..]
        .chars()
        .take_while(|ch| !ch.is_whitespace())
        .collect();
    j.goto(&link).await;
    wait_path(c, |p| p.starts_with("/password/reset/"), "the invitation").await;
    wait_text(c, "Kies je wachtwoord").await;
    fill(c, "#password", "Zonnebloem-tuin-2027").await;
    fill(c, "#password2", "Zonnebloem-tuin-2027").await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Je wachtwoord is ingesteld").await;
    super::seen::look(c).await;
    click(c, "main a[href='/login']").await;
    wait_path(c, |p| p == "/login", "/login").await;
    fill(c, "#email", "nieuw@example.be").await;
    fill(c, "#password", "Zonnebloem-tuin-2027").await;
    click(c, "form.card button[type=submit]").await;
    // Users must use two-step verification now (the policy above): set-up first.
    wait_path(c, |p| p == "/account/2fa/enable", "the set-up").await;
    j.finish().await;
}
