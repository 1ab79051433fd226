//! Form bodies with repeated fields (checkbox groups), and the reason/ticket every change
//! requires.

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

/// Okta accepts only characters that encode in at most 3 bytes of UTF-8.
pub fn has_four_byte_chars(s: &str) -> bool {
    s.chars().any(|c| c.len_utf8() > 3)
}

/// The "why" of a change: a reason (required) and a ticket reference.
#[derive(Debug, Clone, Default)]
pub struct Why {
    pub reason: String,
    pub ticket: String,
}

#[derive(Debug, Clone, Default)]
pub struct WhyErrors {
    pub reason: Option<String>,
    pub ticket: Option<String>,
}

impl WhyErrors {
    pub fn any(&self) -> bool {
        self.reason.is_some() || self.ticket.is_some()
    }
}

impl Why {
    pub fn from_form(form: &FormData) -> Why {
        Why {
            reason: form.get("reason"),
            ticket: form.get("ticket"),
        }
    }

    pub fn validate(&self, state: &AppState) -> WhyErrors {
        let users = &state.config.users;
        let mut errors = WhyErrors::default();
        let length = self.reason.chars().count();
        if length < users.reason_min_length {
            errors.reason = Some(if length == 0 {
                "Give a reason: it is kept in the audit trail.".to_string()
            } else {
                format!(
                    "Give a reason of at least {} characters (you wrote {length}).",
                    users.reason_min_length
                )
            });
        } else if length > 500 {
            errors.reason = Some("Keep the reason under 500 characters.".to_string());
        } else if has_four_byte_chars(&self.reason) {
            errors.reason = Some(
                "The reason contains characters that cannot be stored (such as emoji).".into(),
            );
        }
        if self.ticket.is_empty() {
            if users.ticket_required {
                errors.ticket = Some("Give the ticket reference.".to_string());
            }
        } else if let Some(pattern) = &state.ticket_pattern
            && !pattern.is_match(&self.ticket)
        {
            errors.ticket = Some(format!(
                "A ticket reference looks like SUP-1234 (pattern {}).",
                users.ticket_pattern
            ));
        }
        errors
    }

    pub fn ticket_opt(&self) -> Option<String> {
        (!self.ticket.is_empty()).then(|| self.ticket.clone())
    }
}
