//! The org authorization server (OAuth 2.0 for Okta, OKTA-FACTS.md §1.2): issuer = the
//! org's base URL, `POST /oauth2/v1/token` with `client_credentials` and
//! `private_key_jwt` for service apps, `GET /oauth2/v1/keys`. Its access tokens carry
//! `okta.*` scopes and authenticate calls to the Management API.

// Helpers return the early HTTP response as their error; it is built once per request.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use super::api::RequestId;
use super::store::ServiceApp;
use super::syslog::{self, EventSource};
use super::{SimState, random_token};

/// The demo service app the portal calls the Management API with.
pub const SERVICE_APP_CLIENT_ID: &str = "0oaPortalServiceApp1";
/// Its private key (PKCS#8 PEM): a test key for the simulator only; it protects nothing.
pub const SERVICE_APP_KEY_PEM: &str = include_str!("keys/portal-service-app.pem");
/// The `kid` of its key.
pub const SERVICE_APP_KID: &str = "portal-service-app";
/// The scopes granted to the demo service app.
pub const SERVICE_APP_SCOPES: &[&str] = &[
    "okta.users.read",
    "okta.users.manage",
    "okta.groups.read",
    "okta.groups.manage",
    "okta.logs.read",
];

pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_LIFETIME: i64 = 3600;
/// Tolerated clock skew for `iat` and `exp` of client assertions.
const LEEWAY: i64 = 60;

/// The public JWK of an RSA private key given as PKCS#8 PEM.
pub fn public_jwk_from_pem(pem: &str, kid: &str) -> anyhow::Result<Value> {
    let private = RsaPrivateKey::from_pkcs8_pem(pem)?;
    let public = private.to_public_key();
    Ok(json!({
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    }))
}

/// The demo service app, `0oaPortalServiceApp1`.
pub fn demo_service_app() -> anyhow::Result<ServiceApp> {
    Ok(ServiceApp {
        client_id: SERVICE_APP_CLIENT_ID.to_string(),
        public_jwk: public_jwk_from_pem(SERVICE_APP_KEY_PEM, SERVICE_APP_KID)?,
        granted_scopes: SERVICE_APP_SCOPES.iter().map(|s| s.to_string()).collect(),
        // As Okta creates API Services apps today: "Require DPoP" is on.
        dpop_bound_access_tokens: true,
    })
}

pub fn routes() -> Router<SimState> {
    Router::new()
        .route("/oauth2/v1/token", post(token))
        .route("/oauth2/v1/keys", get(keys))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn keys(State(state): State<SimState>) -> Response {
    (
        [(header::CACHE_CONTROL, "max-age=3600, must-revalidate")],
        axum::Json(state.keys().jwks()),
    )
        .into_response()
}

async fn metadata(State(state): State<SimState>) -> Response {
    let base = state.base_url();
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth2/v1/authorize"),
        "token_endpoint": format!("{base}/oauth2/v1/token"),
        "jwks_uri": format!("{base}/oauth2/v1/keys"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn invalid_client(description: &str) -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

async fn token(State(state): State<SimState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body is too large.",
        );
    };
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request must be sent as application/x-www-form-urlencoded.",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let (app, jkt) = match authenticate(&state, &headers, &form) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant_type != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!(
                "The authorization grant type '{grant_type}' is not supported by the authorization server or the client."
            ),
        );
    }
    let scopes: Vec<String> = form
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if scopes.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "No scopes were requested.",
        );
    }
    if let Some(denied) = scopes.iter().find(|s| !app.granted_scopes.contains(s)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("The following requested scopes are not allowed: {denied}"),
        );
    }
    let now = now();
    let jti = format!("AT.{}", random_token(43));
    let mut claims = json!({
        "ver": 1,
        "jti": jti,
        "iss": state.base_url(),
        "aud": state.base_url(),
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "cid": app.client_id,
        "scp": scopes,
        "sub": app.client_id,
    });
    if let Some(jkt) = &jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    let signed = state.keys().active().sign(&claims);
    let Ok(access_token) = signed else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server encountered an internal error.",
        );
    };
    let source = EventSource {
        request_id: parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        actor: json!({
            "id": app.client_id,
            "type": "PublicClientApp",
            "alternateId": app.client_id,
            "displayName": app.client_id,
            "detailEntry": null,
        }),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "127.0.0.1".to_string(), |c| c.0.ip().to_string()),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        api_token_id: None,
    };
    {
        let mut store = state.store();
        *store
            .token_calls
            .entry("org:client_credentials".into())
            .or_default() += 1;
        syslog::append(
            &mut store,
            &source,
            "app.oauth2.as.token.grant.access_token",
            vec![json!({
                "id": jti,
                "type": "access_token",
                "alternateId": "unknown",
                "displayName": "Access Token",
                "detailEntry": { "expires": exp_timestamp(now + TOKEN_LIFETIME), "subject": app.client_id },
            })],
        );
    }
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(json!({
            "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
            "expires_in": TOKEN_LIFETIME,
            "access_token": access_token,
            "scope": scopes.join(" "),
        })),
    )
        .into_response()
}

