//! The custom authorization server `/oauth2/default` (OKTA-FACTS.md §10).

// Helpers return the early HTTP response as their error; it is built once per request.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::store::{
    AccessTokenTamper, AuthCode, IdTokenTamper, RefreshGrant, SimClient, SimUser, SsoSession,
    UserStatus,
};
use super::{AUDIENCE, SimState, random_token, xsrf};

const CODE_LIFETIME: Duration = Duration::from_secs(300);
const ID_TOKEN_LIFETIME: i64 = 3600;
const SSO_COOKIE: &str = "okta_sim_sid";

pub fn routes() -> Router<SimState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth_metadata),
        )
        .route("/v1/authorize", get(authorize_get).post(authorize_post))
        .route("/v1/token", axum::routing::post(token))
        .route("/v1/keys", get(keys))
        .route("/v1/userinfo", get(userinfo).post(userinfo))
        .route("/v1/logout", get(logout_get).post(logout_post))
        .route("/v1/revoke", axum::routing::post(revoke))
        .route("/v1/introspect", axum::routing::post(introspect))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn metadata(state: &SimState, openid: bool) -> Value {
    let iss = state.issuer();
    let mut scopes: Vec<&str> = vec![
        "openid",
        "profile",
        "email",
        "address",
        "phone",
        "groups",
        "offline_access",
    ];
    scopes.extend(super::store::PORTAL_SCOPES_AGENT);
    scopes.extend(super::store::PORTAL_SCOPES_MANAGER_EXTRA);
    let mut doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/v1/authorize"),
        "token_endpoint": format!("{iss}/v1/token"),
        "registration_endpoint": format!("{}/oauth2/v1/clients", state.base_url()),
        "jwks_uri": format!("{iss}/v1/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "code token", "id_token token", "code id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post", "okta_post_message"],
        "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password", "client_credentials"],
        "subject_types_supported": ["public"],
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "claims_supported": ["ver", "jti", "iss", "sub", "aud", "iat", "exp", "cid", "uid", "amr", "idp", "nonce", "auth_time", "name", "preferred_username", "email", "email_verified", "given_name", "family_name", "groups"],
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": format!("{iss}/v1/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint": format!("{iss}/v1/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "end_session_endpoint": format!("{iss}/v1/logout"),
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"],
    });
    if openid {
        doc["userinfo_endpoint"] = json!(format!("{iss}/v1/userinfo"));
        doc["id_token_signing_alg_values_supported"] = json!(["RS256"]);
    }
    doc
}

async fn openid_configuration(State(state): State<SimState>) -> Response {
    cacheable_json(metadata(&state, true))
}

async fn oauth_metadata(State(state): State<SimState>) -> Response {
    cacheable_json(metadata(&state, false))
}

async fn keys(State(state): State<SimState>) -> Response {
    cacheable_json(state.keys().jwks())
}

fn cacheable_json(body: Value) -> Response {
    (
        [(header::CACHE_CONTROL, "max-age=3600, must-revalidate")],
        axum::Json(body),
    )
        .into_response()
}

/// An OAuth error from a JSON endpoint.
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

#[derive(Template)]
#[template(path = "okta_sim/login.html")]
struct LoginPage<'a> {
    params: Vec<(&'a str, &'a str)>,
    xsrf_field: &'a str,
    xsrf_token: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "okta_sim/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = ErrorPage { title, message }
        .render()
        .unwrap_or_else(|_| message.to_string());
    (status, Html(body)).into_response()
}

/// The parameters of an authorization request that the sign-in form carries along.
const CARRIED: &[&str] = &[
    "client_id",
    "response_type",
    "scope",
    "redirect_uri",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "login_hint",
];

struct ValidAuthorize {
    client: SimClient,
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Option<String>,
}

