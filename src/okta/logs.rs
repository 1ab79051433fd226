//! System Log API (`GET /api/v1/logs`, OKTA-FACTS.md §8).

use serde::Deserialize;

use super::client::{OktaClient, OktaRequest, OktaResponse};
use super::error::OktaError;
use super::search::Search;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogActor {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub alternate_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogOutcome {
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugData {
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugContext {
    #[serde(default)]
    pub debug_data: DebugData,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub published: String,
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub display_message: Option<String>,
    #[serde(default)]
    pub actor: LogActor,
    #[serde(default)]
    pub outcome: LogOutcome,
    #[serde(default)]
    pub debug_context: DebugContext,
}

impl LogEvent {
    pub fn request_id(&self) -> Option<&str> {
        self.debug_context.debug_data.request_id.as_deref()
    }
}

impl OktaClient {
    /// The newest System Log events about one user within the last `days` days.
    pub async fn user_log_events(
        &self,
        user_id: &str,
        days: i64,
        limit: u32,
    ) -> Result<Vec<LogEvent>, OktaError> {
        let now = time::OffsetDateTime::now_utc();
        let since = crate::audit::format_timestamp(now - time::Duration::days(days));
        let until = crate::audit::format_timestamp(now + time::Duration::minutes(1));
        let request = OktaRequest::get("/api/v1/logs")
            .query("filter", Search::eq("target.id", user_id).to_string())
            .query("since", since)
            .query("until", until)
            .query("sortOrder", "DESCENDING")
            .query("limit", limit.to_string());
        let response: OktaResponse<Vec<LogEvent>> = self.send(request).await?;
        Ok(response.body)
    }
}
