//! The Users API (OKTA-FACTS.md §5, §6): list/find/filter/search, get, create, update,
//! lifecycle operations, delete, sessions, and the groups of a user.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::api::{ApiContext, ApiError, ApiResult, Params, collection, empty_ok};
use super::expr::{Expr, Op, resolve_path};
use super::factors;
use super::groups::group_json;
use super::links::{self, Purpose};
use super::store::{SimUser, Store, UserStatus, okta_id};
use super::syslog::{self, EventSource, group_target, user_target};
use super::{SimState, random_token};

/// ISO 8601 UTC with milliseconds, e.g. `2024-05-01T12:34:56.000Z`.
pub fn timestamp(t: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn opt_timestamp(t: Option<OffsetDateTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(timestamp(t)))
}

/// The id of the default user type.
pub fn user_type_id() -> String {
    okta_id("oty", 7)
}

fn schema_id() -> String {
    okta_id("osc", 7)
}

fn link(href: String) -> Value {
    json!({ "href": href })
}

fn post_link(href: String) -> Value {
    json!({ "href": href, "method": "POST" })
}

/// The `_links` of a single user: lifecycle links depend on the status (OKTA-FACTS.md §5.1),
/// `resetFactors` also on the user having enrolled at least one factor.
fn user_links(u: &SimUser, base: &str, factors: usize) -> Value {
    use UserStatus::*;
    let me = format!("{base}/api/v1/users/{}", u.id);
    let lifecycle = |op: &str| post_link(format!("{me}/lifecycle/{op}"));
    let credentials = |op: &str| post_link(format!("{me}/credentials/{op}"));
    let mut links = Map::new();
    let s = u.status;
    links.insert("self".into(), link(me.clone()));
    if matches!(s, Staged | Deprovisioned) {
        links.insert("activate".into(), lifecycle("activate"));
    }
    if matches!(s, Provisioned | Recovery) {
        links.insert("reactivate".into(), lifecycle("reactivate"));
    }
    if s == Active {
        links.insert("suspend".into(), lifecycle("suspend"));
    }
    if s == Suspended {
        links.insert("unsuspend".into(), lifecycle("unsuspend"));
    }
    if s == LockedOut {
        links.insert("unlock".into(), lifecycle("unlock"));
    }
    if matches!(s, Active | PasswordExpired | LockedOut | Recovery) {
        links.insert("resetPassword".into(), lifecycle("reset_password"));
    }
    if matches!(s, Active | PasswordExpired) {
        links.insert("expirePassword".into(), lifecycle("expire_password"));
    }
    if factors > 0 && can_reset_factors(s) {
        links.insert("resetFactors".into(), lifecycle("reset_factors"));
    }
    let okta_credentials = u.provider_type == "OKTA";
    if okta_credentials && s == Active && u.has_password() {
        links.insert("forgotPassword".into(), credentials("forgot_password"));
    }
    if okta_credentials && matches!(s, Active | PasswordExpired) && u.has_password() {
        links.insert("changePassword".into(), credentials("change_password"));
        links.insert(
            "changeRecoveryQuestion".into(),
            credentials("change_recovery_question"),
        );
    }
    if s != Deprovisioned {
        links.insert("deactivate".into(), lifecycle("deactivate"));
    }
    links.insert(
        "type".into(),
        link(format!("{base}/api/v1/meta/types/user/{}", user_type_id())),
    );
    links.insert(
        "schema".into(),
        link(format!("{base}/api/v1/meta/schemas/user/{}", schema_id())),
    );
    Value::Object(links)
}

fn credentials_json(u: &SimUser) -> Value {
    let mut credentials = Map::new();
    if u.has_password() && u.provider_type == "OKTA" {
        credentials.insert("password".into(), json!({}));
    }
    if let Some(question) = &u.recovery_question {
        credentials.insert("recovery_question".into(), json!({ "question": question }));
    }
    credentials.insert(
        "provider".into(),
        json!({ "type": u.provider_type, "name": u.provider_name }),
    );
    Value::Object(credentials)
}

/// Whether `reset_factors` is allowed from this status.
fn can_reset_factors(s: UserStatus) -> bool {
    !matches!(
        s,
        UserStatus::Staged | UserStatus::Provisioned | UserStatus::Deprovisioned
    )
}

/// A user as Okta renders it: `Some(n)` for a single user with `n` enrolled factors (every
/// link), `None` as a collection member (only `_links.self`).
pub fn user_json(u: &SimUser, base: &str, factors: Option<usize>) -> Value {
    let links = match factors {
        Some(n) => user_links(u, base, n),
        None => json!({ "self": link(format!("{base}/api/v1/users/{}", u.id)) }),
    };
    json!({
        "id": u.id,
        "status": u.status.as_str(),
        "created": timestamp(u.created),
        "activated": opt_timestamp(u.activated),
        "statusChanged": opt_timestamp(u.status_changed),
        "lastLogin": opt_timestamp(u.last_login),
        "lastUpdated": timestamp(u.last_updated),
        "passwordChanged": opt_timestamp(u.password_changed),
        "type": { "id": user_type_id() },
        "profile": Value::Object(u.profile_json()),
        "credentials": credentials_json(u),
        "_links": links,
    })
}

