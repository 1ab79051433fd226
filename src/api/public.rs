//! The public paths (registrations, recoveries) and the audit trail.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::dto::{Body, Params};
use super::idempotency::{self, Stored};
use super::problem::{ApiProblem, Problem};
use super::users::next_link;
use super::{ApiState, Service};
use crate::audit::AuditRecord;
use crate::audit::query::ActivityFilter;
use crate::auth::extract::Require;
use crate::auth::policy::perm;
use crate::auth::principal::Principal;
use crate::ops::registration::Registration;

type ApiResult = Result<Response, ApiProblem>;

/// The header in which a trusted front end (the registration edge) reports the address of
/// the end user it is acting for. Its own address stays the peer; the audit record keeps
/// both, the reported one marked as such (it is the client's word, not a fact).
pub const END_USER_IP_HEADER: &str = "x-end-user-ip";

/// The principal, with the end user's address the client reported (when it is an IP address)
/// recorded as "reported by client" beside the client's own address.
fn with_reported_ip(principal: &Principal, headers: &HeaderMap) -> Principal {
    let mut principal = principal.clone();
    let reported = headers
        .get(END_USER_IP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    if let Some(ip) = reported {
        let peer = principal.meta.client_ip.as_deref().unwrap_or("-");
        principal.meta.client_ip = Some(format!("{ip} (reported by client {peer})"));
    }
    principal
}

/// Public work running after its answer, at most this many at once (the rest wait their
/// turn; the edge's and the API's limits bound how many can arrive).
static PUBLIC_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

/// Runs a registration or recovery after the 202 is sent: what it did is in the audit trail,
/// never in the answer or its timing.
fn in_background<T: Send + 'static>(
    work: impl Future<Output = Result<T, crate::ops::OpError>> + Send + 'static,
) {
    tokio::spawn(async move {
        let Ok(_permit) = PUBLIC_WORK.acquire().await else {
            return;
        };
        if let Err(crate::ops::OpError::Unrecorded(e)) = work.await {
            tracing::error!(error = %e, "a public request's audit record could not be written");
        }
    });
}

/// A self-registration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrationBody {
    pub first_name: String,
    pub last_name: String,
    /// Also the login.
    pub email: String,
}

fn accepted() -> Stored {
    Stored {
        status: StatusCode::ACCEPTED,
        location: None,
        body: json!({ "status": "accepted", "message": "If the details are valid, an activation email is on its way." }),
    }
}

/// Register a member of the public: always 202 once the input is valid, whether or not the
/// email already has an account (`Idempotency-Key` supported).
#[utoipa::path(post, path = "/registrations", tag = "public", request_body = RegistrationBody,
    params(("Idempotency-Key" = Option<String>, Header),
        ("X-End-User-IP" = Option<String>, Header, description = "The end user's address, recorded as reported by the client")),
    security(("bearer" = ["admin.users.register"])),
    responses((status = 202, description = "Accepted (the same answer whether or not the account existed)"),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn register(
    State(api): State<ApiState>,
    service: Require<perm::UsersRegister, Service>,
    headers: HeaderMap,
    Body(body): Body<RegistrationBody>,
) -> ApiResult {
    let principal = &with_reported_ip(&service.principal, &headers);
    let registration = Registration {
        first_name: body.first_name.trim().to_string(),
        last_name: body.last_name.trim().to_string(),
        email: body.email.trim().to_string(),
    };
    let work = {
        let (api, principal) = (api.clone(), principal.clone());
        async move {
            api.ops
                .admit_registration(&principal, &registration)
                .await?;
            in_background(async move {
                let groups = &api.gate.config.registration_groups;
                api.ops.register(&principal, &registration, groups).await
            });
            Ok(accepted())
        }
    };
    idempotency::once(
        &api,
        &principal.subject,
        &headers,
        &body,
        Stored::clone,
        work,
    )
    .await
}

/// A forgotten password.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryBody {
    /// The login (email) of the account.
    pub login: String,
}

