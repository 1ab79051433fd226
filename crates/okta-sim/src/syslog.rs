//! The System Log (OKTA-FACTS.md §8): events written by every change the simulator makes,
//! and `GET /api/v1/logs`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::api::{ApiContext, ApiError, ApiResult, Caller, Params, collection};
use super::expr::{Expr, Op, resolve_path};
use super::store::{LogEntry, SimGroup, SimUser, Store};
use super::users::timestamp;
use super::{SimState, random_token};

/// Who did what, from where: the request-specific part of an event.
#[derive(Debug, Clone)]
pub struct EventSource {
    pub request_id: String,
    pub actor: Value,
    pub user_agent: String,
    pub ip: String,
    pub path: String,
    pub query: Option<String>,
    pub api_token_id: Option<String>,
}

impl From<&ApiContext> for EventSource {
    fn from(ctx: &ApiContext) -> EventSource {
        EventSource {
            request_id: ctx.request_id.clone(),
            actor: ctx.actor(),
            user_agent: ctx.user_agent.clone(),
            ip: ctx.ip.clone(),
            path: ctx.path.clone(),
            query: ctx.query.clone(),
            api_token_id: match &ctx.caller {
                Caller::ApiToken { token_id } => Some(token_id.clone()),
                Caller::Service { .. } => None,
            },
        }
    }
}

pub fn user_target(user: &SimUser) -> Value {
    json!({
        "id": user.id,
        "type": "User",
        "alternateId": user.login,
        "displayName": user.display_name(),
        "detailEntry": null,
    })
}

pub fn group_target(group: &SimGroup) -> Value {
    json!({
        "id": group.id,
        "type": "UserGroup",
        "alternateId": "unknown",
        "displayName": group.name,
        "detailEntry": null,
    })
}

fn display_message(event_type: &str) -> &'static str {
    match event_type {
        "user.lifecycle.create" => "Create Okta user",
        "user.lifecycle.activate" => "Activate Okta user",
        "user.lifecycle.reactivate" => "Reactivate Okta user",
        "user.lifecycle.deactivate" => "Deactivate Okta user",
        "user.lifecycle.suspend" => "Suspend Okta user",
        "user.lifecycle.unsuspend" => "Unsuspend Okta user",
        "user.lifecycle.delete.initiated" => "Delete Okta user initiated",
        "user.lifecycle.delete.completed" => "Delete Okta user completed",
        "user.account.unlock_by_admin" => "Unlock Okta user by admin",
        "user.account.reset_password" => "Reset Okta user password",
        "user.account.expire_password" => "Expire Okta user password",
        "user.account.update_profile" => "Update user profile for Okta",
        "user.account.update_password" => "Update Okta user password",
        "user.mfa.factor.reset_all" => "Reset all factors for user",
        "user.mfa.factor.activate" => "Activate factor or authenticator for user",
        "user.mfa.factor.deactivate" => "Reset factor or authenticator for user",
        "user.mfa.factor.update" => "Update factor or authenticator for user",
        "user.mfa.okta_verify.deny_push" => "User rejected Okta push verify",
        "user.authentication.auth_via_mfa" => "Authentication of user via MFA",
        "user.session.clear" => "Clear user session",
        "group.user_membership.add" => "Add user to group membership",
        "group.user_membership.remove" => "Remove user from group membership",
        "app.oauth2.as.token.grant.access_token" => "OAuth2 access token is granted",
        _ => "Okta event",
    }
}