fn find<'a>(store: &'a Store, id_or_login: &str) -> Result<&'a SimUser, ApiError> {
    store
        .find_user(id_or_login)
        .ok_or_else(|| ApiError::user_not_found(id_or_login))
}

fn find_id(store: &Store, id_or_login: &str) -> Result<String, ApiError> {
    find(store, id_or_login).map(|u| u.id.clone())
}

fn user_mut<'a>(store: &'a mut Store, id: &str) -> Result<&'a mut SimUser, ApiError> {
    store
        .users
        .get_mut(id)
        .ok_or_else(|| ApiError::user_not_found(id))
}

/// Sets the status; `statusChanged` moves only when the status does.
fn set_status(u: &mut SimUser, status: UserStatus, now: OffsetDateTime) {
    if u.status != status {
        u.status = status;
        u.status_changed = Some(now);
    }
    u.last_updated = now;
}

// ---------------------------------------------------------------------------------------
// GET /api/v1/users

const MAX_USER_LIMIT: usize = 200;
const FILTER_ATTRIBUTES: &[&str] = &[
    "status",
    "lastUpdated",
    "id",
    "profile.login",
    "profile.email",
    "profile.firstName",
    "profile.lastName",
];
const SEARCH_TOP_LEVEL: &[&str] = &[
    "id",
    "status",
    "created",
    "activated",
    "statusChanged",
    "lastUpdated",
    "type.id",
];
const CO_ATTRIBUTES: &[&str] = &[
    "profile.firstName",
    "profile.lastName",
    "profile.email",
    "profile.login",
];

fn parse_search(search: &str) -> Result<Expr, ApiError> {
    let expr = Expr::parse(search).map_err(|_| ApiError::invalid_search())?;
    expr.visit(
        &mut |attr, op, _| {
            let known = SEARCH_TOP_LEVEL.contains(&attr)
                || attr
                    .strip_prefix("profile.")
                    .is_some_and(|name| !name.is_empty());
            let op_ok = match op {
                Op::Eq | Op::Sw | Op::Pr | Op::Gt | Op::Ge | Op::Lt | Op::Le => true,
                Op::Co => CO_ATTRIBUTES.contains(&attr),
                Op::Ne | Op::Ew => false,
            };
            if known && op_ok {
                Ok(())
            } else {
                Err(String::new())
            }
        },
        false,
    )
    .map_err(|_| ApiError::invalid_search())?;
    Ok(expr)
}

fn parse_filter(filter: &str) -> Result<Expr, ApiError> {
    let expr = Expr::parse(filter).map_err(|_| ApiError::invalid_search())?;
    expr.visit(
        &mut |attr, op, _| {
            let ok = FILTER_ATTRIBUTES.contains(&attr)
                && (op == Op::Eq
                    || (attr == "lastUpdated" && matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le)));
            if ok { Ok(()) } else { Err(String::new()) }
        },
        false,
    )
    .map_err(|_| ApiError::invalid_search())?;
    Ok(expr)
}

/// A sort key: present values before absent ones, compared case-insensitively.
fn sort_key(v: &Value, attr: &str) -> Option<String> {
    resolve_path(v, attr).into_iter().find_map(|x| match x {
        Value::Null => None,
        Value::String(s) => Some(s.to_lowercase()),
        other => Some(other.to_string()),
    })
}

fn compare_keys(
    a: &(Option<String>, String),
    b: &(Option<String>, String),
    desc: bool,
) -> Ordering {
    let by_key = match (&a.0, &b.0) {
        (Some(x), Some(y)) => {
            if desc {
                y.cmp(x)
            } else {
                x.cmp(y)
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_key.then_with(|| a.1.cmp(&b.1))
}

fn encode_sorted_cursor(key: &(Option<String>, String)) -> String {
    URL_SAFE_NO_PAD.encode(json!([key.0, key.1]).to_string())
}

fn decode_sorted_cursor(cursor: &str) -> Option<(Option<String>, String)> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    let key = match &v[0] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => return None,
    };
    Some((key, v[1].as_str()?.to_string()))
}

fn looks_like_user_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("00u") && s.chars().all(|c| c.is_ascii_alphanumeric())
}

