//! Sign-in pages: password, then code.

use super::step::{checked, form_page, onward, posted_step, restart, sign_in_start, Leave, Visit};
use crate::error::{OnPage, PageError};
use crate::extract::{current_session, device_token, session_token, set_device, Ctx};
use crate::i18n::Lang;
use crate::AppState;
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::factor::FactorKind;
use tweestap_domain::oidc::authorize::SignInDemand;
use tweestap_domain::service::{Browser, CodeStepStanding, LoginOutcome};
use tweestap_domain::session::SessionStage;
use tweestap_domain::token::Token;
use tweestap_domain::Error;

/// Where signing in starts, and where it goes back to once its session has ended.
const START: &str = "/login";

#[derive(Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in (forward-auth); followed only to allowed hosts.
    rd: Option<String>,
    /// From an OIDC authorization request: prefills the address.
    login_hint: Option<String>,
    /// From an OIDC request, shown even when signed in: `login` (the password and
    /// the second factor, whatever the browser remembers) or `select_account`
    /// (anyone may sign in).
    prompt: Option<String>,
    /// `1`: the portal asks for two-step verification; someone without it sets it
    /// up first.
    mfa: Option<String>,
    /// `1`: just signed out; the page says so.
    signed_out: Option<String>,
    /// A passkey that was refused: the page says why.
    passkey: Option<String>,
}

/// Where signing out leads: the sign-in page, saying "You are signed out".
const SIGNED_OUT: &str = "/login?signed_out=1";

/// What an OIDC request asked of this sign-in, from the page's query or its form.
fn demand(prompt: Option<&str>, mfa: Option<&str>) -> SignInDemand {
    SignInDemand {
        skip_remembered_device: prompt == Some("login"),
        require_second_factor: mfa == Some("1"),
    }
}

pub async fn form(Visit { state, ctx, jar }: Visit, Query(q): Query<LoginQuery>) -> Response {
    let jar = crate::forward_auth::remember_return(&state, jar, q.rd.as_deref());
    let prompt = q
        .prompt
        .as_deref()
        .filter(|p| matches!(*p, "login" | "select_account"));
    if let (None, Ok(Some(s))) = (prompt, current_session(&state, &jar).await) {
        if s.session.stage == SessionStage::Authenticated {
            // "/" follows a pending return URL.
            return (jar, Redirect::to("/")).into_response();
        }
    }
    let d = demand(prompt, q.mfa.as_deref());
    let extra = minijinja::context! {
        email => q.login_hint.as_deref().unwrap_or_default(),
        prompt => prompt.unwrap_or_default(),
        mfa => d.require_second_factor,
        reauth => d.skip_remembered_device, signed_out => q.signed_out.as_deref() == Some("1"),
        passkeys => state.app.passkeys_available(),
        error => super::passkey::problem_text(ctx.lang, q.passkey.as_deref()),
    };
    form_page(&state, &ctx, jar, StatusCode::OK, "login.html", extra)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: zeroize::Zeroizing<String>,
    prompt: Option<String>,
    mfa: Option<String>,
}