/// Validates an authorization request. `Err` is either an error page (client or redirect
/// URI cannot be trusted) or a redirect carrying the OAuth error.
fn validate_authorize(
    state: &SimState,
    p: &HashMap<String, String>,
) -> Result<ValidAuthorize, Response> {
    let client_id = p.get("client_id").map(String::as_str).unwrap_or_default();
    let Some(client) = state.store().clients.get(client_id).cloned() else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Invalid value for 'client_id' parameter.",
        ));
    };
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The 'redirect_uri' parameter must be a Login redirect URI in the client app settings.",
        ));
    }
    let st = p.get("state").cloned().unwrap_or_default();
    let fail = |error: &str, description: &str| {
        Err(redirect_with(
            &redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &st),
            ],
        ))
    };
    if p.get("response_type").map(String::as_str) != Some("code") {
        return fail(
            "unsupported_response_type",
            "The response type is not supported by the authorization server. Configured response types: [code].",
        );
    }
    if st.is_empty() {
        return fail("invalid_request", "The 'state' parameter is required.");
    }
    let scopes: Vec<String> = p
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if scopes.is_empty() {
        return fail(
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    if !scopes.iter().any(|s| s == "openid") {
        return fail("invalid_scope", "The 'openid' scope is required.");
    }
    let code_challenge = p.get("code_challenge").filter(|c| !c.is_empty()).cloned();
    if code_challenge.is_some()
        && p.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return fail(
            "invalid_request",
            "'code_challenge_method' value is invalid, only S256 is supported.",
        );
    }
    Ok(ValidAuthorize {
        client,
        redirect_uri,
        scopes,
        state: st,
        nonce: p.get("nonce").filter(|n| !n.is_empty()).cloned(),
        code_challenge,
        prompt: p.get("prompt").cloned(),
    })
}

fn redirect_with(base: &str, params: &[(&str, &str)]) -> Response {
    match Url::parse(base) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Invalid redirect URI.",
        ),
    }
}

fn sso_session(state: &SimState, headers: &HeaderMap) -> Option<(String, SsoSession)> {
    let sid = xsrf::cookie(headers, SSO_COOKIE)?;
    let session = state.store().sso_sessions.get(&sid).cloned()?;
    Some((sid, session))
}

/// The ACTIVE user of a valid SSO session cookie, with the session's `auth_time`. Takes the
/// store's lock only for the lookup.
fn sso_user(state: &SimState, headers: &HeaderMap) -> Option<(SimUser, i64)> {
    let (_, sso) = sso_session(state, headers)?;
    let user = state.store().users.get(&sso.user_id).cloned()?;
    (user.status == UserStatus::Active).then_some((user, sso.auth_time))
}

/// What a sign-in form is shown with: the simulator, the browser's request, and the
/// authorization request it carries.
struct FormContext<'a> {
    state: &'a SimState,
    headers: &'a HeaderMap,
    params: &'a HashMap<String, String>,
}

