//! `/api/v1/users`: search, read, create, partial profile update, lifecycle, delete, sessions
//! and group membership. Every handler: extract → build the input → one `Ops` call → JSON.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::dto::{ApiUser, Body, Outcome, Params, Reason, etag, if_match};
use super::idempotency::{self, Stored};
use super::problem::{ApiProblem, Problem};
use super::{ApiState, Service};
use crate::auth::extract::Require;
use crate::auth::policy::{Permission, perm};
use crate::okta::models::{Group, UserStatus};
use crate::ops::groups::Membership;
use crate::ops::lifecycle::UserAction;
use crate::ops::reads::UserSearch;
use crate::ops::users::{CreateUser, ProfileUpdate};
use crate::ops::{Op, UserRef};

type ApiResult = Result<Response, ApiProblem>;

pub fn user_ref(value: &str) -> Result<UserRef, ApiProblem> {
    UserRef::parse(value).map_err(ApiProblem::not_found)
}

/// `GET /users` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Email, login, name prefix or Okta id.
    #[serde(default)]
    pub q: String,
    /// An Okta status, e.g. `ACTIVE`.
    #[serde(default)]
    pub status: String,
    /// An Okta group id: only its members.
    #[serde(default)]
    pub group: String,
    /// 1–200 (default: the portal's page size).
    pub limit: Option<u32>,
    /// The cursor from the previous page's `Link: rel="next"`.
    pub after: Option<String>,
}

fn search_input(query: &SearchQuery, page_size: u32) -> Result<UserSearch, ApiProblem> {
    let mut errors = BTreeMap::new();
    let limit = query.limit.unwrap_or(page_size);
    if !(1..=200).contains(&limit) {
        errors.insert(
            "limit".to_string(),
            "limit must be between 1 and 200.".to_string(),
        );
    }
    let status = (!query.status.is_empty()).then(|| UserStatus::parse(&query.status));
    if status == Some(None) {
        errors.insert("status".to_string(), "Not an Okta user status.".to_string());
    }
    if !errors.is_empty() {
        return Err(ApiProblem::invalid(errors));
    }
    Ok(UserSearch {
        q: query.q.clone(),
        status: status.flatten(),
        group: (!query.group.is_empty()).then(|| query.group.clone()),
        limit,
        after: query.after.clone().filter(|a| !a.is_empty()),
    })
}

/// `Link: <…>; rel="next"` for the same query with Okta's cursor.
pub fn next_link(api: &ApiState, path: &str, pairs: &[(&str, String)], after: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    query.append_pair("after", after);
    let base = api.public_base.as_str().trim_end_matches('/');
    format!("<{base}{path}?{}>; rel=\"next\"", query.finish())
}

pub fn with_link(mut response: Response, link: Option<String>) -> Response {
    if let Some(v) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, v);
    }
    response
}

