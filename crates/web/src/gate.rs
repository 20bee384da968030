//! Who may call a handler, as extractors: one decision about the session, answered
//! as JSON for the API ([`Api`]) and as a redirect for pages ([`Page`]).

use crate::error::{ApiError, ErrorCode, PageError};
use crate::extract::{session_token, Ctx};
use crate::i18n::Lang;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use std::future::Future;
use std::marker::PhantomData;
use tweestap_domain::service::SessionInfo;
use tweestap_domain::session::SessionStage;
use tweestap_domain::store::SecondSteps;
use tweestap_domain::token::Token;
use tweestap_domain::Error;

/// Why a request may not go on.
pub enum Refusal {
    /// No (live) session.
    SignedOut,
    /// The sign-in waits for its second factor.
    CodeDue,
    /// "Secure your account" waits for the mailed code.
    EmailCodeDue,
    /// The session may only set up two-step verification.
    SetUpFirst,
    /// The session could not be looked up.
    Failed(Error),
}

/// How a refusal is answered.
pub trait Answer {
    type Rejection: IntoResponse;
    fn refuse(refusal: Refusal, lang: Lang) -> Self::Rejection;
}

/// The JSON API: 403 `enrollment_required` for an enrolment-only session, else 401.
pub struct Api;

impl Answer for Api {
    type Rejection = ApiError;
    fn refuse(refusal: Refusal, _: Lang) -> ApiError {
        match refusal {
            Refusal::SetUpFirst => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::EnrollmentRequired,
                "two-step verification must be set up first",
            ),
            Refusal::Failed(e) => e.into(),
            Refusal::SignedOut | Refusal::CodeDue | Refusal::EmailCodeDue => {
                Error::Unauthenticated.into()
            }
        }
    }
}

/// Pages: to the page that comes first.
pub struct Page;

impl Answer for Page {
    type Rejection = Response;
    fn refuse(refusal: Refusal, lang: Lang) -> Response {
        let to = match refusal {
            Refusal::SignedOut => "/login",
            Refusal::CodeDue => "/login/code",
            Refusal::EmailCodeDue => "/secure/code",
            Refusal::SetUpFirst => "/account/2fa/enable",
            Refusal::Failed(e) => return PageError::from_domain(e, lang).into_response(),
        };
        Redirect::to(to).into_response()
    }
}

/// What a gate reads with the session, in the same query: nothing more, or the
/// account's second steps (the profile page and `GET /me` show them).
pub trait WithSession: Sized + Send {
    fn read(
        state: &AppState,
        token: &Token,
    ) -> impl Future<Output = Result<Option<(SessionInfo, Self)>, Error>> + Send;
}

impl WithSession for () {
    async fn read(state: &AppState, token: &Token) -> Result<Option<(SessionInfo, ())>, Error> {
        Ok(state.app.session(token).await?.map(|info| (info, ())))
    }
}

impl WithSession for SecondSteps {
    async fn read(
        state: &AppState,
        token: &Token,
    ) -> Result<Option<(SessionInfo, SecondSteps)>, Error> {
        state.app.session_with_steps(token).await
    }
}

async fn judge<T: WithSession>(
    parts: &mut Parts,
    state: &AppState,
    let_enrolling: bool,
) -> Result<(SessionInfo, T), Refusal> {
    let jar = CookieJar::from_headers(&parts.headers);
    let token = session_token(&jar).ok_or(Refusal::SignedOut)?;
    let (info, more) = T::read(state, &token)
        .await
        .map_err(Refusal::Failed)?
        .ok_or(Refusal::SignedOut)?;
    match info.session.stage {
        SessionStage::Authenticated => Ok((info, more)),
        SessionStage::Enrollment if let_enrolling => Ok((info, more)),
        SessionStage::Enrollment => Err(Refusal::SetUpFirst),
        SessionStage::EmailCode => Err(Refusal::EmailCodeDue),
        SessionStage::SecondFactor => Err(Refusal::CodeDue),
    }
}