/// The sign-in form, with a fresh CSRF token (and its cookie when the browser has none).
fn login_form(
    form: &FormContext<'_>,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let carried: Vec<(&str, &str)> = CARRIED
        .iter()
        .filter_map(|k| form.params.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    let (token, set_cookie) = xsrf::issue(form.state, form.headers);
    let page = LoginPage {
        params: carried,
        xsrf_field: xsrf::XSRF_FIELD,
        xsrf_token: &token,
        username,
        error,
    };
    match page.render() {
        Ok(body) => {
            let mut response =
                (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response();
            if let Some(value) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(_) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Could not render the sign-in page.",
        ),
    }
}

async fn authorize_get(
    State(state): State<SimState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let request = match validate_authorize(&state, &params) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let force_login = request
        .prompt
        .as_deref()
        .is_some_and(|p| p.contains("login"));
    // The store's lock must not be held here: `issue_code` takes it again.
    if !force_login && let Some((user, auth_time)) = sso_user(&state, &headers) {
        return issue_code(&state, request, &user, auth_time, None);
    }
    if request.prompt.as_deref() == Some("none") {
        return redirect_with(
            &request.redirect_uri,
            &[
                ("error", "login_required"),
                (
                    "error_description",
                    "The client specified not to prompt, but the user is not logged in.",
                ),
                ("state", &request.state),
            ],
        );
    }
    let hint = params.get("login_hint").cloned().unwrap_or_default();
    let form = FormContext {
        state: &state,
        headers: &headers,
        params: &params,
    };
    login_form(&form, &hint, None, StatusCode::OK)
}

async fn authorize_post(
    State(state): State<SimState>,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    let token = params.get(xsrf::XSRF_FIELD).map(String::as_str);
    if !xsrf::check(&state, &headers, token) {
        // Okta's hosted page answers a post it did not serve the form for like this.
        return error_page(
            StatusCode::FORBIDDEN,
            "403 - Forbidden",
            "You do not have permission to access the feature you are requesting",
        );
    }
    let form = FormContext {
        state: &state,
        headers: &headers,
        params: &params,
    };
    let request = match validate_authorize(&state, &params) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let username = params.get("username").cloned().unwrap_or_default();
    let password = params.get("password").cloned().unwrap_or_default();
    let user = state.store().user_by_login(username.trim()).cloned();
    let user = match user {
        Some(u) if u.password.as_deref() == Some(password.as_str()) && !password.is_empty() => u,
        _ => {
            return login_form(
                &form,
                &username,
                Some("Unable to sign in"),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    if user.status != UserStatus::Active {
        return login_form(
            &form,
            &username,
            Some("Your account cannot sign in right now. Contact your administrator."),
            StatusCode::FORBIDDEN,
        );
    }
    let sid = random_token(32);
    let auth_time = now();
    state.store().sso_sessions.insert(
        sid.clone(),
        SsoSession {
            user_id: user.id.clone(),
            auth_time,
        },
    );
    if let Some(u) = state.store().users.get_mut(&user.id) {
        u.last_login = Some(time::OffsetDateTime::now_utc());
    }
    let cookie = format!("{SSO_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax");
    issue_code(&state, request, &user, auth_time, Some(cookie))
}

fn issue_code(
    state: &SimState,
    request: ValidAuthorize,
    user: &SimUser,
    auth_time: i64,
    set_cookie: Option<String>,
) -> Response {
    let code = random_token(43);
    let scopes = state.store().granted_scopes(user, &request.scopes);
    state.store().codes.insert(
        code.clone(),
        AuthCode {
            client_id: request.client.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            user_id: user.id.clone(),
            scopes,
            nonce: request.nonce,
            code_challenge: request.code_challenge,
            auth_time,
            issued: Instant::now(),
            used: false,
            refresh_tokens: Vec::new(),
        },
    );
    let mut response = redirect_with(
        &request.redirect_uri,
        &[("code", &code), ("state", &request.state)],
    );
    if let Some(cookie) = set_cookie
        && let Ok(v) = cookie.parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Authenticates the calling client by `client_secret_basic`, `client_secret_post` or
/// `private_key_jwt` (for a client with a registered key, [`SimState::register_client_key`]).
fn authenticate_client(
    state: &SimState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<SimClient, Response> {
    if form.get("client_assertion").is_some_and(|a| !a.is_empty()) {
        return authenticate_by_assertion(state, headers, form);
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(id, secret)| (urlencoding_decode(id), urlencoding_decode(secret)))
        });
    let post = form.get("client_secret").map(|secret| {
        (
            form.get("client_id").cloned().unwrap_or_default(),
            secret.clone(),
        )
    });
    let (id, secret) = match (basic, post) {
        (Some(_), Some(_)) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Can't supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
            ));
        }
        (Some(c), None) | (None, Some(c)) => c,
        (None, None) => {
            return Err(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "No client credentials found.",
            ));
        }
    };
    match state.store().clients.get(&id) {
        Some(client) if client.secret == secret => Ok(client.clone()),
        Some(_) => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client secret supplied for a confidential client is invalid.",
        )),
        None => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_id provided is invalid.",
        )),
    }
}

/// `private_key_jwt` at the custom authorization server: the same checks as the org server,
/// with the audience this server's token endpoint.
fn authenticate_by_assertion(
    state: &SimState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<SimClient, Response> {
    let invalid = |d: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", d);
    if headers.contains_key(header::AUTHORIZATION) || form.contains_key("client_secret") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Can't supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
        ));
    }
    let assertion = form
        .get("client_assertion")
        .map(String::as_str)
        .unwrap_or_default();
    if form.get("client_assertion_type").map(String::as_str) != Some(crate::org_as::ASSERTION_TYPE)
    {
        let d = "The `client_assertion_type` is invalid.";
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d));
    }
    let header = jsonwebtoken::decode_header(assertion);
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(assertion);
    let (Ok(header), Ok(claims)) = (header, claims) else {
        return Err(invalid("The client_assertion token is malformed."));
    };
    let id = claims["sub"].as_str().unwrap_or_default().to_string();
    let (client, key) = {
        let store = state.store();
        (
            store.clients.get(&id).cloned(),
            store.client_keys.get(&id).cloned(),
        )
    };
    let (Some(client), Some(key)) = (client, key) else {
        return Err(invalid("The client_id provided is invalid."));
    };
    let token_url = format!("{}/v1/token", state.issuer());
    crate::org_as::verify_assertion(state, &id, &key, &header, assertion, &token_url)?;
    Ok(client)
}