/// Search users (cursor paging like Okta's).
#[utoipa::path(get, path = "/users", tag = "users", params(SearchQuery),
    security(("bearer" = ["admin.users.read"])),
    responses((status = 200, description = "One page; `Link: rel=\"next\"` when there is more", body = [ApiUser]),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
pub async fn search(
    State(api): State<ApiState>,
    service: Require<perm::UsersRead, Service>,
    Params(query): Params<SearchQuery>,
) -> ApiResult {
    let input = search_input(&query, api.page_size)?;
    let page = api.ops.search_users(&service.principal, &input).await?;
    let pairs = [
        ("q", query.q.clone()),
        ("status", query.status.clone()),
        ("group", query.group.clone()),
        ("limit", input.limit.to_string()),
    ];
    let link = page
        .next_after
        .as_deref()
        .map(|a| next_link(&api, "/api/v1/users", &pairs, a));
    let users: Vec<ApiUser> = page.users.into_iter().map(ApiUser::from).collect();
    Ok(with_link(axum::Json(users).into_response(), link))
}

fn with_etag(mut response: Response, user: &crate::okta::models::User) -> Response {
    if let Some(v) = etag(user).and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// One user by id or login; `ETag` for `If-Match` on PATCH.
#[utoipa::path(get, path = "/users/{id}", tag = "users",
    params(("id" = String, Path, description = "Okta user id or login")),
    security(("bearer" = ["admin.users.read"])),
    responses((status = 200, body = ApiUser, headers(("ETag" = String))), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_user(
    State(api): State<ApiState>,
    service: Require<perm::UsersRead, Service>,
    Path(id): Path<String>,
) -> ApiResult {
    let user = api
        .ops
        .get_user(&service.principal, &user_ref(&id)?)
        .await?;
    let response = axum::Json(ApiUser::from(user.clone())).into_response();
    Ok(with_etag(response, &user))
}

/// `POST /users` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    pub profile: NewProfile,
    /// `email` (Okta emails an activation link) or `password` (give `password`).
    #[serde(default = "email_credential")]
    #[schema(example = "email")]
    pub credential: String,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    #[serde(default = "yes")]
    pub activate: bool,
    /// Group names (or ids) from `users.create_groups`.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub ticket: String,
}

fn email_credential() -> String {
    "email".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewProfile {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub mobile_phone: String,
}

fn field_problem(field: &str, message: impl Into<String>) -> ApiProblem {
    ApiProblem::invalid(BTreeMap::from([(field.to_string(), message.into())]))
}

fn password_of(body: &CreateBody) -> Result<Option<SecretString>, ApiProblem> {
    match (body.credential.as_str(), &body.password) {
        ("email", None) => Ok(None),
        ("password", Some(p)) => Ok(Some(SecretString::from(p.clone()))),
        ("password", None) => Err(field_problem("password", "Give the password.")),
        _ => Err(field_problem(
            "credential",
            "credential is email (no password) or password (with password).",
        )),
    }
}

fn group_ids(body: &CreateBody, allowed: &[Group]) -> Result<Vec<String>, ApiProblem> {
    let known = |g: &String| allowed.iter().find(|a| &a.profile.name == g || &a.id == g);
    body.groups
        .iter()
        .map(|g| match known(g) {
            Some(group) => Ok(group.id.clone()),
            None => Err(field_problem(
                "groups",
                format!("\"{g}\" is not one of the groups new users may join."),
            )),
        })
        .collect()
}

fn create_input(body: &CreateBody, allowed: &[Group]) -> Result<CreateUser, ApiProblem> {
    let p = &body.profile;
    Ok(CreateUser {
        first_name: p.first_name.trim().to_string(),
        last_name: p.last_name.trim().to_string(),
        email: p.email.trim().to_string(),
        login: p.login.trim().to_string(),
        mobile_phone: p.mobile_phone.trim().to_string(),
        password: password_of(body)?,
        group_ids: group_ids(body, allowed)?,
        activate: body.activate,
    })
}

async fn create_once(
    api: &ApiState,
    principal: &crate::auth::principal::Principal,
    body: &CreateBody,
    why: &crate::ops::Why,
) -> Result<Stored, ApiProblem> {
    let allowed = api.ops.create_groups().await.map_err(ApiProblem::from)?;
    let input = create_input(body, &allowed)?;
    let done = api.ops.create_user(principal, input, &allowed, why).await?;
    let base = api.public_base.as_str().trim_end_matches('/');
    let location = format!("{base}/api/v1/users/{}", done.value.id);
    let body = serde_json::to_value(ApiUser::from(done.value)).unwrap_or(Value::Null);
    Ok(Stored {
        status: StatusCode::CREATED,
        location: Some(location),
        body,
    })
}

/// Create a user (`Idempotency-Key` supported).
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 h")),
    security(("bearer" = ["admin.users.create"])),
    responses((status = 201, body = ApiUser, headers(("Location" = String))), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
pub async fn create(
    State(api): State<ApiState>,
    service: Require<perm::UsersCreate, Service>,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> ApiResult {
    let principal = &service.principal;
    let why = api.why(&body.reason, &body.ticket)?;
    let secret = idempotency::secret_fingerprint(&headers, body.password.as_deref());
    let fingerprint = (&body, secret);
    let work = {
        let (api, principal, body) = (api.clone(), principal.clone(), body.clone());
        async move { create_once(&api, &principal, &body, &why).await }
    };
    idempotency::once(
        &api,
        &principal.subject,
        &headers,
        &fingerprint,
        Stored::clone,
        work,
    )
    .await
}

/// `PATCH /users/{id}` body: only the attributes to change (`null` or `""` removes a value).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[schema(value_type = Object)]
    pub profile: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub ticket: String,
}

fn expected_version(headers: &HeaderMap) -> Result<String, ApiProblem> {
    let value = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    match value {
        Some(v) if !v.trim().is_empty() => Ok(if_match(v)),
        _ => Err(ApiProblem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "Send If-Match with the ETag from GET /api/v1/users/{id}.",
        )),
    }
}

/// Partial profile update; requires `If-Match`.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = PatchBody,
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag from GET")),
    security(("bearer" = ["admin.users.profile"])),
    responses((status = 200, body = ApiUser, headers(("ETag" = String))), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem), (status = 428, body = Problem)))]