/// Start password recovery by email: always 202, whether or not the account exists.
#[utoipa::path(post, path = "/recoveries", tag = "public", request_body = RecoveryBody,
    params(("X-End-User-IP" = Option<String>, Header, description = "The end user's address, recorded as reported by the client")),
    security(("bearer" = ["admin.users.recover"])),
    responses((status = 202, description = "Accepted (the same answer whatever happened)"),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn recover(
    State(api): State<ApiState>,
    service: Require<perm::UsersRecover, Service>,
    headers: HeaderMap,
    Body(body): Body<RecoveryBody>,
) -> ApiResult {
    let login = body.login.trim().to_string();
    let principal = with_reported_ip(&service.principal, &headers);
    match api.ops.admit_recovery(&principal, &login).await {
        Ok(()) => in_background(async move {
            let groups = &api.gate.config.registration_groups;
            api.ops.recover(&principal, &login, groups).await
        }),
        // Not an email address: the same answer, and nothing to look up.
        Err(crate::ops::OpError::Invalid(_)) if !login.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    let body = json!({ "status": "accepted", "message": "If the account can be recovered, an email is on its way." });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// `GET /audit` parameters: the activity filters and a cursor.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub agent: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    pub to: Option<String>,
    pub ticket: Option<String>,
    /// `session` for people, or a client id.
    pub client: Option<String>,
    /// 1–200 (default 50).
    pub limit: Option<i64>,
    /// The cursor from `Link: rel="next"`.
    pub after: Option<i64>,
}

fn audit_limit(q: &AuditQuery) -> Result<i64, ApiProblem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        let message = "limit must be between 1 and 200.".to_string();
        return Err(ApiProblem::invalid([("limit".to_string(), message)].into()));
    }
    Ok(limit)
}

fn filter_of(q: &AuditQuery) -> ActivityFilter {
    ActivityFilter {
        agent: q.agent.clone(),
        target: q.target.clone(),
        target_id: None,
        action: q.action.clone(),
        outcome: q.outcome.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        ticket: q.ticket.clone(),
        client: q.client.clone(),
    }
}

fn audit_pairs(q: &AuditQuery, limit: i64) -> Vec<(&'static str, String)> {
    let fields = [
        ("agent", &q.agent),
        ("target", &q.target),
        ("action", &q.action),
        ("outcome", &q.outcome),
        ("from", &q.from),
        ("to", &q.to),
        ("ticket", &q.ticket),
        ("client", &q.client),
    ];
    let mut pairs: Vec<(&str, String)> = fields
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect();
    pairs.push(("limit", limit.to_string()));
    pairs
}

/// An audit record (without the hash chain; `audit verify` checks that).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiRecord {
    pub id: i64,
    pub occurred_at: String,
    pub request_id: String,
    pub action: String,
    pub outcome: String,
    pub actor_sub: Option<String>,
    pub actor_name: Option<String>,
    /// The service client, for API calls.
    pub client_id: Option<String>,
    pub permission: Option<String>,
    pub target_id: Option<String>,
    pub target_login: Option<String>,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub detail: Option<String>,
    pub okta_request_id: Option<String>,
    pub status_before: Option<String>,
    pub status_after: Option<String>,
}

impl From<AuditRecord> for ApiRecord {
    fn from(r: AuditRecord) -> ApiRecord {
        ApiRecord {
            id: r.id,
            occurred_at: r.occurred_at,
            request_id: r.request_id,
            action: r.action,
            outcome: r.outcome,
            actor_sub: r.actor_sub,
            actor_name: r.actor_name,
            client_id: r.client_id,
            permission: r.permission,
            target_id: r.target_id,
            target_login: r.target_login,
            reason: r.reason,
            ticket: r.ticket,
            detail: r.detail,
            okta_request_id: r.okta_request_id,
            status_before: r.status_before,
            status_after: r.status_after,
        }
    }
}

/// The audit trail, newest first, with the activity page's filters.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery), security(("bearer" = ["admin.audit.read"])),
    responses((status = 200, body = [ApiRecord]), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn audit(
    State(api): State<ApiState>,
    service: Require<perm::AuditRead, Service>,
    Params(q): Params<AuditQuery>,
) -> ApiResult {
    let limit = audit_limit(&q)?;
    let filter = filter_of(&q);
    let page = api
        .ops
        .read_audit(&service.principal, &filter, q.after, limit)
        .await?;
    let pairs = audit_pairs(&q, limit);
    let path = "/api/v1/audit";
    let link = page
        .next_before
        .map(|b| next_link(&api, path, &pairs, &b.to_string()));
    let records: Vec<ApiRecord> = page.records.into_iter().map(ApiRecord::from).collect();
    let response = axum::Json(records).into_response();
    Ok(super::users::with_link(response, link))
}