/// [`judge`], a refusal answered `A`'s way.
async fn gate<A: Answer, T: WithSession>(
    parts: &mut Parts,
    state: &AppState,
    let_enrolling: bool,
) -> Result<(SessionInfo, T), A::Rejection> {
    match judge(parts, state, let_enrolling).await {
        Ok(found) => Ok(found),
        Err(r) => Err(A::refuse(r, lang_of(parts, state).await)),
    }
}

async fn lang_of(parts: &mut Parts, state: &AppState) -> Lang {
    match Ctx::from_request_parts(parts, state).await {
        Ok(ctx) => ctx.lang,
        Err(never) => match never {},
    }
}

/// A fully signed-in caller.
pub struct SignedIn<A = Api>(pub SessionInfo, pub PhantomData<A>);

impl<A: Answer> FromRequestParts<AppState> for SignedIn<A> {
    type Rejection = A::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (info, ()) = gate::<A, ()>(parts, state, false).await?;
        Ok(Self(info, PhantomData))
    }
}

/// [`SignedIn`] with the account's second steps (as `Tweestap::second_steps`
/// answers them), read in the same query as the session.
pub struct SignedInWithSteps<A = Api>(pub SessionInfo, pub SecondSteps, pub PhantomData<A>);

impl<A: Answer> FromRequestParts<AppState> for SignedInWithSteps<A> {
    type Rejection = A::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (info, steps) = gate::<A, SecondSteps>(parts, state, false).await?;
        Ok(Self(info, steps, PhantomData))
    }
}

/// A fully signed-in caller, or one whose session may only set up two-step
/// verification: the set-up journeys and `GET /me`.
pub struct Enrolling<A = Api>(pub SessionInfo, pub PhantomData<A>);

impl<A: Answer> FromRequestParts<AppState> for Enrolling<A> {
    type Rejection = A::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (info, ()) = gate::<A, ()>(parts, state, true).await?;
        Ok(Self(info, PhantomData))
    }
}

/// [`Enrolling`] with the account's second steps, read in the same query as the
/// session.
pub struct EnrollingWithSteps<A = Api>(pub SessionInfo, pub SecondSteps, pub PhantomData<A>);

impl<A: Answer> FromRequestParts<AppState> for EnrollingWithSteps<A> {
    type Rejection = A::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (info, steps) = gate::<A, SecondSteps>(parts, state, true).await?;
        Ok(Self(info, steps, PhantomData))
    }
}

/// An administrator in the roll-out console, with a recent second factor: 401 (or
/// the sign-in) without a full session, 403 `forbidden` for anyone else, and 403
/// `step_up_required` (pages: the step-up page) when the last code is older than
/// `[console] step_up_minutes`.
pub struct Admin<A = Api>(pub SessionInfo, pub PhantomData<A>);

/// How an answer turns a console refusal away.
pub trait ConsoleAnswer: Answer {
    fn console_refusal(e: Error, lang: Lang, path: &str) -> Self::Rejection;
}

impl ConsoleAnswer for Api {
    fn console_refusal(e: Error, _: Lang, _: &str) -> ApiError {
        e.into()
    }
}

impl ConsoleAnswer for Page {
    fn console_refusal(e: Error, lang: Lang, path: &str) -> Response {
        match e {
            Error::StepUpRequired => {
                let next =
                    url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
                Redirect::to(&format!("/admin/step-up?next={next}")).into_response()
            }
            e => PageError::from_domain(e, lang).into_response(),
        }
    }
}

impl<A: ConsoleAnswer> FromRequestParts<AppState> for Admin<A> {
    type Rejection = A::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (info, ()) = gate::<A, ()>(parts, state, false).await?;
        let ctx = match Ctx::from_request_parts(parts, state).await {
            Ok(ctx) => ctx,
            Err(never) => match never {},
        };
        match state.app.console_gate(&info, &ctx.req).await {
            Ok(()) => Ok(Self(info, PhantomData)),
            Err(e) => Err(A::console_refusal(e, ctx.lang, parts.uri.path())),
        }
    }
}
