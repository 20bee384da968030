//! JSON request bodies: every rejection as our JSON error body, judged before the
//! session (a bad body is 400/413/415 even without a session, as documented).

use crate::error::{ApiError, ErrorCode};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// `axum::Json` with every rejection turned into our JSON error body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(match rej {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedMediaType,
                    "the body must be JSON with Content-Type: application/json",
                ),
                JsonRejection::JsonSyntaxError(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedJson,
                    e.body_text(),
                ),
                JsonRejection::JsonDataError(e) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    e.body_text(),
                ),
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    format!("the body may be at most {} bytes", crate::BODY_LIMIT),
                ),
                other => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    other.body_text(),
                ),
            }),
        }
    }
}

/// A JSON body and who sent it (a [`crate::gate`] extractor such as `SignedIn`).
/// Both are looked at, but a refused body is answered before a refused caller.
pub struct CallerJson<C, T>(pub C, pub T);

impl<C, T> FromRequest<AppState> for CallerJson<C, T>
where
    C: FromRequestParts<AppState, Rejection = ApiError> + Send,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = C::from_request_parts(&mut parts, state).await;
        let ApiJson(body) = ApiJson::from_request(Request::from_parts(parts, body), state).await?;
        Ok(CallerJson(caller?, body))
    }
}

/// An empty JSON object: the body of actions without input (JSON keeps CSRF out).
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct Empty {}