pub async fn list_users(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let search = params.get("search");
    let filter = params.get("filter");
    let q = params.get("q");
    if search.is_some() && filter.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000033",
            "Bad request. Can't specify a search query and filter in the same request.",
        ));
    }
    let default_limit = if q.is_some() && search.is_none() && filter.is_none() {
        10
    } else {
        MAX_USER_LIMIT
    };
    let limit = match params.get("limit") {
        None => default_limit,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => (n as usize).min(MAX_USER_LIMIT),
            _ => return Err(ApiError::invalid_paging()),
        },
    };
    let expr = match (search, filter) {
        (Some(s), _) => Some((parse_search(s)?, true)),
        (None, Some(f)) => Some((parse_filter(f)?, false)),
        (None, None) => None,
    };
    let sort_by = search.and(params.get("sortBy"));
    let desc = match (sort_by, params.get("sortOrder")) {
        (Some(_), Some(o)) if o.eq_ignore_ascii_case("desc") => true,
        (Some(_), Some(o)) if o.eq_ignore_ascii_case("asc") => false,
        (Some(_), Some(_)) => return Err(ApiError::invalid_search()),
        _ => false,
    };
    let base = state.base_url().to_string();
    let find_mode = q.is_some() && expr.is_none();

    let store = state.store();
    let mut rows: Vec<((Option<String>, String), Value)> = Vec::new();
    for u in store.users.values() {
        let v = user_json(u, &base, None);
        let keep = match &expr {
            Some((e, case_insensitive)) => {
                e.eval(&|path| resolve_path(&v, path), *case_insensitive)
            }
            None => {
                u.status != UserStatus::Deprovisioned
                    && q.is_none_or(|q| {
                        let q = q.to_lowercase();
                        [&u.first_name, &u.last_name, &u.email]
                            .iter()
                            .any(|field| field.to_lowercase().starts_with(&q))
                    })
            }
        };
        if keep {
            let key = sort_by.and_then(|attr| sort_key(&v, attr));
            rows.push(((key, u.id.clone()), v));
        }
    }
    drop(store);
    rows.sort_by(|a, b| compare_keys(&a.0, &b.0, desc));

    if !find_mode && let Some(after) = params.get("after") {
        let cursor = if sort_by.is_some() {
            decode_sorted_cursor(after).ok_or_else(ApiError::invalid_paging)?
        } else if looks_like_user_id(after) {
            (None, after.to_string())
        } else {
            return Err(ApiError::invalid_paging());
        };
        rows.retain(|(key, _)| compare_keys(key, &cursor, desc) == Ordering::Greater);
    }
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = match (more && !find_mode, rows.last()) {
        (true, Some((key, _))) => {
            let cursor = if sort_by.is_some() {
                encode_sorted_cursor(key)
            } else {
                key.1.clone()
            };
            Some(params.with_cursor(&cursor, limit))
        }
        _ => None,
    };
    let items = rows.into_iter().map(|(_, v)| v).collect();
    Ok(collection(&state, &ctx, items, next))
}

// ---------------------------------------------------------------------------------------
// GET /api/v1/users/{id}, /api/v1/users/{id}/groups

pub async fn get_user(State(state): State<SimState>, Path(id): Path<String>) -> ApiResult {
    let store = state.store();
    let user = find(&store, &id)?;
    let factors = store.factor_count(&user.id);
    Ok(axum::Json(user_json(user, state.base_url(), Some(factors))).into_response())
}

pub async fn user_groups(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = state.store();
    let user = find(&store, &id)?;
    let items: Vec<Value> = store
        .groups
        .values()
        .filter(|g| user.group_ids.contains(&g.id))
        .map(|g| group_json(g, state.base_url()))
        .collect();
    drop(store);
    Ok(collection(&state, &ctx, items, None))
}

// ---------------------------------------------------------------------------------------
// Profile validation

/// The properties of the default user schema (OKTA-FACTS.md §5.2).
const PROFILE_ATTRIBUTES: &[&str] = &[
    "login",
    "email",
    "firstName",
    "lastName",
    "secondEmail",
    "mobilePhone",
    "primaryPhone",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "title",
    "displayName",
    "nickName",
    "profileUrl",
    "streetAddress",
    "city",
    "state",
    "zipCode",
    "countryCode",
    "postalAddress",
    "preferredLanguage",
    "locale",
    "timezone",
    "userType",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "managerId",
    "manager",
];

/// Lower case without diacritics: how Okta compares logins for uniqueness.
pub fn fold_login(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
            'ď' | 'đ' => 'd',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
            'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
            'ĥ' | 'ħ' => 'h',
            'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
            'ĵ' => 'j',
            'ķ' => 'k',
            'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
            'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
            'ŕ' | 'ŗ' | 'ř' => 'r',
            'ś' | 'ŝ' | 'ş' | 'š' => 's',
            'ţ' | 'ť' | 'ŧ' => 't',
            'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
            'ŵ' => 'w',
            'ý' | 'ÿ' | 'ŷ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            other => other,
        })
        .collect()
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// The dotted path of the first string that holds a character outside the Basic
/// Multilingual Plane (4 bytes in UTF-8).
fn four_byte_field(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) => s
            .chars()
            .any(|c| c.len_utf8() == 4)
            .then(|| path.to_string()),
        Value::Array(items) => items.iter().find_map(|i| four_byte_field(i, path)),
        Value::Object(map) => map.iter().find_map(|(k, child)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            four_byte_field(child, &p)
        }),
        _ => None,
    }
}

