//! Static assets, embedded in the binary and served with long cache lifetimes behind
//! content-hashed URLs (`/static/app.css?v=3f2a…`).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    version: String,
}

pub struct Assets {
    files: HashMap<&'static str, Asset>,
}

/// The vendored htmx build (npm package `htmx.org`, version in the file name).
pub const HTMX_FILE: &str = "htmx-2.0.11.min.js";

static EMBEDDED: LazyLock<Assets> = LazyLock::new(Assets::new);

impl Assets {
    /// The files built into the binary, hashed once.
    pub fn embedded() -> &'static Assets {
        &EMBEDDED
    }

    pub fn new() -> Assets {
        let table: [(&'static str, &'static [u8], &'static str); 4] = [
            (
                "app.css",
                include_bytes!("../../static/css/app.css"),
                "text/css; charset=utf-8",
            ),
            (
                "app.js",
                include_bytes!("../../static/js/app.js"),
                "text/javascript; charset=utf-8",
            ),
            (
                HTMX_FILE,
                include_bytes!("../../static/js/htmx-2.0.11.min.js"),
                "text/javascript; charset=utf-8",
            ),
            (
                "favicon.svg",
                include_bytes!("../../static/img/favicon.svg"),
                "image/svg+xml",
            ),
        ];
        let files = table
            .into_iter()
            .map(|(name, bytes, content_type)| {
                let digest = Sha256::digest(bytes);
                let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                (
                    name,
                    Asset {
                        bytes,
                        content_type,
                        version,
                    },
                )
            })
            .collect();
        Assets { files }
    }

    /// The cache-busting URL of an asset.
    pub fn url(&self, name: &str) -> String {
        match self.files.get(name) {
            Some(asset) => format!("/static/{name}?v={}", asset.version),
            None => format!("/static/{name}"),
        }
    }
}

impl Default for Assets {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Deserialize)]
pub struct VersionQuery {
    v: Option<String>,
}

pub async fn serve(Path(name): Path<String>, Query(query): Query<VersionQuery>) -> Response {
    let Some(asset) = Assets::embedded().files.get(name.as_str()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Versioned URLs never change content: cache them for a year.
    let cache = if query.v.as_deref() == Some(asset.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}
