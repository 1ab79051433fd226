//! The OpenAPI 3.1 document, generated from the handlers (utoipa), and its documentation
//! page (Swagger UI from the vendored files inside the binary: no CDN, the CSP intact).

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiProblem, Problem};
use super::{ApiState, factors, public, users};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "A client_credentials access token from the organisation's authorization server. \
                 The security requirement of each operation names the scope it needs.",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "admin-portal service API", version = "1",
        description = "Other services call admin-portal with their own OAuth client. Errors are RFC 9457 problems with a stable `code`."),
    servers((url = "/api")),
    modifiers(&Bearer),
    components(schemas(Problem))
)]
struct ApiDoc;

/// Every `/v1` route, with its documentation.
pub fn v1_router() -> OpenApiRouter<ApiState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(users::search, users::create))
        .routes(routes!(users::get_user, users::patch, users::delete))
        .routes(routes!(users::lifecycle))
        .routes(routes!(users::clear_sessions))
        .routes(routes!(users::add_group, users::remove_group))
        .routes(routes!(factors::list, factors::enroll))
        .routes(routes!(factors::activate))
        .routes(routes!(factors::resend))
        .routes(routes!(factors::reset))
        .routes(routes!(factors::reset_all))
        .routes(routes!(public::register))
        .routes(routes!(public::recover))
        .routes(routes!(public::audit));
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/v1", v1)
}

/// The document alone (for `check-config`-style tools and tests).
pub fn document() -> Document {
    v1_router().split_for_parts().1
}

/// `/openapi.json` and `/docs/`.
pub fn routes(document: Document) -> Router<ApiState> {
    let json = Arc::new(document.to_json().unwrap_or_default());
    let config = Arc::new(utoipa_swagger_ui::Config::new(["/api/openapi.json"]));
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.as_str().to_string(),
                    )
                }
            }),
        )
        .route("/docs", get(|| async { Redirect::permanent("/api/docs/") }))
        .route(
            "/docs/",
            get({
                let config = config.clone();
                move || serve_file(String::new(), config.clone())
            }),
        )
        .route(
            "/docs/{*file}",
            get(move |Path(file): Path<String>| serve_file(file, config.clone())),
        )
}

async fn serve_file(file: String, config: Arc<utoipa_swagger_ui::Config<'static>>) -> Response {
    match utoipa_swagger_ui::serve(&file, config) {
        Ok(Some(f)) => {
            let mut response = f.bytes.into_owned().into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&f.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            if f.gzpipped {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
        _ => ApiProblem::not_found("No such documentation file.").into_response(),
    }
}