fn exp_timestamp(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .map(super::users::timestamp)
        .unwrap_or_default()
}

/// Authenticates a service app by `private_key_jwt`. A DPoP-bound app's proof is checked once
/// the app is known and before its assertion is (a refused proof leaves the assertion
/// unused); returns the app and the proof key's thumbprint to bind the token to.
fn authenticate(
    state: &SimState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(ServiceApp, Option<String>), Response> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic "));
    let assertion = form.get("client_assertion").filter(|a| !a.is_empty());
    let assertion_type = form.get("client_assertion_type");
    if (basic || form.contains_key("client_secret")) && assertion.is_some() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Can't supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a `client_assertion` in the post body.",
        ));
    }
    let Some(assertion) = assertion else {
        if basic || form.contains_key("client_secret") {
            return Err(invalid_client(
                "Client authentication failed. Either the client or the client credentials are invalid.",
            ));
        }
        return Err(invalid_client("No client credentials found"));
    };
    if assertion_type.map(String::as_str) != Some(ASSERTION_TYPE) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The `client_assertion_type` is invalid.",
        ));
    }
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return Err(invalid_client("The client_assertion token is malformed."));
    };
    let Ok(unverified) = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(assertion) else {
        return Err(invalid_client("The client_assertion token is malformed."));
    };
    let client_id = unverified["sub"].as_str().unwrap_or_default().to_string();
    if let Some(form_id) = form.get("client_id")
        && *form_id != client_id
    {
        return Err(invalid_client(
            "The client_id in the request doesn't match the client_assertion.",
        ));
    }
    let Some(app) = state.store().service_apps.get(&client_id).cloned() else {
        return Err(invalid_client(
            "Invalid value for the `client_id` parameter",
        ));
    };
    let token_url = format!("{}/oauth2/v1/token", state.base_url());
    let jkt = if app.dpop_bound_access_tokens {
        Some(token_dpop(state, headers, &token_url)?)
    } else {
        None
    };
    verify_assertion(
        state,
        &client_id,
        &app.public_jwk,
        &header,
        assertion,
        &token_url,
    )?;
    Ok((app, jkt))
}

/// The DPoP proof of a token request: 400 `invalid_dpop_proof`, or 400 `use_dpop_nonce`
/// with a `dpop-nonce` header when the nonce is missing or stale.
fn token_dpop(state: &SimState, headers: &HeaderMap, token_url: &str) -> Result<String, Response> {
    let expect = super::dpop::Expect {
        method: &axum::http::Method::POST,
        htu: token_url.to_string(),
        token: None,
        nonce_required: true,
        nonce_description: "Authorization server requires nonce in DPoP proof.",
    };
    let mut store = state.store();
    super::dpop::check(&mut store, headers, &expect).map_err(|refusal| {
        let mut r = oauth_error(StatusCode::BAD_REQUEST, refusal.error, refusal.description);
        if refusal.error == "use_dpop_nonce"
            && let Some(nonce) = super::dpop::nonce_header(&store)
        {
            r.headers_mut().insert("dpop-nonce", nonce);
        }
        r
    })
}

