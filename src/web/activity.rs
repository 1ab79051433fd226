//! Activity pages for managers: filtered list with keyset pagination and the agent timeline
//! (`list`), server-rendered SVG charts (`charts`), streamed exports and their line formats
//! (`export`), and the integrity check (`integrity`).

use serde::Deserialize;

use crate::audit::{ActivityFilter, AuditRecord};

mod charts;
pub mod export;
mod integrity;
mod list;
mod velocity;

pub use charts::{AgentBar, Charts, Legend, Marker, Segment, build_charts, charts};
pub use export::{export_csv, export_jsonl};
pub use integrity::integrity;
pub use list::{Options, agent_timeline, index};
pub use velocity::lift;

const PAGE_SIZE: i64 = 50;

impl AuditRecord {
    /// Badge class for the outcome.
    pub fn outcome_class(&self) -> &'static str {
        match self.outcome.as_str() {
            "success" => "ok",
            "denied" | "unknown" => "warn",
            _ => "bad",
        }
    }

    /// Who acted, by name.
    pub fn actor_label(&self) -> String {
        self.actor_name
            .clone()
            .or_else(|| self.actor_login.clone())
            .or_else(|| self.client_id.clone())
            .unwrap_or_else(|| "(not signed in)".into())
    }

    pub fn target_label(&self) -> String {
        self.target_name
            .clone()
            .or_else(|| self.target_login.clone())
            .or_else(|| self.target_id.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(flatten)]
    pub filter: ActivityFilter,
    #[serde(default)]
    pub before: Option<i64>,
}

fn url_path(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn link(filter: &ActivityFilter, before: Option<i64>) -> String {
    let mut qs = filter.query_string();
    if let Some(b) = before {
        if !qs.is_empty() {
            qs.push('&');
        }
        qs.push_str(&format!("before={b}"));
    }
    if qs.is_empty() {
        "/activity".into()
    } else {
        format!("/activity?{qs}")
    }
}
