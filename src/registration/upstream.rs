//! admin-portal's service API as the edge sees it: two calls, with the edge's own token and
//! the end user's address in [`END_USER_IP_HEADER`]. One `reqwest::Client` for everything.

use std::collections::BTreeMap;
use std::net::IpAddr;

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;

use super::token::{TokenError, TokenSource};
use crate::api::public::END_USER_IP_HEADER;

/// What the service API answered, as far as the member of the public may know it.
#[derive(Debug)]
pub enum Upstream {
    /// 202: the same whatever happened behind it.
    Accepted,
    /// 422 with field errors (e.g. an email address Okta does not accept).
    Invalid(BTreeMap<String, String>),
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the admin service could not be reached: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the admin service answered {status} {code}")]
    Failed { status: u16, code: String },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRegistration<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
}

pub struct PortalApi {
    http: reqwest::Client,
    base: String,
    tokens: TokenSource,
}

impl PortalApi {
    pub fn new(http: reqwest::Client, base: &url::Url, tokens: TokenSource) -> PortalApi {
        PortalApi {
            http,
            base: base.as_str().trim_end_matches('/').to_string(),
            tokens,
        }
    }

    pub async fn register(
        &self,
        person: &NewRegistration<'_>,
        end_user: IpAddr,
    ) -> Result<Upstream, UpstreamError> {
        self.post("/api/v1/registrations", person, end_user).await
    }

    pub async fn recover(&self, email: &str, end_user: IpAddr) -> Result<Upstream, UpstreamError> {
        let body = serde_json::json!({ "login": email });
        self.post("/api/v1/recoveries", &body, end_user).await
    }

    /// One POST; a 401 (the token was revoked or expired early) is retried once with a
    /// fresh token.
    async fn post<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        end_user: IpAddr,
    ) -> Result<Upstream, UpstreamError> {
        for attempt in 0..2 {
            let token = self.tokens.token().await?;
            let response = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token.expose_secret())
                .header(END_USER_IP_HEADER, end_user.to_string())
                .json(body)
                .send()
                .await
                .map_err(UpstreamError::Unreachable)?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                self.tokens.drop_token().await;
                continue;
            }
            let problem: Value = response.json().await.unwrap_or(Value::Null);
            return match status {
                202 => Ok(Upstream::Accepted),
                422 if problem["code"] == "validation_failed"
                    || problem["code"] == "okta_validation" =>
                {
                    Ok(Upstream::Invalid(field_errors(&problem)))
                }
                _ => Err(UpstreamError::Failed {
                    status,
                    code: problem["code"].as_str().unwrap_or("-").to_string(),
                }),
            };
        }
        Err(UpstreamError::Failed {
            status: 401,
            code: "invalid_token".into(),
        })
    }
}

fn field_errors(problem: &Value) -> BTreeMap<String, String> {
    let rename = |field: &str| match field {
        "login" | "email" => "email".to_string(),
        "firstName" | "first_name" => "first_name".to_string(),
        "lastName" | "last_name" => "last_name".to_string(),
        other => other.to_string(),
    };
    problem["errors"]
        .as_object()
        .map(|errors| {
            errors
                .iter()
                .map(|(k, v)| {
                    (
                        rename(k),
                        v.as_str().unwrap_or("Check this field.").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