pub async fn patch(
    State(api): State<ApiState>,
    service: Require<perm::UsersProfile, Service>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<PatchBody>,
) -> ApiResult {
    let expected = expected_version(&headers)?;
    let why = api.why(&body.reason, &body.ticket)?;
    let changes = body
        .profile
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let update = ProfileUpdate {
        user: user_ref(&id)?,
        changes,
        expected_last_updated: Some(expected),
    };
    let done = api
        .ops
        .update_profile(&service.principal, &update, &why)
        .await?;
    let user = done.value;
    Ok(with_etag(
        axum::Json(ApiUser::from(user.clone())).into_response(),
        &user,
    ))
}

/// Lifecycle body.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionBody {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub ticket: String,
    /// activate, reactivate, reset_password: let Okta email the user (default); `false`
    /// returns a one-time link instead.
    pub send_email: Option<bool>,
    /// Clear sessions: also revoke the OAuth tokens issued to the user.
    #[serde(default)]
    pub oauth_tokens: bool,
}

fn lifecycle_op(name: &str) -> Option<Op> {
    Some(match name {
        "activate" => Op::Activate,
        "reactivate" => Op::Reactivate,
        "deactivate" => Op::Deactivate,
        "suspend" => Op::Suspend,
        "unsuspend" => Op::Unsuspend,
        "unlock" => Op::Unlock,
        "reset_password" => Op::ResetPassword,
        "expire_password" => Op::ExpirePassword,
        _ => return None,
    })
}

async fn act(api: &ApiState, service: &Service, op: Op, id: &str, body: ActionBody) -> ApiResult {
    let why = api.why(&body.reason, &body.ticket)?;
    let input = UserAction {
        user: user_ref(id)?,
        send_email: body.send_email.unwrap_or(true),
        revoke_tokens: body.oauth_tokens,
    };
    let done = api
        .ops
        .user_action(&service.principal, op, &input, &why)
        .await?;
    Ok(axum::Json(Outcome::from(&done)).into_response())
}

