//! Form bodies with repeated fields (checkbox groups), and the reason/ticket every change
//! requires, as typed.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use crate::error::AppError;
use crate::state::AppState;

/// All `name=value` pairs of a urlencoded body, in order.
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    /// The first value of `name`, untrimmed (passwords).
    pub fn raw(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && !v.is_empty())
    }
}

impl FromRequest<AppState> for FormData {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(AppError::from)?;
        Ok(FormData(
            url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

pub use crate::ops::WhyErrors;

/// The reason and ticket as typed, kept to re-render a form; [`WhyForm::check`] turns them
/// into the operations layer's validated [`Why`](crate::ops::Why).
#[derive(Debug, Clone, Default)]
pub struct WhyForm {
    pub reason: String,
    pub ticket: String,
}

impl WhyForm {
    pub fn from_form(form: &FormData) -> WhyForm {
        WhyForm {
            reason: form.get("reason"),
            ticket: form.get("ticket"),
        }
    }

    pub fn check(&self, ops: &crate::ops::Ops) -> Result<crate::ops::Why, WhyErrors> {
        crate::ops::Why::new(&self.reason, &self.ticket, ops.why_rules())
    }
}
