//! Every way a Management API call can fail, mapped from the HTTP status and Okta's
//! `errorCode` (never from the summary text).

use serde::Deserialize;

/// What kind of failure, decided by `errorCode` first and the status second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OktaErrorKind {
    /// E0000007 / 404.
    NotFound,
    /// E0000001, E0000003, E0000093, E0000124, E0000125 and the query errors: bad input,
    /// with causes per field when Okta gives them.
    Invalid,
    /// E0000016, E0000017, E0000032, E0000038: not allowed in the user's current status.
    NotAllowed,
    /// E0000047 / 429.
    RateLimited,
    /// Not sent: the portal's share of Okta's rate limit is spent for now (see `budget`).
    Busy,
    /// E0000011 / 401: the portal's credentials for Okta are wrong.
    Unauthorized,
    /// E0000005, E0000006 / 403: the portal's Okta credentials lack a privilege.
    Forbidden,
    /// 5xx.
    Unavailable,
    /// No answer in time.
    Timeout,
    /// Could not connect or the connection broke.
    Transport,
    /// An answer that is not what Okta sends (bad JSON, wrong shape).
    Malformed,
}

/// One `errorCauses` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorCause {
    #[serde(rename = "errorSummary", default)]
    pub summary: String,
}

impl ErrorCause {
    /// The field a cause names (`"login: An object with…"` → `login`).
    pub fn field(&self) -> Option<&str> {
        let (field, _) = self.summary.split_once(": ")?;
        let field = field.trim();
        (!field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .then_some(field)
    }

    /// The message without the field prefix.
    pub fn message(&self) -> &str {
        match self.summary.split_once(": ") {
            Some((_, message)) if self.field().is_some() => message,
            _ => &self.summary,
        }
    }
}

/// Okta's error body (OKTA-FACTS.md §2.1).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "errorCode")]
    pub code: Option<String>,
    #[serde(rename = "errorSummary")]
    pub summary: Option<String>,
    #[serde(rename = "errorId")]
    pub error_id: Option<String>,
    #[serde(rename = "errorCauses", default)]
    pub causes: Vec<ErrorCause>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("Okta {kind:?} (status {status:?}, code {code:?}, request {request_id:?}): {summary}")]
pub struct OktaError {
    pub kind: OktaErrorKind,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub summary: String,
    pub causes: Vec<ErrorCause>,
    /// `X-Okta-Request-Id` of the failed response, for support.
    pub request_id: Option<String>,
    /// For rate limits: when the window resets (Unix seconds).
    pub reset_at: Option<i64>,
}

impl OktaError {
    pub fn new(kind: OktaErrorKind, summary: impl Into<String>) -> OktaError {
        OktaError {
            kind,
            status: None,
            code: None,
            summary: summary.into(),
            causes: Vec::new(),
            request_id: None,
            reset_at: None,
        }
    }

    /// Maps an error response.
    pub fn from_response(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        reset_at: Option<i64>,
    ) -> OktaError {
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let kind = kind_for(status, parsed.code.as_deref());
        OktaError {
            kind,
            status: Some(status),
            code: parsed.code,
            summary: parsed
                .summary
                .unwrap_or_else(|| format!("HTTP {status} without an Okta error body")),
            causes: parsed.causes,
            request_id,
            reset_at,
        }
    }

    /// Maps a `WWW-Authenticate` challenge (DPoP answers carry no body): its `error` is the
    /// code, as `errorCode` is elsewhere.
    pub fn from_challenge(
        status: u16,
        code: String,
        description: Option<String>,
        request_id: Option<String>,
    ) -> OktaError {
        OktaError {
            kind: kind_for(status, Some(&code)),
            status: Some(status),
            summary: description.unwrap_or_else(|| code.clone()),
            code: Some(code),
            causes: Vec::new(),
            request_id,
            reset_at: None,
        }
    }

    /// A sentence an agent can act on. Okta's own summary is added where it says more.
    pub fn plain_message(&self) -> String {
        match self.kind {
            OktaErrorKind::NotFound => "Okta has no such user (it may have been deleted).".into(),
            OktaErrorKind::Invalid => {
                if self.causes.is_empty() {
                    format!("Okta refused the request: {}", self.summary)
                } else {
                    let causes: Vec<&str> = self.causes.iter().map(|c| c.summary.as_str()).collect();
                    format!("Okta refused the request: {}", causes.join("; "))
                }
            }
            OktaErrorKind::NotAllowed => format!(
                "Okta does not allow this for the user in their current status ({}).",
                self.summary.trim_end_matches('.')
            ),
            OktaErrorKind::RateLimited => "Okta is rate-limiting the portal. Wait a minute and try again.".into(),
            OktaErrorKind::Busy => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let wait = self.reset_at.map_or(1, |at| (at - now).max(1));
                format!("Okta is busy — try again in {wait} s.")
            }
            OktaErrorKind::Unauthorized | OktaErrorKind::Forbidden => {
                "The portal's access to Okta was refused. An administrator must check the portal's Okta credentials.".into()
            }
            OktaErrorKind::Unavailable => "Okta is not available right now. Try again in a moment.".into(),
            OktaErrorKind::Timeout => "Okta did not answer in time. Try again in a moment.".into(),
            OktaErrorKind::Transport => "The portal could not reach Okta. Try again in a moment.".into(),
            OktaErrorKind::Malformed => "Okta sent an answer the portal could not read. Try again in a moment.".into(),
        }
    }

    /// The cause for one field, if Okta named it.
    pub fn cause_for(&self, field: &str) -> Option<&str> {
        self.causes
            .iter()
            .find(|c| c.field() == Some(field))
            .map(|c| c.message())
    }

    /// Whether an idempotent request may be sent again after this failure.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            OktaErrorKind::Unavailable | OktaErrorKind::Transport | OktaErrorKind::Timeout
        )
    }
}