/// A lifecycle operation: activate, reactivate, deactivate, suspend, unsuspend, unlock,
/// reset_password, expire_password (each needs its own permission).
#[utoipa::path(post, path = "/users/{id}/lifecycle/{operation}", tag = "lifecycle", request_body = ActionBody,
    params(("id" = String, Path), ("operation" = String, Path, description = "activate | reactivate | deactivate | suspend | unsuspend | unlock | reset_password | expire_password")),
    security(("bearer" = ["admin.users.lifecycle"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Okta does not offer it in the user's status"), (status = 422, body = Problem)))]
pub async fn lifecycle(
    State(api): State<ApiState>,
    LifecycleAccess(service, op): LifecycleAccess,
    Path((id, _operation)): Path<(String, String)>,
    Body(body): Body<ActionBody>,
) -> ApiResult {
    act(&api, &service, op, &id, body).await
}

/// The lifecycle operation named in the path, and the service holding its permission
/// (checked, and a refusal recorded, by `Require` as for every other route).
pub struct LifecycleAccess(pub Service, pub Op);

impl FromRequestParts<ApiState> for LifecycleAccess {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let name = parts
            .uri
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(op) = lifecycle_op(&name) else {
            let detail = format!("There is no lifecycle operation \"{name}\".");
            return Err(ApiProblem::not_found(detail).into_response());
        };
        macro_rules! require {
            ($($p:ident),*) => {
                match op.permission() {
                    $(Permission::$p => Require::<perm::$p, Service>::from_request_parts(parts, state).await.map(|r| r.0),)*
                    _ => Err(crate::error::AppError::NotFound),
                }
            };
        }
        let service = require!(
            UsersReactivate,
            UsersDeactivate,
            UsersSuspend,
            UsersUnsuspend,
            UsersUnlock,
            UsersResetPassword,
            UsersExpirePassword
        );
        service
            .map(|s| LifecycleAccess(s, op))
            .map_err(IntoResponse::into_response)
    }
}

/// Delete a deactivated user permanently.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", request_body = ActionBody, params(("id" = String, Path)),
    security(("bearer" = ["admin.users.delete"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "Not deactivated")))]
pub async fn delete(
    State(api): State<ApiState>,
    service: Require<perm::UsersDelete, Service>,
    Path(id): Path<String>,
    Body(body): Body<ActionBody>,
) -> ApiResult {
    act(&api, &service, Op::Delete, &id, body).await
}

/// End every Okta session of the user (`oauthTokens: true` also revokes their tokens).
#[utoipa::path(delete, path = "/users/{id}/sessions", tag = "users", request_body = ActionBody, params(("id" = String, Path)),
    security(("bearer" = ["admin.users.sessions"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn clear_sessions(
    State(api): State<ApiState>,
    service: Require<perm::UsersSessions, Service>,
    Path(id): Path<String>,
    Body(body): Body<ActionBody>,
) -> ApiResult {
    act(&api, &service, Op::ClearSessions, &id, body).await
}

async fn membership(
    api: &ApiState,
    service: &Service,
    ids: (String, String),
    member: bool,
    body: Reason,
) -> ApiResult {
    let why = body.why(api.ops.why_rules())?;
    let change = Membership {
        user: user_ref(&ids.0)?,
        group_id: ids.1,
    };
    let done = api
        .ops
        .set_membership(&service.principal, &change, member, &why)
        .await?;
    Ok(axum::Json(Outcome::from(&done)).into_response())
}

/// Add the user to an allow-listed group.
#[utoipa::path(put, path = "/users/{id}/groups/{groupId}", tag = "groups", request_body = Reason,
    params(("id" = String, Path), ("groupId" = String, Path)), security(("bearer" = ["admin.users.groups"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn add_group(
    State(api): State<ApiState>,
    service: Require<perm::UsersGroups, Service>,
    Path(ids): Path<(String, String)>,
    Body(body): Body<Reason>,
) -> ApiResult {
    membership(&api, &service, ids, true, body).await
}

/// Remove the user from an allow-listed group.
#[utoipa::path(delete, path = "/users/{id}/groups/{groupId}", tag = "groups", request_body = Reason,
    params(("id" = String, Path), ("groupId" = String, Path)), security(("bearer" = ["admin.users.groups"])),
    responses((status = 200, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove_group(
    State(api): State<ApiState>,
    service: Require<perm::UsersGroups, Service>,
    Path(ids): Path<(String, String)>,
    Body(body): Body<Reason>,
) -> ApiResult {
    membership(&api, &service, ids, false, body).await
}
