//! A whole page: a template with the values every page needs.

use crate::error::PageError;
use crate::extract::Ctx;
use crate::render::templates;
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
    let values = minijinja::context! { csrf => csrf, path => ctx.path.clone(), signed_in => signed_in, ..extra };
    templates()
        .render(name, ctx.lang, values)
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