/// Appends a successful event to the System Log.
pub fn append(store: &mut Store, source: &EventSource, event_type: &str, targets: Vec<Value>) {
    let now = OffsetDateTime::now_utc();
    // Keep `published` non-decreasing in persistence order.
    let published = store.log.last().map_or(now, |last| now.max(last.published));
    let url = format!(
        "{}?{}",
        source.path,
        source.query.clone().unwrap_or_default()
    );
    let mut detail = serde_json::Map::new();
    if let Some(token_id) = &source.api_token_id {
        detail.insert("requestApiTokenId".into(), json!(token_id));
    }
    let event = json!({
        "uuid": uuid::Uuid::new_v4().to_string(),
        "published": timestamp(published),
        "eventType": event_type,
        "version": "0",
        "severity": "INFO",
        "legacyEventType": null,
        "displayMessage": display_message(event_type),
        "actor": source.actor,
        "client": {
            "userAgent": {
                "rawUserAgent": source.user_agent,
                "os": "Unknown",
                "browser": "UNKNOWN",
            },
            "zone": "null",
            "device": "Unknown",
            "id": null,
            "ipAddress": source.ip,
            "geographicalContext": null,
        },
        "device": null,
        "authenticationContext": {
            "authenticationProvider": null,
            "credentialProvider": null,
            "credentialType": null,
            "issuer": null,
            "interface": null,
            "authenticationStep": 0,
            "externalSessionId": format!("trs{}", random_token(22)),
        },
        "outcome": { "result": "SUCCESS", "reason": null },
        "securityContext": {
            "asNumber": null,
            "asOrg": null,
            "isp": null,
            "domain": null,
            "isProxy": null,
        },
        "debugContext": {
            "debugData": {
                "requestId": source.request_id,
                "requestUri": source.path,
                "url": url,
            }
        },
        "transaction": {
            "type": "WEB",
            "id": source.request_id,
            "detail": detail,
        },
        "request": {
            "ipChain": [{
                "ip": source.ip,
                "geographicalContext": null,
                "version": if source.ip.contains(':') { "V6" } else { "V4" },
                "source": null,
            }]
        },
        "target": targets,
    });
    store.log_seq += 1;
    let seq = store.log_seq;
    store.log.push(LogEntry {
        seq,
        published,
        event,
    });
}

// ---------------------------------------------------------------------------------------
// GET /api/v1/logs

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        ApiError::validation(vec![(
            name.to_string(),
            format!("'{value}' is not a valid ISO 8601 timestamp"),
        )])
    })
}

fn invalid_filter(filter: &str, detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "E0000053",
        format!("Invalid filter '{filter}': {detail}"),
    )
}

/// The cursor of a System Log page: the last persistence position seen and the query's
/// lower bound (which `after` replaces).
fn encode_cursor(seq: u64, since: Option<OffsetDateTime>) -> String {
    let since = since.map_or(String::new(), |s| s.unix_timestamp_nanos().to_string());
    URL_SAFE_NO_PAD.encode(format!("{seq}:{since}"))
}

fn decode_cursor(cursor: &str) -> Option<(u64, Option<OffsetDateTime>)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (seq, since) = raw.split_once(':')?;
    let since = if since.is_empty() {
        None
    } else {
        Some(OffsetDateTime::from_unix_timestamp_nanos(since.parse().ok()?).ok()?)
    };
    Some((seq.parse().ok()?, since))
}

fn keyword_matches(event: &Value, keyword: &str) -> bool {
    fn walk(v: &Value, keyword: &str) -> bool {
        match v {
            Value::String(s) => {
                let s = s.to_lowercase();
                s == keyword
                    || s.split(|c: char| c == '-' || c.is_whitespace())
                        .any(|part| part == keyword)
            }
            Value::Array(items) => items.iter().any(|i| walk(i, keyword)),
            Value::Object(map) => map.values().any(|i| walk(i, keyword)),
            _ => false,
        }
    }
    walk(event, keyword)
}

