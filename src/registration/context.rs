//! What every handler of the edge shares: its state, the request context set by the
//! middleware, and its embedded, versioned static files.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::EdgeState;

pub type Shared = Arc<EdgeState>;

/// The request's own id and the end user's address, set by [`context`] on every request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub ip: IpAddr,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .unwrap_or_else(|| Ctx {
                request_id: uuid::Uuid::new_v4().to_string(),
                ip: IpAddr::from([0, 0, 0, 0]),
            }))
    }
}

struct Asset {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
    version: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    let table: [(&'static str, &'static [u8], &'static str); 3] = [
        (
            "app.css",
            include_bytes!("../../static/css/app.css"),
            "text/css; charset=utf-8",
        ),
        (
            "registration.js",
            include_bytes!("../../static/js/registration.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            "favicon.svg",
            include_bytes!("../../static/img/favicon.svg"),
            "image/svg+xml",
        ),
    ];
    table
        .into_iter()
        .map(|(name, bytes, content_type)| Asset {
            name,
            bytes,
            content_type,
            version: Sha256::digest(bytes)[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
        .collect()
});

/// The versioned URL of one of the edge's files.
pub fn asset_url(name: &str) -> String {
    ASSETS.iter().find(|a| a.name == name).map_or_else(
        || format!("/static/{name}"),
        |a| format!("/static/{name}?v={}", a.version),
    )
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