fn reject_four_byte(body: &Value) -> Result<(), ApiError> {
    match four_byte_field(body, "") {
        None => Ok(()),
        Some(path) => {
            let field = path.rsplit('.').next().unwrap_or(&path).to_string();
            Err(ApiError::validation(vec![(
                field,
                "The field contains characters that are not supported (4-byte UTF-8 characters are not allowed)".into(),
            )]))
        }
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Validates a complete profile; `existing` is the id of the user being updated.
fn validate_profile(
    store: &Store,
    profile: &Map<String, Value>,
    existing: Option<&str>,
) -> Result<(), ApiError> {
    let mut causes: Vec<(String, String)> = Vec::new();
    for (name, value) in profile {
        if !PROFILE_ATTRIBUTES.contains(&name.as_str()) {
            causes.push((
                name.clone(),
                format!("Property name '{name}' is not defined in profile"),
            ));
        } else if !matches!(value, Value::String(_) | Value::Null) {
            causes.push((name.clone(), "Invalid value: must be a string".into()));
        }
    }
    let length = |field: &str, min: usize, max: usize, causes: &mut Vec<(String, String)>| {
        if let Some(v) = text(profile.get(field)) {
            let n = v.chars().count();
            if n < min || n > max {
                causes.push((
                    field.to_string(),
                    format!("The field length must be between {min} and {max} characters"),
                ));
                return false;
            }
        }
        true
    };
    for field in ["login", "email", "firstName", "lastName"] {
        if text(profile.get(field)).is_none() {
            causes.push((field.to_string(), "The field cannot be left blank".into()));
        }
    }
    if length("login", 5, 100, &mut causes)
        && let Some(login) = text(profile.get("login"))
    {
        if !looks_like_email(&login) {
            causes.push((
                "login".into(),
                "Username must be in the form of an email address".into(),
            ));
        } else {
            let folded = fold_login(&login);
            let taken = store
                .users
                .values()
                .any(|u| Some(u.id.as_str()) != existing && fold_login(&u.login) == folded);
            if taken {
                causes.push((
                    "login".into(),
                    "An object with this field already exists in the current organization".into(),
                ));
            }
        }
    }
    if length("email", 5, 100, &mut causes)
        && let Some(email) = text(profile.get("email"))
        && !looks_like_email(&email)
    {
        causes.push(("email".into(), "Does not match required pattern".into()));
    }
    if let Some(second) = text(profile.get("secondEmail"))
        && !looks_like_email(&second)
    {
        causes.push((
            "secondEmail".into(),
            "Does not match required pattern".into(),
        ));
    }
    length("firstName", 1, 50, &mut causes);
    length("lastName", 1, 50, &mut causes);
    for field in ["mobilePhone", "primaryPhone"] {
        length(field, 0, 100, &mut causes);
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(causes))
    }
}

/// Writes a validated profile onto the user (every attribute: a full replacement).
fn apply_profile(u: &mut SimUser, profile: &Map<String, Value>) {
    let get = |k: &str| text(profile.get(k));
    u.login = get("login").unwrap_or_default();
    u.email = get("email").unwrap_or_default();
    u.first_name = get("firstName").unwrap_or_default();
    u.last_name = get("lastName").unwrap_or_default();
    u.mobile_phone = get("mobilePhone");
    u.second_email = get("secondEmail");
    u.department = get("department");
    u.profile_extra = profile
        .iter()
        .filter(|(k, v)| {
            !matches!(
                k.as_str(),
                "login"
                    | "email"
                    | "firstName"
                    | "lastName"
                    | "mobilePhone"
                    | "secondEmail"
                    | "department"
            ) && !v.is_null()
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<BTreeMap<_, _>>();
}

const PASSWORD_REQUIREMENTS: &str = "Password requirements were not met. Password requirements: at least 8 characters, a lowercase letter, an uppercase letter, a number, no parts of your username.";

fn password_policy(password: &str, login: &str) -> Result<(), ApiError> {
    match password_policy_message(password, login) {
        None => Ok(()),
        Some(message) => Err(ApiError::validation(vec![("password".into(), message)])),
    }
}

/// Why `password` fails the org's password policy for `login`, if it does.
pub(crate) fn password_policy_message(password: &str, login: &str) -> Option<String> {
    let local = login.split('@').next().unwrap_or_default().to_lowercase();
    let ok = password.chars().count() >= 8
        && password.chars().any(|c| c.is_lowercase())
        && password.chars().any(|c| c.is_uppercase())
        && password.chars().any(|c| c.is_ascii_digit())
        && (local.len() < 3 || !password.to_lowercase().contains(&local));
    (!ok).then(|| PASSWORD_REQUIREMENTS.to_string())
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            reject_four_byte(&Value::Object(map.clone()))?;
            Ok(map)
        }
        _ => Err(ApiError::malformed_body()),
    }
}

/// What the `credentials` member of a create/update body asks for.
#[derive(Default)]
struct CredentialsInput {
    /// `Some(Some(value))`: a clear password; `Some(None)`: a hash or hook.
    password: Option<Option<String>>,
    recovery: Option<(String, Option<String>)>,
    provider: Option<(String, String)>,
}

fn parse_credentials(body: &Map<String, Value>) -> Result<CredentialsInput, ApiError> {
    let mut out = CredentialsInput::default();
    let Some(credentials) = body.get("credentials") else {
        return Ok(out);
    };
    let Value::Object(credentials) = credentials else {
        return Err(ApiError::malformed_body());
    };
    if let Some(password) = credentials.get("password").and_then(Value::as_object) {
        if let Some(value) = password.get("value") {
            match value.as_str() {
                Some(v) => out.password = Some(Some(v.to_string())),
                None => {
                    return Err(ApiError::validation(vec![(
                        "password".into(),
                        "Invalid value".into(),
                    )]));
                }
            }
        } else if password.contains_key("hash") || password.contains_key("hook") {
            out.password = Some(None);
        }
    }
    if let Some(recovery) = credentials
        .get("recovery_question")
        .and_then(Value::as_object)
        && let Some(question) = text(recovery.get("question"))
    {
        let answer = text(recovery.get("answer"));
        if answer.as_ref().is_none_or(|a| a.chars().count() < 4) {
            return Err(ApiError::validation(vec![(
                "recovery_question".into(),
                "The security question answer must be at least 4 characters in length".into(),
            )]));
        }
        out.recovery = Some((question, answer));
    }
    if let Some(provider) = credentials.get("provider").and_then(Value::as_object) {
        let kind = text(provider.get("type")).unwrap_or_else(|| "OKTA".into());
        let name = text(provider.get("name")).unwrap_or_else(|| kind.clone());
        out.provider = Some((kind, name));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// POST /api/v1/users

pub async fn create_user(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    body: Bytes,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let activate = params.flag("activate", true)?;
    let provider = params.flag("provider", false)?;
    let next_login = params.get("nextLogin");
    let body = parse_body(&body)?;

    let group_ids: Vec<String> = match body.get("groupIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(ApiError::malformed_body)?,
        Some(_) => return Err(ApiError::malformed_body()),
    };
    if group_ids.len() > 20 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000093",
            "Target count limit exceeded",
        )
        .with_causes(vec!["The number of group targets is too large".into()]));
    }
    let credentials = parse_credentials(&body)?;
    let expire_now = match next_login {
        None => false,
        Some("changePassword") => true,
        Some(_) => {
            return Err(ApiError::validation(vec![(
                "nextLogin".into(),
                "Invalid value: must be changePassword".into(),
            )]));
        }
    };
    if expire_now {
        if !activate {
            let summary = "Could not create user. To create a user and expire their password immediately, `activate` must be true.";
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "E0000125", summary)
                .with_causes(vec![summary.into()]));
        }
        if credentials.password.is_none() {
            let summary = "Could not create user. To create a user and expire their password immediately, a password must be specified.";
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "E0000124", summary)
                .with_causes(vec![summary.into()]));
        }
    }
    let profile = match body.get("profile") {
        Some(Value::Object(p)) => p.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(ApiError::malformed_body()),
    };

    let mut store = state.store();
    validate_profile(&store, &profile, None)?;
    let login = text(profile.get("login")).unwrap_or_default();
    if let Some(Some(password)) = &credentials.password {
        password_policy(password, &login)?;
    }
    for gid in &group_ids {
        if !store.groups.contains_key(gid) {
            return Err(ApiError::not_found(gid, "UserGroup"));
        }
    }
    let federated = provider
        && credentials
            .provider
            .as_ref()
            .is_some_and(|(kind, _)| matches!(kind.as_str(), "FEDERATION" | "SOCIAL"));
    let has_password = !federated && credentials.password.is_some();
    let status = match (activate, federated, has_password, expire_now) {
        (false, _, _, _) => UserStatus::Staged,
        (true, true, _, _) => UserStatus::Active,
        (true, false, true, true) => UserStatus::PasswordExpired,
        (true, false, true, false) => UserStatus::Active,
        (true, false, false, _) => UserStatus::Provisioned,
    };
    let now = OffsetDateTime::now_utc();
    let id = store.new_user_id();
    let everyone = store
        .groups
        .values()
        .find(|g| g.kind == "BUILT_IN")
        .map(|g| g.id.clone());
    let mut memberships: Vec<String> = everyone.into_iter().collect();
    for gid in &group_ids {
        if !memberships.contains(gid) {
            memberships.push(gid.clone());
        }
    }
    let (provider_type, provider_name) = if federated {
        credentials
            .provider
            .clone()
            .unwrap_or_else(|| ("FEDERATION".into(), "FEDERATION".into()))
    } else {
        ("OKTA".into(), "OKTA".into())
    };
    let mut user = SimUser {
        id: id.clone(),
        status,
        created: now,
        activated: activate.then_some(now),
        status_changed: activate.then_some(now),
        last_login: None,
        last_updated: now,
        password_changed: has_password.then_some(now),
        login: String::new(),
        email: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        mobile_phone: None,
        department: None,
        password: if federated {
            None
        } else {
            credentials.password.clone().flatten()
        },
        group_ids: memberships,
        second_email: None,
        profile_extra: BTreeMap::new(),
        recovery_question: credentials.recovery.as_ref().map(|(q, _)| q.clone()),
        recovery_answer: credentials.recovery.as_ref().and_then(|(_, a)| a.clone()),
        provider_type,
        provider_name,
    };
    apply_profile(&mut user, &profile);
    let source = EventSource::from(&ctx);
    let target = user_target(&user);
    store.users.insert(id.clone(), user.clone());
    syslog::append(
        &mut store,
        &source,
        "user.lifecycle.create",
        vec![target.clone()],
    );
    if activate {
        syslog::append(
            &mut store,
            &source,
            "user.lifecycle.activate",
            vec![target.clone()],
        );
    }
    if status == UserStatus::Provisioned {
        // Okta mails the welcome (activation) link to a user created without a password.
        links::send(&mut store, state.base_url(), &id, Purpose::Activation);
    }
    for gid in &group_ids {
        if let Some(group) = store.groups.get_mut(gid) {
            group.last_membership_updated = now;
            let group_t = group_target(group);
            syslog::append(
                &mut store,
                &source,
                "group.user_membership.add",
                vec![target.clone(), group_t],
            );
        }
    }
    drop(store);
    Ok(axum::Json(user_json(&user, state.base_url(), Some(0))).into_response())
}