pub async fn list_logs(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_LIMIT => n,
            _ => {
                return Err(ApiError::validation(vec![(
                    "limit".into(),
                    format!("Limit must be an integer between 0 and {MAX_LIMIT}"),
                )]));
            }
        },
    };
    let descending = match params.get("sortOrder") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("ASCENDING") => false,
        Some(v) if v.eq_ignore_ascii_case("DESCENDING") => true,
        Some(_) => {
            return Err(ApiError::validation(vec![(
                "sortOrder".into(),
                "sortOrder must be ASCENDING or DESCENDING".into(),
            )]));
        }
    };
    let now = OffsetDateTime::now_utc();
    let until = params
        .get("until")
        .map(|v| parse_time("until", v))
        .transpose()?;
    let after = params.get("after");
    if after.is_some() && params.get("since").is_some() {
        return Err(ApiError::validation(vec![(
            "after".into(),
            "The after and since parameters are mutually exclusive".into(),
        )]));
    }
    let cursor = match after {
        Some(a) => Some(decode_cursor(a).ok_or_else(ApiError::invalid_paging)?),
        None => None,
    };
    let since = match (params.get("since"), &cursor) {
        (Some(v), _) => Some(parse_time("since", v)?),
        (None, Some((_, since))) => *since,
        (None, None) => None,
    };
    if let Some(since) = since
        && since < now - time::Duration::days(180)
        && cursor.is_none()
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000053",
            "Invalid since: the since parameter is more than 180 days in the past",
        ));
    }
    let lower = since.unwrap_or((until.unwrap_or(now)) - time::Duration::days(7));

    let filter = match params.get("filter") {
        None => None,
        Some(f) => {
            let expr = Expr::parse(f).map_err(|e| invalid_filter(f, &e.0))?;
            let mut co_on_url = false;
            expr.visit(
                &mut |attr, op, _| {
                    if attr == "published" {
                        return Err("The attribute 'published' is not supported in filters".into());
                    }
                    if op == Op::Co
                        && matches!(
                            attr,
                            "debugContext.debugData.url" | "debugContext.debugData.requestUri"
                        )
                    {
                        co_on_url = true;
                    }
                    Ok(())
                },
                true,
            )
            .map_err(|detail| invalid_filter(f, &detail))?;
            if co_on_url {
                return Err(ApiError::invalid_search());
            }
            Some(expr)
        }
    };
    let keywords: Vec<String> = match params.get("q") {
        None => Vec::new(),
        Some(q) => {
            let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
            if words.len() > 10 || words.iter().any(|w| w.chars().count() > 40) {
                return Err(ApiError::validation(vec![(
                    "q".into(),
                    "At most 10 keywords of at most 40 characters each".into(),
                )]));
            }
            words
        }
    };

    // Polling: no `until` and ascending; the next link is always present.
    let polling = until.is_none() && !descending;
    let matches = |entry: &LogEntry| {
        entry.published >= lower
            && until.is_none_or(|u| entry.published < u)
            && filter
                .as_ref()
                .is_none_or(|f| f.eval(&|path| resolve_path(&entry.event, path), true))
            && keywords.iter().all(|k| keyword_matches(&entry.event, k))
    };
    let store = state.store();
    let mut selected: Vec<&LogEntry> = store.log.iter().filter(|e| matches(e)).collect();
    if descending {
        selected.reverse();
    }
    if let Some((seq, _)) = cursor {
        selected.retain(|e| if descending { e.seq < seq } else { e.seq > seq });
    }
    let page: Vec<&LogEntry> = selected.iter().take(limit).copied().collect();
    let more = selected.len() > page.len();
    let last_seq = page
        .last()
        .map(|e| e.seq)
        .or(cursor.map(|(seq, _)| seq))
        .unwrap_or(if descending { u64::MAX } else { store.log_seq });
    let items: Vec<Value> = page.iter().map(|e| e.event.clone()).collect();
    drop(store);
    let next = (polling || more).then(|| {
        let mut rest = params.clone();
        rest.0.retain(|(k, _)| k != "since");
        rest.with_cursor(&encode_cursor(last_seq, Some(lower)), limit)
    });
    Ok(collection(&state, &ctx, items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(
            decode_cursor(&encode_cursor(42, Some(t))),
            Some((42, Some(t)))
        );
        assert_eq!(decode_cursor(&encode_cursor(7, None)), Some((7, None)));
        assert_eq!(decode_cursor("!!"), None);
    }

    #[test]
    fn keywords() {
        let e = json!({"eventType": "user.lifecycle.suspend", "displayMessage": "Suspend Okta user",
            "target": [{"alternateId": "ada-lovelace@example.com"}]});
        assert!(keyword_matches(&e, "suspend"));
        assert!(keyword_matches(&e, "user.lifecycle.suspend"));
        assert!(keyword_matches(&e, "lovelace@example.com"));
        assert!(!keyword_matches(&e, "susp"));
    }
}
