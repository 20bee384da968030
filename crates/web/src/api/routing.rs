//! The API's handlers are listed once and registered two ways: with their OpenAPI
//! description, for the document, and bare, for the server. The description is
//! built by a schema builder per body type and operation; routing needs none of
//! it, and composing it at every start ran some 1.5 MB of code that then stayed
//! resident for nothing (issue 19, the idle footprint). The document is made on
//! its first request instead (`api::DOCUMENT`).
//!
//! Both functions come from the same list, so a route and its description still
//! cannot part; the integration test `every_documented_operation_reaches_its_handler_and_answers_as_documented`
//! drives every documented operation through the bare router.

/// `handlers! { fn documented / bare (base) { [h, ...] [h, ...] } }` defines
/// `documented() -> OpenApiRouter` (as `utoipa_axum::routes!` per bracket, on the
/// document `base`, `OpenApiRouter::new()`'s when left out) and `bare() -> Router`
/// with the same handlers on the same paths and methods, read from each handler's
/// `#[utoipa::path]` (its path and methods, not its description).
macro_rules! handlers {
    ($vis:vis fn $documented:ident / $bare:ident { $( [ $( $($h:ident)::+ ),+ $(,)? ] )* }) => {
        $crate::api::routing::handlers! {
            $vis fn $documented / $bare (utoipa_axum::router::OpenApiRouter::<$crate::AppState>::new().into_openapi()) {
                $( [ $( $($h)::+ ),+ ] )*
            }
        }
    };
    ($vis:vis fn $documented:ident / $bare:ident ($base:expr) { $( [ $( $($h:ident)::+ ),+ $(,)? ] )* }) => {
        $vis fn $documented() -> utoipa_axum::router::OpenApiRouter<$crate::AppState> {
            utoipa_axum::router::OpenApiRouter::with_openapi($base)
                $( .routes(utoipa_axum::routes!($( $($h)::+ ),+)) )*
        }

        $vis fn $bare() -> axum::Router<$crate::AppState> {
            let router = axum::Router::new();
            $( $( let router = $crate::api::routing::handlers!(@bare router, $($h)::+); )+ )*
            router
        }
    };
    (@bare $router:ident, $($h:ident)::+) => {{
        #[allow(unused_imports)]
        use utoipa_axum::PathItemExt as _;
        let path: String = utoipa_axum::routes!(@path [path()] of $($h)::+);
        let methods = utoipa_axum::routes!(@path [methods()] of $($h)::+);
        let method_router = methods
            .iter()
            .fold(axum::routing::MethodRouter::new(), |r, m| r.on(m.to_method_filter(), $($h)::+));
        // Two handlers on one path (two methods) merge, as `routes!` makes them.
        axum::Router::route($router, &path, method_router)
    }};
}

pub(crate) use handlers;