fn urlencoding_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[derive(Serialize)]
struct TokenResponse {
    token_type: &'static str,
    expires_in: u64,
    access_token: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

const INVALID_CODE: &str = "The authorization code is invalid or has expired.";

async fn token(
    State(state): State<SimState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let client = match authenticate_client(&state, &headers, &form) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    if !client.grant_types.contains(&grant_type) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!(
                "The authorization grant type '{grant_type}' is not supported by the authorization server or the client."
            ),
        );
    }
    let result = match grant_type.as_str() {
        "authorization_code" => grant_authorization_code(&state, &client, &form),
        "refresh_token" => grant_refresh_token(&state, &client, &form),
        "client_credentials" => grant_client_credentials(&state, &client, &form),
        _ => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )),
    };
    match result {
        Ok(body) => {
            *state.store().token_calls.entry(grant_type).or_default() += 1;
            (
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::PRAGMA, "no-cache"),
                ],
                axum::Json(body),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn grant_authorization_code(
    state: &SimState,
    client: &SimClient,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, Response> {
    let code_value = form.get("code").cloned().unwrap_or_default();
    let code = {
        let mut store = state.store();
        let Some(code) = store.codes.get_mut(&code_value) else {
            return Err(invalid_grant(INVALID_CODE));
        };
        if code.used {
            // A replayed code: revoke what it produced (RFC 6749 §4.1.2).
            let issued = code.refresh_tokens.clone();
            for token in issued {
                if let Some(grant) = store.refresh_tokens.get_mut(&token) {
                    grant.revoked = true;
                }
            }
            return Err(invalid_grant(INVALID_CODE));
        }
        code.used = true;
        code.clone()
    };
    if code.client_id != client.id
        || code.issued.elapsed() > CODE_LIFETIME
        || form.get("redirect_uri") != Some(&code.redirect_uri)
    {
        return Err(invalid_grant(INVALID_CODE));
    }
    match (&code.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if &computed != challenge {
                return Err(invalid_grant("PKCE verification failed."));
            }
        }
        (Some(_), None) => return Err(invalid_grant("PKCE verification failed.")),
        (None, Some(_)) => return Err(invalid_grant("PKCE verification failed.")),
        (None, None) => {}
    }
    let user = state
        .store()
        .users
        .get(&code.user_id)
        .cloned()
        .ok_or_else(|| invalid_grant(INVALID_CODE))?;
    let response = user_tokens(
        state,
        client,
        &user,
        &code.scopes,
        code.auth_time,
        code.nonce.as_deref(),
        None,
    )?;
    if let Some(refresh) = &response.refresh_token
        && let Some(c) = state.store().codes.get_mut(&code_value)
    {
        c.refresh_tokens.push(refresh.clone());
    }
    Ok(response)
}

fn grant_refresh_token(
    state: &SimState,
    client: &SimClient,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, Response> {
    let token = form.get("refresh_token").cloned().unwrap_or_default();
    let grant = state.store().refresh_tokens.get(&token).cloned();
    let Some(grant) = grant.filter(|g| !g.revoked && g.client_id == client.id) else {
        return Err(invalid_grant("The refresh token is invalid or expired."));
    };
    let user = state.store().users.get(&grant.user_id).cloned();
    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
        return Err(invalid_grant("The refresh token is invalid or expired."));
    };
    let scopes = match form.get("scope") {
        Some(requested) => {
            let requested: Vec<String> = requested.split_whitespace().map(str::to_string).collect();
            if requested.iter().any(|s| !grant.scopes.contains(s)) {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "The requested scope is invalid, unknown, or malformed.",
                ));
            }
            requested
        }
        None => grant.scopes.clone(),
    };
    // Group membership may have changed since sign-in: the policy is evaluated again.
    let scopes = state.store().granted_scopes(&user, &scopes);
    user_tokens(
        state,
        client,
        &user,
        &scopes,
        grant.auth_time,
        None,
        Some(token),
    )
}