pub async fn submit(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let previous = sign_in_start(&state, &jar, &f.csrf, ctx.lang).await?;
    let device = device_token(&jar);
    let d = demand(f.prompt.as_deref(), f.mfa.as_deref());
    let browser = Browser {
        device: device.as_deref(),
        signed_in: previous.as_ref(),
        demand: d,
    };
    let outcome = state
        .app
        .sign_in(&f.email, &f.password, browser, &ctx.req)
        .await;
    let (token, to) = match outcome {
        Ok(LoginOutcome::Authenticated(token)) => (token, "/"),
        Ok(LoginOutcome::EnrollmentRequired(token)) => (token, "/account/2fa/enable"),
        Ok(LoginOutcome::SecondFactor { token, .. }) => (token, "/login/code"),
        Err(Error::InvalidCredentials) => {
            let extra = minijinja::context! {
                email => f.email.trim(), error => ctx.lang.t("login_failed"),
                prompt => f.prompt.as_deref().unwrap_or_default(),
                mfa => d.require_second_factor, reauth => d.skip_remembered_device,
                passkeys => state.app.passkeys_available(),
            };
            let status = StatusCode::UNAUTHORIZED;
            return Ok(form_page(&state, &ctx, jar, status, "login.html", extra));
        }
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    Ok(onward(&state, jar, &token, to))
}

/// The half-finished sign-in (password right, code still due) of this browser.
async fn pending(
    state: &AppState,
    jar: &CookieJar,
) -> Option<tweestap_domain::service::SessionInfo> {
    current_session(state, jar)
        .await
        .ok()
        .flatten()
        .filter(|s| s.session.stage == SessionStage::SecondFactor)
}

#[derive(Deserialize)]
pub struct CodeQuery {
    from: Option<String>,
    /// A passkey that was refused: the page says why.
    passkey: Option<String>,
}

pub async fn code_form(
    Visit { state, ctx, jar }: Visit,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let Some(info) = pending(&state, &jar).await else {
        return Ok(Redirect::to(START).into_response());
    };
    let token = session_token(&jar)
        .ok_or(Error::Unauthenticated)
        .on_page(ctx.lang)?;
    let methods = state
        .app
        .active_methods(info.account.id)
        .await
        .on_page(ctx.lang)?;
    let mut view = CodeView::default();
    // Came through "secure your account now" with two-step verification already on.
    if q.from.as_deref() == Some("secure") {
        view.notice = Some(ctx.lang.t("secure_has_factor").to_owned());
    }
    view.error = super::passkey::problem_text(ctx.lang, q.passkey.as_deref()).map(str::to_owned);
    let mut status = StatusCode::OK;
    if let Some(seconds) = state
        .app
        .code_step_standing(&token)
        .await
        .on_page(ctx.lang)?
        .retry_after
    {
        view.locked(&state, ctx.lang, seconds);
    } else if methods == [FactorKind::Sms] {
        // SMS is the only way: the first code goes out by itself, once.
        match state.app.first_sign_in_sms(&token, &ctx.req).await {
            Ok(Some(to)) => {
                view.notice = Some(ctx.lang.t("sms_sent_to").replace("{to}", &to));
                view.sms_sent = true;
            }
            Ok(None) => view.sms_sent = true,
            Err(e @ (Error::SmsRefused(_) | Error::SmsUnavailable | Error::TooManyRequests)) => {
                (status, view.error) = sms_refused(&state, &token, &ctx, &e, &methods).await;
                view.sms_blocked = !matches!(e, Error::SmsUnavailable);
            }
            Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
        }
    } else {
        view.sms_sent = state.app.sign_in_sms_sent(&token).await.on_page(ctx.lang)?;
    }
    Ok(code_page(&state, &ctx, jar, &methods, status, view))
}

/// The methods of the account whose code is due (none when the sign-in has ended).
async fn methods_of(state: &AppState, jar: &CookieJar) -> Vec<FactorKind> {
    match pending(state, jar).await {
        Some(info) => state
            .app
            .active_methods(info.account.id)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

/// What the code step shows besides its form.
#[derive(Default)]
struct CodeView {
    notice: Option<String>,
    error: Option<String>,
    /// The app's code is locked for now: the ways forward are listed.
    locked: bool,
    /// An SMS went out in this sign-in: the button sends another.
    sms_sent: bool,
    /// No SMS can be sent now: the button is disabled.
    sms_blocked: bool,
}

impl CodeView {
    /// The code step is locked for `seconds` more.
    fn locked(&mut self, state: &AppState, lang: Lang, seconds: i64) {
        self.error = Some(code_locked_text(state, lang, seconds));
        self.locked = true;
    }
}

/// "In 12 minutes": a wait in whole minutes, rounded up.
pub(crate) fn in_minutes(lang: Lang, seconds: i64) -> String {
    let minutes = (seconds.max(1) + 59) / 60;
    if minutes == 1 {
        lang.t("in_minutes_one").to_owned()
    } else {
        lang.t("in_minutes_many")
            .replace("{count}", &minutes.to_string())
    }
}

/// "om 16:45 (over 12 minuten)": when a wait of `seconds` ends, as the time of day
/// in the configured zone (rounded up to the minute, so it has surely ended by then)
/// and in whole minutes.
pub(crate) fn when(state: &AppState, lang: Lang, seconds: i64) -> String {
    let until = state.app.now() + chrono::Duration::seconds(seconds.max(1));
    let past_minute = i64::from(chrono::Timelike::second(&until));
    let until = until + chrono::Duration::seconds((60 - past_minute) % 60);
    lang.t("when_at")
        .replace(
            "{time}",
            &crate::dates::time(state.settings.time_zone.0, until),
        )
        .replace("{in}", &in_minutes(lang, seconds))
}

fn code_locked_text(state: &AppState, lang: Lang, seconds: i64) -> String {
    lang.t("code_locked")
        .replace("{when}", &when(state, lang, seconds))
}

/// The text for a wrong code, with the tries left once two or fewer remain.
fn wrong_code_text(lang: Lang, wrong: &str, tries_left: u32) -> String {
    let base = lang.t(wrong);
    match tries_left {
        1 => format!("{base} {}", lang.t("code_tries_left_one")),
        2 => format!(
            "{base} {}",
            lang.t("code_tries_left_many").replace("{count}", "2")
        ),
        _ => base.to_owned(),
    }
}

/// The status and text for an SMS that was not sent at the code step: the text
/// says when a new one can be asked for, and what else works for this person.
async fn sms_refused(
    state: &AppState,
    token: &Token,
    ctx: &Ctx,
    e: &Error,
    methods: &[FactorKind],
) -> (StatusCode, Option<String>) {
    let status = if matches!(e, Error::SmsUnavailable) {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    let has_app = methods.contains(&FactorKind::Totp);
    let free_at = match e {
        Error::SmsRefused(_) => state
            .app
            .sign_in_sms_free_again_in(token, &ctx.req)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let at = super::account::SmsWhere::SignIn { has_app };
    let text = super::account::sms_problem_text(state, ctx.lang, e, at, free_at);
    (status, Some(text))
}

/// The code step, offering the methods the account has (the app's code, an SMS).
fn code_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    methods: &[FactorKind],
    status: StatusCode,
    view: CodeView,
) -> Response {
    let has = |k| methods.contains(&k);
    let extra = minijinja::context! {
        notice => view.notice, error => view.error, remember_days => remember_days(state),
        app => has(FactorKind::Totp), sms => has(FactorKind::Sms), locked => view.locked,
        passkey => has(FactorKind::Passkey) && state.app.passkeys_available(),
        sms_sent => view.sms_sent, sms_blocked => view.sms_blocked,
    };
    form_page(state, ctx, jar, status, "code.html", extra)
}

pub async fn send_sms(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<CodeForm>,
) -> Result<Response, Leave> {
    let token = posted_step(&state, &jar, &f.csrf, ctx.lang, START)?;
    let methods = methods_of(&state, &jar).await;
    let mut view = CodeView::default();
    let status = match state.app.send_sign_in_sms(&token, &ctx.req).await {
        Ok(to) => {
            view.notice = Some(ctx.lang.t("sms_sent_to").replace("{to}", &to));
            view.sms_sent = true;
            StatusCode::OK
        }
        Err(Error::Unauthenticated) => return Ok(restart(jar, START)),
        Err(e @ (Error::SmsRefused(_) | Error::SmsUnavailable | Error::TooManyRequests)) => {
            let (status, error) = sms_refused(&state, &token, &ctx, &e, &methods).await;
            view.error = error;
            view.sms_blocked = !matches!(e, Error::SmsUnavailable);
            view.sms_sent = state.app.sign_in_sms_sent(&token).await.unwrap_or(false);
            status
        }
        Err(e) => return Err(PageError::from_domain(e, ctx.lang).into()),
    };
    Ok(code_page(&state, &ctx, jar, &methods, status, view))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: zeroize::Zeroizing<String>,
    /// "Remember this device" checked.
    remember: Option<String>,
}

fn remember_days(state: &AppState) -> i64 {
    state.app.settings().remember_device.num_days().max(1)
}

/// After a passed code step: the session cookie, and the device cookie when asked.
async fn signed_in_response(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    new: &Token,
    remember: bool,
) -> Result<Response, Leave> {
    let jar = if remember {
        let device = state
            .app
            .remember_device(new, &ctx.req)
            .await
            .on_page(ctx.lang)?;
        let secure = state.settings.secure_cookies;
        set_device(jar, &device, secure, remember_days(state))
    } else {
        jar
    };
    Ok(onward(state, jar, new, "/"))
}

/// A code the step refused: the status and the message (`wrong` names the text for a
/// wrong code, followed by the tries left once two or fewer remain); any other error
/// is the error page. The flag says the code step is locked now.
async fn refused(
    state: &AppState,
    token: &Token,
    e: Error,
    wrong: &'static str,
    lang: Lang,
) -> Result<(StatusCode, String, bool), PageError> {
    match e {
        Error::InvalidCode => {
            let standing = state.app.code_step_standing(token).await.on_page(lang)?;
            Ok(wrong_code(state, standing, wrong, lang))
        }
        Error::TooManyAttempts { retry_after } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            code_locked_text(state, lang, retry_after),
            true,
        )),
        e => Err(PageError::from_domain(e, lang)),
    }
}

/// [`refused`] for a wrong code whose standing is known.
fn wrong_code(
    state: &AppState,
    standing: CodeStepStanding,
    wrong: &'static str,
    lang: Lang,
) -> (StatusCode, String, bool) {
    if let Some(seconds) = standing.retry_after {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            code_locked_text(state, lang, seconds),
            true,
        );
    }
    let text = wrong_code_text(lang, wrong, standing.tries_left);
    (StatusCode::UNAUTHORIZED, text, false)
}

pub async fn code_submit(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<CodeForm>,
) -> Result<Response, Leave> {
    let token = posted_step(&state, &jar, &f.csrf, ctx.lang, START)?;
    let (status, error, locked) = match state.app.take_code_step(&token, &f.code, &ctx.req).await {
        Ok(Ok(new)) => {
            let remember = f.remember.is_some();
            return signed_in_response(&state, &ctx, jar, &new, remember).await;
        }
        Ok(Err(standing)) => wrong_code(&state, standing, "code_failed", ctx.lang),
        Err(Error::Unauthenticated) => return Ok(restart(jar, START)),
        Err(e) => refused(&state, &token, e, "code_failed", ctx.lang).await?,
    };
    let methods = methods_of(&state, &jar).await;
    let view = CodeView {
        error: Some(error),
        locked,
        sms_sent: state.app.sign_in_sms_sent(&token).await.unwrap_or(false),
        ..CodeView::default()
    };
    Ok(code_page(&state, &ctx, jar, &methods, status, view))
}

pub async fn recovery_form(Visit { state, ctx, jar }: Visit) -> Response {
    if pending(&state, &jar).await.is_none() {
        return Redirect::to(START).into_response();
    }
    let extra = minijinja::context! {};
    form_page(&state, &ctx, jar, StatusCode::OK, "recovery.html", extra)
}

pub async fn recovery_submit(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<CodeForm>,
) -> Result<Response, Leave> {
    let token = posted_step(&state, &jar, &f.csrf, ctx.lang, START)?;
    let (status, error) = match state
        .app
        .verify_recovery_code(&token, &f.code, &ctx.req)
        .await
    {
        Ok(new) => return signed_in_response(&state, &ctx, jar, &new, false).await,
        Err(Error::Unauthenticated) => return Ok(restart(jar, START)),
        // A recovery code works even while the app's code is locked: no lock text.
        Err(Error::InvalidCode) => (
            StatusCode::UNAUTHORIZED,
            ctx.lang.t("recovery_failed").to_owned(),
        ),
        // Too many wrong recovery codes: they have a lock of their own.
        Err(Error::TooManyAttempts { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            ctx.lang
                .t("recovery_locked")
                .replace("{when}", &when(&state, ctx.lang, retry_after)),
        ),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang).into()),
    };
    let extra = minijinja::context! { error => error };
    Ok(form_page(&state, &ctx, jar, status, "recovery.html", extra))
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<LogoutForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    // Cancelling a half-finished sign-in is no signing out: no notice then.
    let signed_in = matches!(
        current_session(&state, &jar).await,
        Ok(Some(s)) if s.session.stage == SessionStage::Authenticated
    );
    if let Some(token) = session_token(&jar) {
        state.app.logout(&token, &ctx.req).await.on_page(ctx.lang)?;
    }
    Ok(restart(jar, if signed_in { SIGNED_OUT } else { START }))
}
