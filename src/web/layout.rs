//! `PageCtx`: what every full page needs (agent, navigation permissions, CSRF token,
//! flash messages, request id, asset URLs).

use std::collections::BTreeSet;

use crate::auth::extract::Agent;
use crate::auth::policy::Permission;
use crate::auth::session::{self, Flash};
use crate::error::AppError;
use crate::web::assets::{Assets, HTMX_FILE};

pub struct AgentView {
    pub name: String,
    pub login: String,
}

pub struct PageCtx {
    pub agent: Option<AgentView>,
    granted: BTreeSet<Permission>,
    pub csrf: String,
    pub flashes: Vec<Flash>,
    pub request_id: String,
    /// The current section, for `aria-current` in the navigation.
    pub section: &'static str,
}

impl PageCtx {
    pub async fn for_agent(agent: &Agent, section: &'static str) -> Result<PageCtx, AppError> {
        Ok(PageCtx {
            agent: Some(AgentView {
                name: agent.data.name.clone(),
                login: agent.data.login.clone(),
            }),
            granted: agent.principal.granted.clone(),
            csrf: session::csrf_token(&agent.session).await?,
            flashes: session::take_flashes(&agent.session).await?,
            request_id: agent.meta().request_id.clone(),
            section,
        })
    }

    pub fn anonymous(request_id: &str) -> PageCtx {
        PageCtx {
            agent: None,
            granted: BTreeSet::new(),
            csrf: String::new(),
            flashes: Vec::new(),
            request_id: request_id.to_string(),
            section: "",
        }
    }

    /// Whether the agent holds the named permission (navigation and buttons only; the
    /// server checks every request regardless).
    pub fn can(&self, permission: &str) -> bool {
        Permission::parse(permission).is_some_and(|p| self.granted.contains(&p))
    }

    pub fn asset(&self, name: &str) -> String {
        Assets::embedded().url(name)
    }

    pub fn htmx(&self) -> String {
        Assets::embedded().url(HTMX_FILE)
    }

    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}