fn grant_client_credentials(
    state: &SimState,
    client: &SimClient,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, Response> {
    let scopes: Vec<String> = form
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if scopes.is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "No scopes were requested.",
        ));
    }
    if scopes.iter().any(|s| !client.service_scopes.contains(s)) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "One or more scopes are not configured for the authorization server resource.",
        ));
    }
    let ttl = state.store().access_token_ttl;
    let now = now();
    let claims = json!({
        "ver": 1,
        "jti": format!("AT.{}", random_token(43)),
        "iss": state.issuer(),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl.as_secs() as i64,
        "cid": client.id,
        "scp": scopes,
        "sub": client.id,
    });
    let access_token = sign_access_token(state, &claims)?;
    Ok(TokenResponse {
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
        access_token,
        scope: scopes.join(" "),
        id_token: None,
        refresh_token: None,
    })
}

fn server_error() -> Response {
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "The server encountered an internal error.",
    )
}

fn sign_access_token(state: &SimState, claims: &Value) -> Result<String, Response> {
    let tamper = state.store().access_token_tamper.take();
    let keys = state.keys();
    let mut claims = claims.clone();
    let key = match tamper {
        Some(AccessTokenTamper::UnknownKey) => &keys.rogue,
        Some(AccessTokenTamper::WrongAudience) => {
            claims["aud"] = json!("api://somebody-else");
            keys.active()
        }
        None => keys.active(),
    };
    key.sign(&claims).map_err(|_| server_error())
}

fn user_tokens(
    state: &SimState,
    client: &SimClient,
    user: &SimUser,
    scopes: &[String],
    auth_time: i64,
    nonce: Option<&str>,
    existing_refresh: Option<String>,
) -> Result<TokenResponse, Response> {
    let ttl = state.store().access_token_ttl;
    let now = now();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let groups = state.store().group_names(user);
    let mut access = json!({
        "ver": 1,
        "jti": format!("AT.{}", random_token(43)),
        "iss": state.issuer(),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl.as_secs() as i64,
        "cid": client.id,
        "uid": user.id,
        "scp": scopes,
        "auth_time": auth_time,
        "sub": user.login,
    });
    if has("groups") {
        access["groups"] = json!(groups);
    }
    let access_token = sign_access_token(state, &access)?;
    let id_token = if has("openid") {
        Some(sign_id_token(
            state,
            client,
            user,
            scopes,
            auth_time,
            nonce,
            &access_token,
        )?)
    } else {
        None
    };
    let refresh_token =
        if has("offline_access") && client.grant_types.iter().any(|g| g == "refresh_token") {
            Some(match existing_refresh {
                Some(token) => token,
                None => {
                    let token = random_token(43);
                    state.store().refresh_tokens.insert(
                        token.clone(),
                        RefreshGrant {
                            client_id: client.id.clone(),
                            user_id: user.id.clone(),
                            scopes: scopes.to_vec(),
                            auth_time,
                            revoked: false,
                        },
                    );
                    token
                }
            })
        } else {
            None
        };
    Ok(TokenResponse {
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
        access_token,
        scope: scopes.join(" "),
        id_token,
        refresh_token,
    })
}

/// Profile claims released for the granted scopes (ID token and userinfo).
fn profile_claims(claims: &mut Value, state: &SimState, user: &SimUser, scopes: &[String]) {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        claims["name"] = json!(user.display_name());
        claims["preferred_username"] = json!(user.login);
        claims["given_name"] = json!(user.first_name);
        claims["family_name"] = json!(user.last_name);
        claims["locale"] = json!("en_US");
        claims["zoneinfo"] = json!("America/Los_Angeles");
        claims["updated_at"] = json!(user.last_updated.unix_timestamp());
    }
    if has("email") {
        claims["email"] = json!(user.email);
        claims["email_verified"] = json!(true);
    }
    if has("groups") {
        claims["groups"] = json!(state.store().group_names(user));
    }
}

