//! The JSON shapes of the API (names follow Okta's where Okta has one), and the extractors
//! that turn malformed JSON or query strings into problems instead of plain-text errors.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::problem::ApiProblem;
use crate::okta::factors::Factor;
use crate::okta::models::User;
use crate::ops::{Done, Recorded, Why, WhyRules};

/// A JSON body; anything that does not parse is a 422 `invalid_body` problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiProblem;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiProblem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(e) => Err(ApiProblem::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.body_text(),
            )),
        }
    }
}

/// A query string; anything that does not parse is a 400 `bad_request` problem.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiProblem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiProblem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Params(value)),
            Err(e) => Err(ApiProblem::bad_request(e.body_text())),
        }
    }
}

/// The reason (required) and ticket (when the policy wants one) of every change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Reason {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub ticket: String,
}

impl Reason {
    pub fn why(&self, rules: &WhyRules) -> Result<Why, ApiProblem> {
        Why::new(self.reason.trim(), self.ticket.trim(), rules).map_err(ApiProblem::from)
    }
}

/// An Okta user as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiUser {
    pub id: String,
    #[schema(example = "ACTIVE")]
    pub status: String,
    pub created: Option<String>,
    pub activated: Option<String>,
    pub status_changed: Option<String>,
    pub last_login: Option<String>,
    pub last_updated: Option<String>,
    pub password_changed: Option<String>,
    /// Okta's profile: login, email, firstName, lastName, mobilePhone and custom attributes.
    #[schema(value_type = Object)]
    pub profile: Value,
}

impl From<User> for ApiUser {
    fn from(u: User) -> ApiUser {
        ApiUser {
            status: u.status.as_str().to_string(),
            profile: serde_json::to_value(&u.profile).unwrap_or(Value::Null),
            id: u.id,
            created: u.created,
            activated: u.activated,
            status_changed: u.status_changed,
            last_login: u.last_login,
            last_updated: u.last_updated,
            password_changed: u.password_changed,
        }
    }
}

/// An MFA factor. `activation.sharedSecret` is only in the response of the enrollment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiFactor {
    pub id: String,
    #[schema(example = "sms")]
    pub factor_type: String,
    pub provider: String,
    #[schema(example = "PENDING_ACTIVATION")]
    pub status: String,
    pub created: Option<String>,
    pub last_updated: Option<String>,
    /// The phone number or email, masked.
    pub destination: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub activation: Option<Value>,
}

impl ApiFactor {
    pub fn new(f: &Factor, with_secret: bool) -> ApiFactor {
        let activation = f
            .shared_secret()
            .filter(|_| with_secret)
            .map(|s| serde_json::json!({ "sharedSecret": s }));
        ApiFactor {
            id: f.id.clone(),
            factor_type: f.factor_type.clone(),
            provider: f.provider.clone(),
            status: f.status.clone(),
            created: f.created.clone(),
            last_updated: f.last_updated.clone(),
            destination: f.masked_destination(),
            activation,
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The user's status after the change, when it concerns one.
    pub status: Option<String>,
    /// The audit record of the change; `null` when it could not be written (the change
    /// happened: "done, but not recorded").
    pub audit_record_id: Option<i64>,
    pub okta_request_id: Option<String>,
    /// A one-time activation or reset link, when Okta handed one back instead of emailing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_link: Option<String>,
}

impl<T> From<&Done<T>> for Outcome {
    fn from(done: &Done<T>) -> Outcome {
        Outcome {
            status: done.status_after.clone(),
            audit_record_id: match done.recorded {
                Recorded::Yes(id) => Some(id),
                Recorded::Missing => None,
            },
            okta_request_id: done.okta_request_id.clone(),
            one_time_link: done
                .one_time_link
                .as_ref()
                .map(|l| l.url.expose_secret().to_string()),
        }
    }
}

/// `ETag` of a user: its `lastUpdated`, quoted.
pub fn etag(user: &User) -> Option<String> {
    user.last_updated.as_ref().map(|t| format!("\"{t}\""))
}

/// The `lastUpdated` named by an `If-Match` value (strong or weak).
pub fn if_match(value: &str) -> String {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.trim_matches('"').to_string()
}
