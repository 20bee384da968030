//! What the OpenAPI document says besides the operations: the title and prose, the
//! session cookie, and the error answers every operation of a kind can give.

use crate::error::{ErrorBody, ErrorCode};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi as _, ToSchema};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "tweestap API",
        version = "1.0.0",
        description = include_str!("about.md"),
    ),
    servers((url = "/api/v1")),
    tags(
        (name = "sign-in", description = "Signing in and out."),
        (name = "password", description = "Forgotten password: a single-use link by mail."),
        (name = "enrollment", description = "The set-up journeys: \"secure your account now\" with a mailed code, and the mailed link to the personal QR page."),
        (name = "account", description = "The signed-in account, its second factors and remembered devices."),
        (name = "support", description = "Support staff and admins: find accounts, reset two-step verification, give a shared mailbox a personal address."),
        (name = "meta", description = "This document."),
    ),
    components(schemas(ErrorCode, ErrorBody)),
    modifiers(&SessionCookie),
)]
struct Base;

pub fn base() -> OpenApi {
    Base::openapi()
}

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "tweestap_session",
                "The session token (43 characters of unpadded base64url), set by `POST /login` and replaced by `POST /login/second-factor`. HttpOnly, SameSite=Lax, Path=/.",
            ))),
        );
    }
}

/// Answers any operation can give.
const ANY: &[(u16, ErrorCode, &str)] = &[
    (
        500,
        ErrorCode::Internal,
        "an unexpected server-side failure; details are only logged.",
    ),
    (
        503,
        ErrorCode::Unavailable,
        "the database could not be reached; try again later (see `retry_after`).",
    ),
];

/// Answers of every operation that takes a JSON body (`ApiJson`, `CallerJson`).
const WITH_BODY: &[(u16, ErrorCode, &str)] = &[
    (400, ErrorCode::MalformedJson, "the body is not valid JSON."),
    (
        400,
        ErrorCode::InvalidRequest,
        "a field is missing or has the wrong type.",
    ),
    (
        413,
        ErrorCode::PayloadTooLarge,
        "the body is larger than 65536 bytes.",
    ),
    (
        415,
        ErrorCode::UnsupportedMediaType,
        "the request lacks `Content-Type: application/json`.",
    ),
];

/// Answers of every operation that needs a session (the `SignedIn` and `Enrolling`
/// extractors).
const WITH_SESSION: &[(u16, ErrorCode, &str)] = &[(
    401,
    ErrorCode::Unauthenticated,
    "no session cookie, an expired session, or a sign-in that is not finished.",
)];

/// The roll-out console's gate (`/admin/...`).
const ADMIN: &[(u16, ErrorCode, &str)] = &[
    (403, ErrorCode::Forbidden, "not an administrator."),
    (
        403,
        ErrorCode::EnrollmentRequired,
        "the session may only set up two-step verification.",
    ),
    (
        403,
        ErrorCode::StepUpRequired,
        "the last code is older than `[console] step_up_minutes`: `POST /admin/step-up` first.",
    ),
];

/// Adds the answers every operation of a kind gives to its own, so each operation
/// lists every error code it can answer, under its status.
pub fn add_common_responses(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let console = path.starts_with("/admin/");
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            if op.operation_id.as_deref() == Some("getOpenApi") {
                continue;
            }
            let mut common: Vec<&(u16, ErrorCode, &str)> = ANY.iter().collect();
            if op.request_body.is_some() {
                common.extend(WITH_BODY);
            }
            // The requirement's fields are private; its JSON names the scheme.
            let needs_session =
                serde_json::to_string(&op.security).is_ok_and(|j| j.contains("sessionCookie"));
            if needs_session {
                common.extend(WITH_SESSION);
            }
            if console {
                common.extend(ADMIN);
            }
            for &(status, code, text) in common {
                let line = format!("`{code}`: {text}");
                let responses = &mut op.responses.responses;
                match responses.get_mut(&status.to_string()) {
                    Some(RefOr::T(r)) if !r.description.contains(&format!("`{code}`")) => {
                        r.description = format!("{} {line}", r.description);
                    }
                    Some(_) => {}
                    None => {
                        responses.insert(status.to_string(), RefOr::T(error_response(line)));
                    }
                }
            }
        }
    }
}

fn error_response(description: String) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build(),
        )
        .build()
}