fn sign_id_token(
    state: &SimState,
    client: &SimClient,
    user: &SimUser,
    scopes: &[String],
    auth_time: i64,
    nonce: Option<&str>,
    access_token: &str,
) -> Result<String, Response> {
    let now = now();
    let hash = Sha256::digest(access_token.as_bytes());
    let mut claims = json!({
        "ver": 1,
        "sub": user.id,
        "iss": state.issuer(),
        "aud": client.id,
        "iat": now,
        "exp": now + ID_TOKEN_LIFETIME,
        "jti": format!("ID.{}", random_token(43)),
        "amr": ["pwd"],
        "idp": "00oSimulatedOrg00001",
        "auth_time": auth_time,
        "at_hash": URL_SAFE_NO_PAD.encode(&hash[..16]),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    profile_claims(&mut claims, state, user, scopes);
    let tamper = state.store().id_token_tamper.take();
    let keys = state.keys();
    let signed = match tamper {
        None => keys.active().sign(&claims),
        Some(IdTokenTamper::UnknownKey) => keys.rogue.sign(&claims),
        Some(IdTokenTamper::WrongAudience) => {
            claims["aud"] = json!("0oaSomebodyElse00001");
            keys.active().sign(&claims)
        }
        Some(IdTokenTamper::WrongIssuer) => {
            claims["iss"] = json!(format!("{}/oauth2/other", state.base_url()));
            keys.active().sign(&claims)
        }
        Some(IdTokenTamper::Expired) => {
            claims["iat"] = json!(now - 2 * ID_TOKEN_LIFETIME);
            claims["exp"] = json!(now - ID_TOKEN_LIFETIME);
            keys.active().sign(&claims)
        }
        Some(IdTokenTamper::WrongNonce) => {
            claims["nonce"] = json!("not-the-nonce-you-sent");
            keys.active().sign(&claims)
        }
        Some(IdTokenTamper::AlgNone) => {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            Ok(format!("{header}.{payload}."))
        }
        Some(IdTokenTamper::Hs256WithClientSecret) => {
            let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            jsonwebtoken::EncodingKey::from_secret(client.secret.as_bytes())
                .and_then(|key| jsonwebtoken::encode(&header, &claims, &key))
                .map_err(anyhow::Error::from)
        }
    };
    signed.map_err(|_| server_error())
}

/// Verifies a token issued by this server. `allow_expired` for logout's `id_token_hint`.
fn verify_own_token(
    state: &SimState,
    token: &str,
    audience: Option<&str>,
    allow_expired: bool,
) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = state.keys().decoding_key(header.kid.as_deref()?)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[state.issuer()]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    validation.validate_exp = !allow_expired;
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).ok()?;
    Some(data.claims)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn www_authenticate(status: StatusCode, value: &str) -> Response {
    (status, [(header::WWW_AUTHENTICATE, value.to_string())]).into_response()
}

async fn userinfo(State(state): State<SimState>, headers: HeaderMap) -> Response {
    let claims = bearer(&headers)
        .and_then(|t| verify_own_token(&state, t, Some(AUDIENCE), false))
        .filter(|c| {
            c["jti"]
                .as_str()
                .is_some_and(|jti| !state.store().revoked_jti.contains(jti))
        });
    let Some(claims) = claims else {
        return www_authenticate(
            StatusCode::UNAUTHORIZED,
            r#"Bearer error="invalid_token", error_description="The access token is invalid""#,
        );
    };
    let scopes: Vec<String> = serde_json::from_value(claims["scp"].clone()).unwrap_or_default();
    if !["profile", "email", "address", "phone"]
        .iter()
        .any(|s| scopes.iter().any(|x| x == s))
    {
        return www_authenticate(
            StatusCode::FORBIDDEN,
            r#"Bearer error="insufficient_scope", error_description="The access token must provide access to at least one of these scopes - profile, email, address or phone""#,
        );
    }
    let user = claims["uid"]
        .as_str()
        .and_then(|uid| state.store().users.get(uid).cloned());
    let Some(user) = user else {
        return www_authenticate(
            StatusCode::UNAUTHORIZED,
            r#"Bearer error="invalid_token", error_description="The access token is invalid""#,
        );
    };
    let mut body = json!({ "sub": user.id });
    profile_claims(&mut body, &state, &user, &scopes);
    axum::Json(body).into_response()
}

async fn logout_get(
    State(state): State<SimState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    logout(state, headers, params)
}

async fn logout_post(
    State(state): State<SimState>,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    logout(state, headers, params)
}

fn logout(state: SimState, headers: HeaderMap, params: HashMap<String, String>) -> Response {
    let Some(hint) = params.get("id_token_hint") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The 'id_token_hint' parameter is required.",
        );
    };
    let Some(claims) = verify_own_token(&state, hint, None, true) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The 'id_token_hint' parameter is invalid.",
        );
    };
    let client_id = claims["aud"].as_str().unwrap_or_default().to_string();
    let sub = claims["sub"].as_str().unwrap_or_default().to_string();
    let client = state.store().clients.get(&client_id).cloned();
    let target = match (params.get("post_logout_redirect_uri"), client) {
        (Some(uri), Some(client)) if client.post_logout_redirect_uris.contains(uri) => {
            Some(uri.clone())
        }
        (Some(_), _) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The 'post_logout_redirect_uri' parameter must be a Logout redirect URI in the client app settings.",
            );
        }
        (None, _) => None,
    };
    let mut clear_cookie = None;
    if let Some((sid, session)) = sso_session(&state, &headers)
        && session.user_id == sub
    {
        state.store().sso_sessions.remove(&sid);
        clear_cookie = Some(format!(
            "{SSO_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        ));
    }
    let mut response = match target {
        Some(uri) => {
            let st = params.get("state").cloned();
            let pairs: Vec<(&str, &str)> = st.iter().map(|s| ("state", s.as_str())).collect();
            redirect_with(&uri, &pairs)
        }
        None => Redirect::to(&format!("{}/", state.base_url())).into_response(),
    };
    if let Some(cookie) = clear_cookie
        && let Ok(v) = cookie.parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn revoke(
    State(state): State<SimState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let client = match authenticate_client(&state, &headers, &form) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let token = form.get("token").cloned().unwrap_or_default();
    let mut store = state.store();
    if let Some(grant) = store.refresh_tokens.get_mut(&token) {
        if grant.client_id == client.id {
            grant.revoked = true;
        }
    } else {
        drop(store);
        if let Some(claims) = verify_own_token(&state, &token, None, true)
            && claims["cid"].as_str() == Some(client.id.as_str())
            && let Some(jti) = claims["jti"].as_str()
        {
            state.store().revoked_jti.insert(jti.to_string());
        }
    }
    StatusCode::OK.into_response()
}

async fn introspect(
    State(state): State<SimState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let client = match authenticate_client(&state, &headers, &form) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let token = form.get("token").cloned().unwrap_or_default();
    let refresh = state.store().refresh_tokens.get(&token).cloned();
    if let Some(grant) = refresh {
        if grant.revoked || grant.client_id != client.id {
            return axum::Json(json!({ "active": false })).into_response();
        }
        let user = state.store().users.get(&grant.user_id).cloned();
        return axum::Json(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": grant.scopes.join(" "),
            "client_id": grant.client_id,
            "username": user.as_ref().map(|u| u.login.clone()),
            "uid": grant.user_id,
            "iss": state.issuer(),
        }))
        .into_response();
    }
    let claims = verify_own_token(&state, &token, None, false).filter(|c| {
        c["jti"]
            .as_str()
            .is_some_and(|jti| !state.store().revoked_jti.contains(jti))
    });
    let Some(c) = claims else {
        return axum::Json(json!({ "active": false })).into_response();
    };
    let scope = c["scp"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut body = json!({
        "active": true,
        "token_type": "Bearer",
        "scope": scope,
        "client_id": c["cid"],
        "exp": c["exp"],
        "iat": c["iat"],
        "sub": c["sub"],
        "aud": c["aud"],
        "iss": c["iss"],
        "jti": c["jti"],
    });
    if let Some(uid) = c.get("uid") {
        body["uid"] = uid.clone();
        body["username"] = c["sub"].clone();
    }
    axum::Json(body).into_response()
}