fn kind_for(status: u16, code: Option<&str>) -> OktaErrorKind {
    use OktaErrorKind::*;
    match code {
        Some("E0000007") => return NotFound,
        Some(
            "E0000001" | "E0000003" | "E0000028" | "E0000029" | "E0000031" | "E0000033"
            | "E0000053" | "E0000093" | "E0000124" | "E0000125",
        ) => return Invalid,
        // Wrong, replayed or expired passcodes: the input was wrong, not the portal's access.
        Some("E0000068" | "E0000082" | "E0000083") => return Invalid,
        Some("E0000016" | "E0000017" | "E0000032" | "E0000038" | "E0000069") => return NotAllowed,
        Some("E0000047" | "E0000109" | "E0000133") => return RateLimited,
        Some("E0000011") => return Unauthorized,
        // DPoP refusals (RFC 9449): the portal's proof or token, never the person's input.
        Some("invalid_dpop_proof" | "use_dpop_nonce" | "invalid_token") => return Unauthorized,
        Some("E0000005" | "E0000006") => return Forbidden,
        _ => {}
    }
    match status {
        404 => NotFound,
        429 => RateLimited,
        401 => Unauthorized,
        403 => Forbidden,
        500..=599 => Unavailable,
        _ => Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, summary: &str) -> Vec<u8> {
        serde_json::json!({
            "errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oaeX", "errorCauses": []
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn maps_every_documented_code() {
        use OktaErrorKind::*;
        for (status, code, kind) in [
            (404, "E0000007", NotFound),
            (400, "E0000001", Invalid),
            (400, "E0000003", Invalid),
            (400, "E0000031", Invalid),
            (400, "E0000033", Invalid),
            (400, "E0000093", Invalid),
            (400, "E0000124", Invalid),
            (400, "E0000125", Invalid),
            (403, "E0000016", NotAllowed),
            (403, "E0000017", NotAllowed),
            (403, "E0000032", NotAllowed),
            (403, "E0000038", NotAllowed),
            (403, "E0000068", Invalid),
            (403, "E0000069", NotAllowed),
            (403, "E0000082", Invalid),
            (403, "E0000083", Invalid),
            (429, "E0000109", RateLimited),
            (429, "E0000133", RateLimited),
            (429, "E0000047", RateLimited),
            (401, "E0000011", Unauthorized),
            (403, "E0000005", Forbidden),
            (403, "E0000006", Forbidden),
            (500, "E0000009", Unavailable),
            (400, "invalid_dpop_proof", Unauthorized),
            (401, "use_dpop_nonce", Unauthorized),
        ] {
            let e = OktaError::from_response(status, &body(code, "x"), Some("req1".into()), None);
            assert_eq!(e.kind, kind, "{code}");
            assert_eq!(e.code.as_deref(), Some(code));
            assert_eq!(e.request_id.as_deref(), Some("req1"));
        }
    }

    #[test]
    fn code_wins_over_status_and_text_is_ignored() {
        // A 403 that is a status problem, with a summary that mentions "not found".
        let e = OktaError::from_response(403, &body("E0000038", "Not found anywhere"), None, None);
        assert_eq!(e.kind, OktaErrorKind::NotAllowed);
    }

    #[test]
    fn status_fallbacks_without_a_body() {
        assert_eq!(
            OktaError::from_response(503, b"<html>", None, None).kind,
            OktaErrorKind::Unavailable
        );
        assert_eq!(
            OktaError::from_response(429, b"", None, Some(5)).kind,
            OktaErrorKind::RateLimited
        );
        assert_eq!(
            OktaError::from_response(403, b"", None, None).kind,
            OktaErrorKind::Forbidden
        );
        assert_eq!(
            OktaError::from_response(411, b"", None, None).kind,
            OktaErrorKind::Invalid
        );
    }

    #[test]
    fn causes_name_their_field() {
        let raw = serde_json::json!({
            "errorCode": "E0000001",
            "errorSummary": "Api validation failed: login",
            "errorCauses": [{ "errorSummary": "login: An object with this field already exists in the current organization" }]
        });
        let e = OktaError::from_response(400, raw.to_string().as_bytes(), None, None);
        assert_eq!(
            e.cause_for("login"),
            Some("An object with this field already exists in the current organization")
        );
        assert_eq!(e.cause_for("email"), None);
        assert!(e.plain_message().contains("already exists"));
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(OktaError::new(OktaErrorKind::Unavailable, "x").is_transient());
        assert!(OktaError::new(OktaErrorKind::Timeout, "x").is_transient());
        assert!(!OktaError::new(OktaErrorKind::Invalid, "x").is_transient());
        assert!(!OktaError::new(OktaErrorKind::RateLimited, "x").is_transient());
    }
}