// ---------------------------------------------------------------------------------------
// POST /api/v1/users/{id} (partial), PUT /api/v1/users/{id} (full)

pub async fn update_user(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    update(&state, &ctx, &id, &body, false)
}

pub async fn replace_user(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    update(&state, &ctx, &id, &body, true)
}

fn update(state: &SimState, ctx: &ApiContext, id: &str, body: &Bytes, full: bool) -> ApiResult {
    let body = parse_body(body)?;
    let credentials = parse_credentials(&body)?;
    let mut store = state.store();
    let user = find(&store, id)?.clone();
    if user.status == UserStatus::Deprovisioned {
        return Err(ApiError::user_not_found(id));
    }
    let supplied = match body.get("profile") {
        Some(Value::Object(p)) => Some(p.clone()),
        None | Some(Value::Null) => None,
        Some(_) => return Err(ApiError::malformed_body()),
    };
    let profile = match (&supplied, full) {
        (Some(p), true) => Some(p.clone()),
        (Some(p), false) => {
            let mut merged = user.profile_json();
            for (k, v) in p {
                merged.insert(k.clone(), v.clone());
            }
            Some(merged)
        }
        (None, _) => None,
    };
    if let Some(profile) = &profile {
        validate_profile(&store, profile, Some(&user.id))?;
    }
    let login = profile
        .as_ref()
        .and_then(|p| text(p.get("login")))
        .unwrap_or_else(|| user.login.clone());
    if let Some(Some(password)) = &credentials.password {
        password_policy(password, &login)?;
    }
    let now = OffsetDateTime::now_utc();
    let source = EventSource::from(ctx);
    let updated = {
        let u = user_mut(&mut store, &user.id)?;
        if let Some(profile) = &profile {
            apply_profile(u, profile);
        }
        if let Some(password) = &credentials.password {
            u.password = password.clone();
            u.password_changed = Some(now);
        }
        if let Some((question, answer)) = &credentials.recovery {
            u.recovery_question = Some(question.clone());
            u.recovery_answer = answer.clone();
        }
        u.last_updated = now;
        u.clone()
    };
    let target = user_target(&updated);
    if profile.is_some() {
        syslog::append(
            &mut store,
            &source,
            "user.account.update_profile",
            vec![target.clone()],
        );
    }
    if credentials.password.is_some() {
        syslog::append(
            &mut store,
            &source,
            "user.account.update_password",
            vec![target],
        );
    }
    let factors = store.factor_count(&updated.id);
    drop(store);
    Ok(axum::Json(user_json(&updated, state.base_url(), Some(factors))).into_response())
}