/// Verifies a `private_key_jwt` client assertion as Okta does: an RS* signature by the
/// client's registered key (`kid` must match when given), `aud` the token endpoint that was
/// called, `iss` = `sub` = the client id, a bounded `exp`, no future `iat`, and each `jti`
/// accepted once until it expires. Shared by the org and the custom authorization servers.
pub(crate) fn verify_assertion(
    state: &SimState,
    client_id: &str,
    public_jwk: &Value,
    header: &jsonwebtoken::Header,
    assertion: &str,
    token_url: &str,
) -> Result<(), Response> {
    use jsonwebtoken::Algorithm;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
    ) {
        return Err(invalid_client(
            "The client_assertion signature algorithm is not supported for this client.",
        ));
    }
    let registered_kid = public_jwk["kid"].as_str();
    if let (Some(kid), Some(registered)) = (header.kid.as_deref(), registered_kid)
        && kid != registered
    {
        return Err(invalid_client(
            "The client_assertion token's kid doesn't match a key registered for the client.",
        ));
    }
    let key = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(public_jwk.clone())
        .ok()
        .and_then(|jwk| jsonwebtoken::DecodingKey::from_jwk(&jwk).ok());
    let Some(key) = key else {
        return Err(invalid_client("The client has no usable public key."));
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_string());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = LEEWAY as u64;
    let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind;
            let description = match e.kind() {
                ErrorKind::InvalidAudience => {
                    "The audience claim for client_assertion must be the endpoint invoking the request."
                }
                ErrorKind::ExpiredSignature => "The client_assertion token is expired.",
                ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                    "The issuer and subject claims of the client_assertion must be the client_id."
                }
                ErrorKind::MissingRequiredClaim(_) => {
                    "The client_assertion token is missing a required claim."
                }
                _ => "The client_assertion signature is invalid.",
            };
            return Err(invalid_client(description));
        }
    };
    let now = now();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if exp > now + TOKEN_LIFETIME + LEEWAY {
        return Err(invalid_client(
            "The client_assertion token has an expiration too far into the future.",
        ));
    }
    if let Some(iat) = claims.get("iat") {
        match iat.as_i64() {
            Some(iat) if iat <= now + LEEWAY => {}
            _ => {
                return Err(invalid_client(
                    "The client_assertion token was issued in the future.",
                ));
            }
        }
    }
    if let Some(jti) = claims.get("jti") {
        let Some(jti) = jti.as_str() else {
            return Err(invalid_client("The client_assertion jti claim is invalid."));
        };
        let mut store = state.store();
        store.used_assertions.retain(|_, expiry| *expiry >= now);
        let key = format!("{client_id}\u{0}{jti}");
        if store.used_assertions.contains_key(&key) {
            return Err(invalid_client(
                "The client_assertion token has already been used.",
            ));
        }
        store.used_assertions.insert(key, exp.max(now) + LEEWAY);
    }
    Ok(())
}

/// An access token of the org authorization server, verified.
pub struct OrgToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `cnf.jkt` of a DPoP-bound token.
    pub jkt: Option<String>,
    /// Whether its app requires DPoP now.
    pub app_requires_dpop: bool,
}

/// Verifies an access token of the org authorization server.
pub fn verify_access_token(state: &SimState, token: &str) -> Option<OrgToken> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = state.keys().decoding_key(header.kid.as_deref()?)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[state.base_url()]);
    validation.set_audience(&[state.base_url()]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .ok()?
        .claims;
    let client_id = claims["cid"].as_str()?.to_string();
    let app_requires_dpop = state
        .store()
        .service_apps
        .get(&client_id)?
        .dpop_bound_access_tokens;
    let scopes = claims["scp"]
        .as_array()?
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    Some(OrgToken {
        client_id,
        scopes,
        jkt: claims["cnf"]["jkt"].as_str().map(str::to_string),
        app_requires_dpop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_service_app_key_derives() {
        let app = demo_service_app().unwrap();
        assert_eq!(app.public_jwk["kid"], SERVICE_APP_KID);
        assert_eq!(app.public_jwk["e"], "AQAB");
        assert_eq!(app.granted_scopes.len(), 5);
    }
}
