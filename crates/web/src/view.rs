//! A whole page: a template with the values every page needs.

use crate::error::PageError;
use crate::extract::Ctx;
use crate::render::{templates, Page};
use axum::http::StatusCode;
use axum::response::Html;
use minijinja::Value;

/// Renders a page with the values every page needs.
pub(crate) fn page(
    ctx: &Ctx,
    name: &str,
    csrf: &str,
    signed_in: bool,
    extra: Value,
) -> Result<Html<String>, PageError> {
    let common = Page {
        csrf: Some(Value::from(csrf)),
        path: Some(Value::from(ctx.path.clone())),
        signed_in: Some(Value::from(signed_in)),
    };
    templates()
        .render_with(name, ctx.lang, common, extra)
        .map(Html)
        .map_err(|e| {
            tracing::error!(error = %e, template = name, "render failed");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error_internal",
                ctx.lang,
            )
        })
}
