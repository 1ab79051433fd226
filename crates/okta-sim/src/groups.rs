//! The Groups API, as far as the portal needs it: list and get groups, list members, add
//! and remove members (OKTA-FACTS.md §5.8).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::SimState;
use super::api::{ApiContext, ApiError, ApiResult, Params, collection};
use super::store::{SimGroup, Store};
use super::syslog::{self, EventSource, group_target, user_target};
use super::users::{timestamp, user_json};

pub fn group_json(g: &SimGroup, base: &str) -> Value {
    let object_class = if g.kind == "APP_GROUP" {
        "okta:windows_security_principal"
    } else {
        "okta:user_group"
    };
    json!({
        "id": g.id,
        "created": timestamp(g.created),
        "lastUpdated": timestamp(g.last_updated),
        "lastMembershipUpdated": timestamp(g.last_membership_updated),
        "objectClass": [object_class],
        "type": g.kind,
        "profile": { "name": g.name, "description": g.description },
        "_links": {
            "logo": [
                { "name": "medium", "href": format!("{base}/img/logos/groups/okta-medium.png"), "type": "image/png" },
                { "name": "large", "href": format!("{base}/img/logos/groups/okta-large.png"), "type": "image/png" }
            ],
            "users": { "href": format!("{base}/api/v1/groups/{}/users", g.id) },
            "apps": { "href": format!("{base}/api/v1/groups/{}/apps", g.id) },
        },
    })
}

fn group<'a>(store: &'a Store, id: &str) -> Result<&'a SimGroup, ApiError> {
    store
        .groups
        .get(id)
        .ok_or_else(|| ApiError::not_found(id, "UserGroup"))
}

/// `limit` (positive integer, capped at `max`) or 400 `E0000029`.
fn limit(params: &Params, default: usize, max: usize) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok((n as usize).min(max)),
            _ => Err(ApiError::invalid_paging()),
        },
    }
}

/// One page of id-ordered items after the `after` cursor, and the next cursor.
fn page<T>(items: Vec<(String, T)>, after: Option<&str>, limit: usize) -> (Vec<T>, Option<String>) {
    let mut items: Vec<(String, T)> = items
        .into_iter()
        .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
        .collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(|(id, _)| id.clone())
    } else {
        None
    };
    (items.into_iter().map(|(_, v)| v).collect(), next)
}

pub async fn list_groups(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let q = params.get("q").map(str::to_lowercase);
    let limit = limit(&params, if q.is_some() { 300 } else { 10_000 }, 10_000)?;
    let base = state.base_url().to_string();
    let items: Vec<(String, Value)> = state
        .store()
        .groups
        .values()
        .filter(|g| {
            q.as_ref()
                .is_none_or(|q| g.name.to_lowercase().starts_with(q.as_str()))
        })
        .map(|g| (g.id.clone(), group_json(g, &base)))
        .collect();
    // A query is not paged (OKTA-FACTS.md: paging and `q` are mutually exclusive).
    let after = if q.is_some() {
        None
    } else {
        params.get("after")
    };
    let (items, next) = page(items, after, limit);
    let next = next
        .filter(|_| q.is_none())
        .map(|cursor| params.with_cursor(&cursor, limit));
    Ok(collection(&state, &ctx, items, next))
}

pub async fn get_group(State(state): State<SimState>, Path(id): Path<String>) -> ApiResult {
    let store = state.store();
    let g = group(&store, &id)?;
    Ok(axum::Json(group_json(g, state.base_url())).into_response())
}

pub async fn group_users(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path(id): Path<String>,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let limit = limit(&params, 1000, 10_000)?;
    let base = state.base_url().to_string();
    let store = state.store();
    let g = group(&store, &id)?;
    let items: Vec<(String, Value)> = store
        .users
        .values()
        .filter(|u| u.group_ids.contains(&g.id))
        .map(|u| (u.id.clone(), user_json(u, &base, None)))
        .collect();
    drop(store);
    let (items, next) = page(items, params.get("after"), limit);
    let next = next.map(|cursor| params.with_cursor(&cursor, limit));
    Ok(collection(&state, &ctx, items, next))
}

fn change_membership(
    state: &SimState,
    ctx: &ApiContext,
    group_id: &str,
    user_id: &str,
    add: bool,
) -> ApiResult {
    let source = EventSource::from(ctx);
    let mut store = state.store();
    let g = group(&store, group_id)?.clone();
    let Some(user) = store.users.get(user_id).cloned() else {
        return Err(ApiError::user_not_found(user_id));
    };
    if g.kind != "OKTA_GROUP" {
        return Err(ApiError::no_permission());
    }
    let member = user.group_ids.contains(&g.id);
    if member != add {
        if let Some(u) = store.users.get_mut(user_id) {
            if add {
                u.group_ids.push(g.id.clone());
            } else {
                u.group_ids.retain(|id| *id != g.id);
            }
        }
        if let Some(stored) = store.groups.get_mut(&g.id) {
            stored.last_membership_updated = OffsetDateTime::now_utc();
        }
        let event = if add {
            "group.user_membership.add"
        } else {
            "group.user_membership.remove"
        };
        syslog::append(
            &mut store,
            &source,
            event,
            vec![user_target(&user), group_target(&g)],
        );
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn add_member(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult {
    change_membership(&state, &ctx, &group_id, &user_id, true)
}

pub async fn remove_member(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult {
    change_membership(&state, &ctx, &group_id, &user_id, false)
}