// ---------------------------------------------------------------------------------------
// Lifecycle

/// Mails the activation link (the outbox), or returns it when `send_email` is false.
fn activation_body(store: &mut Store, base: &str, user_id: &str, send_email: bool) -> Response {
    if send_email {
        links::send(store, base, user_id, Purpose::Activation);
        return axum::Json(json!({})).into_response();
    }
    let url = links::issue(store, base, user_id, Purpose::Activation);
    let token = url
        .trim_end_matches("/verify")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    axum::Json(json!({
        "activationUrl": url,
        "activationToken": token,
    }))
    .into_response()
}

fn temp_password() -> String {
    // Letters and digits, with at least one of each kind the password policy asks for.
    let mut p = random_token(5);
    p.push('A');
    p.push('b');
    p.push('7');
    p
}

pub async fn lifecycle(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path((id, op)): Path<(String, String)>,
) -> ApiResult {
    use UserStatus::*;
    let params = Params::parse(ctx.query.as_deref());
    let base = state.base_url().to_string();
    let source = EventSource::from(&ctx);
    let now = OffsetDateTime::now_utc();
    let known = [
        "activate",
        "reactivate",
        "deactivate",
        "suspend",
        "unsuspend",
        "unlock",
        "reset_password",
        "expire_password",
        "expire_password_with_temp_password",
        "reset_factors",
    ];
    if !known.contains(&op.as_str()) {
        return Err(ApiError::not_found(&ctx.path, "GenericResource"));
    }
    // Request parameters are validated before the user's state.
    let send_email = match op.as_str() {
        "activate" => params.flag("sendEmail", true)?,
        "reactivate" | "deactivate" => params.flag("sendEmail", false)?,
        "reset_password" => {
            if params.get("sendEmail").is_none() {
                return Err(ApiError::missing_parameter("sendEmail"));
            }
            params.flag("sendEmail", true)?
        }
        _ => false,
    };
    if matches!(
        op.as_str(),
        "reset_password" | "expire_password_with_temp_password"
    ) {
        params.flag("revokeSessions", false)?;
    }

    let mut store = state.store();
    let user_id = find_id(&store, &id)?;
    let status = user_mut(&mut store, &user_id)?.status;
    let (event, response): (&str, Response) = match op.as_str() {
        "activate" => match status {
            Staged | Deprovisioned => {
                let u = user_mut(&mut store, &user_id)?;
                let next = if u.has_password() {
                    Active
                } else {
                    Provisioned
                };
                set_status(u, next, now);
                u.activated = Some(now);
                let body = if next == Active && send_email {
                    axum::Json(json!({})).into_response()
                } else {
                    activation_body(&mut store, &base, &user_id, send_email)
                };
                ("user.lifecycle.activate", body)
            }
            Active => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "E0000016",
                    "Activation failed because the user is already active",
                ));
            }
            _ => return Err(ApiError::wrong_status()),
        },
        "reactivate" => match status {
            Provisioned | Recovery => {
                user_mut(&mut store, &user_id)?.last_updated = now;
                let body = activation_body(&mut store, &base, &user_id, send_email);
                ("user.lifecycle.reactivate", body)
            }
            _ => return Err(ApiError::wrong_status()),
        },
        "deactivate" => match status {
            Deprovisioned => return Err(ApiError::user_not_found(&id)),
            _ => {
                set_status(user_mut(&mut store, &user_id)?, Deprovisioned, now);
                ("user.lifecycle.deactivate", empty_ok())
            }
        },
        "suspend" => match status {
            Active => {
                set_status(user_mut(&mut store, &user_id)?, Suspended, now);
                ("user.lifecycle.suspend", empty_ok())
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: suspendUser",
                )
                .with_causes(vec!["Cannot suspend a user that is not active".into()]));
            }
        },
        "unsuspend" => match status {
            Suspended => {
                set_status(user_mut(&mut store, &user_id)?, Active, now);
                ("user.lifecycle.unsuspend", empty_ok())
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: unsuspendUser",
                )
                .with_causes(vec!["Cannot unsuspend a user that is not suspended".into()]));
            }
        },
        "unlock" => match status {
            LockedOut => {
                set_status(user_mut(&mut store, &user_id)?, Active, now);
                ("user.account.unlock_by_admin", empty_ok())
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "E0000032",
                    "Unlock is not allowed for this user.",
                ));
            }
        },
        "reset_password" => match status {
            Active | PasswordExpired | LockedOut | Recovery => {
                set_status(user_mut(&mut store, &user_id)?, Recovery, now);
                let body = if send_email {
                    links::send(&mut store, &base, &user_id, Purpose::Recovery);
                    json!({})
                } else {
                    let url = links::issue(&mut store, &base, &user_id, Purpose::Recovery);
                    json!({ "resetPasswordUrl": url })
                };
                (
                    "user.account.reset_password",
                    axum::Json(body).into_response(),
                )
            }
            _ => return Err(ApiError::wrong_status()),
        },
        "expire_password" => match status {
            Active | PasswordExpired => {
                let factors = store.factor_count(&user_id);
                let u = user_mut(&mut store, &user_id)?;
                set_status(u, PasswordExpired, now);
                let body = user_json(u, &base, Some(factors));
                (
                    "user.account.expire_password",
                    axum::Json(body).into_response(),
                )
            }
            _ => return Err(ApiError::wrong_status()),
        },
        "expire_password_with_temp_password" => match status {
            Active | PasswordExpired => {
                let u = user_mut(&mut store, &user_id)?;
                let temp = temp_password();
                set_status(u, PasswordExpired, now);
                u.password = Some(temp.clone());
                u.password_changed = Some(now);
                (
                    "user.account.expire_password",
                    axum::Json(json!({ "tempPassword": temp })).into_response(),
                )
            }
            _ => return Err(ApiError::wrong_status()),
        },
        // "reset_factors": every enrolled factor goes (pending ones too); with none the
        // call still succeeds for users that could have enrolled factors.
        _ if can_reset_factors(status) => {
            factors::remove_factors(&mut store, |f| f.user_id == user_id);
            user_mut(&mut store, &user_id)?.last_updated = now;
            ("user.mfa.factor.reset_all", empty_ok())
        }
        _ => return Err(ApiError::wrong_status()),
    };
    if let Some(u) = store.users.get(&user_id) {
        let target = user_target(u);
        syslog::append(&mut store, &source, event, vec![target]);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// DELETE /api/v1/users/{id}, DELETE /api/v1/users/{userId}/sessions

pub async fn delete_user(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path(id): Path<String>,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    params.flag("sendEmail", false)?;
    let source = EventSource::from(&ctx);
    let now = OffsetDateTime::now_utc();
    let mut store = state.store();
    let user_id = find_id(&store, &id)?;
    let u = user_mut(&mut store, &user_id)?;
    if u.status != UserStatus::Deprovisioned {
        set_status(u, UserStatus::Deprovisioned, now);
        let target = user_target(u);
        syslog::append(
            &mut store,
            &source,
            "user.lifecycle.deactivate",
            vec![target],
        );
    } else {
        let target = user_target(u);
        store.users.remove(&user_id);
        factors::remove_factors(&mut store, |f| f.user_id == user_id);
        syslog::append(
            &mut store,
            &source,
            "user.lifecycle.delete.initiated",
            vec![target.clone()],
        );
        syslog::append(
            &mut store,
            &source,
            "user.lifecycle.delete.completed",
            vec![target],
        );
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn clear_sessions(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path(user_id): Path<String>,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let oauth_tokens = params.flag("oauthTokens", false)?;
    params.flag("forgetDevices", true)?;
    let source = EventSource::from(&ctx);
    let mut store = state.store();
    let Some(user) = store.users.get(&user_id).cloned() else {
        return Err(ApiError::user_not_found(&user_id));
    };
    store.sso_sessions.retain(|_, s| s.user_id != user.id);
    if oauth_tokens {
        for grant in store.refresh_tokens.values_mut() {
            if grant.user_id == user.id {
                grant.revoked = true;
            }
        }
    }
    syslog::append(
        &mut store,
        &source,
        "user.session.clear",
        vec![user_target(&user)],
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_714_566_896).unwrap();
        assert_eq!(timestamp(t), "2024-05-01T12:34:56.000Z");
    }

    #[test]
    fn login_folding() {
        assert_eq!(
            fold_login("José.Núñez@Example.com"),
            "jose.nunez@example.com"
        );
        assert_eq!(fold_login("ZOË@x.io"), "zoe@x.io");
    }

    #[test]
    fn email_shapes() {
        assert!(looks_like_email("ada@example.com"));
        assert!(!looks_like_email("ada"));
        assert!(!looks_like_email("ada@localhost"));
        assert!(!looks_like_email("a da@example.com"));
        assert!(!looks_like_email("@example.com"));
    }

    #[test]
    fn search_validation() {
        assert!(parse_search(r#"profile.email co "x""#).is_ok());
        assert!(parse_search(r#"profile.department co "x""#).is_err());
        assert!(parse_search(r#"status ne "ACTIVE""#).is_err());
        assert!(parse_search(r#"lastLogin gt "2024-01-01T00:00:00.000Z""#).is_err());
        assert!(parse_filter(r#"lastUpdated gt "2024-01-01T00:00:00.000Z""#).is_ok());
        assert!(parse_filter(r#"profile.login sw "x""#).is_err());
        assert!(parse_filter(r#"profile.department eq "x""#).is_err());
    }
}
