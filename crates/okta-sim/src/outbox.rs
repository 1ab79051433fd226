//! The simulator's "phone and inbox": every one-time passcode it sends for an `sms`, `call`
//! or `email` factor, and every activation and password-recovery email (with its one-time
//! link, see [`super::links`]), is recorded here instead of being delivered, for the demo
//! and the tests. `GET {base}/dev/outbox` shows the messages (newest first) and lets a developer
//! answer pending Okta Verify push requests; `GET {base}/dev/outbox.json` returns them as
//! JSON. These developer pages need no authentication.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::SimState;
use super::factors::{self, FactorStatus, FactorType, PushResult};
use super::users::timestamp;

/// How a passcode was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Call,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Call => "call",
            Channel::Email => "email",
        }
    }
}

/// One passcode the simulator "sent".
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub sent_at: OffsetDateTime,
    /// When the passcode stops being accepted.
    pub expires_at: OffsetDateTime,
    pub user_id: String,
    pub factor_id: String,
    pub channel: Channel,
    /// The phone number (sms, call) or email address (email).
    pub destination: String,
    /// The six-digit passcode.
    pub code: String,
    /// The text of the message as the user would receive it.
    pub text: String,
    /// The one-time link of an activation or password-recovery email (no code then).
    pub link: Option<String>,
}

impl OutboxMessage {
    pub fn to_json(&self) -> Value {
        json!({
            "sentAt": timestamp(self.sent_at),
            "expiresAt": timestamp(self.expires_at),
            "userId": self.user_id,
            "factorId": self.factor_id,
            "channel": self.channel.as_str(),
            "destination": self.destination,
            "code": self.code,
            "text": self.text,
            "link": self.link,
        })
    }
}

/// The text of a passcode message.
pub fn message_text(channel: Channel, code: &str) -> String {
    match channel {
        Channel::Sms => format!("Your verification code is {code}."),
        Channel::Call => {
            let spoken: Vec<String> = code.chars().map(|c| c.to_string()).collect();
            format!(
                "Hello! Thank you for using our phone verification system. Your code is {}.",
                spoken.join(", ")
            )
        }
        Channel::Email => {
            format!("Your verification code is {code}. It expires soon; do not share it.")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Developer pages

struct Row {
    sent_at: String,
    link: Option<String>,
    channel: &'static str,
    destination: String,
    code: String,
    user: String,
    factor_id: String,
    expires_at: String,
}

struct PushRow {
    factor_id: String,
    user: String,
    what: &'static str,
}

#[derive(Template)]
#[template(path = "okta_sim/outbox.html")]
struct OutboxPage {
    rows: Vec<Row>,
    pushes: Vec<PushRow>,
}

/// `GET /dev/outbox`: the messages, newest first, and the push requests awaiting an answer.
pub async fn outbox_page(State(state): State<SimState>) -> Response {
    let now = OffsetDateTime::now_utc();
    let (rows, pushes) = {
        let store = state.store();
        let login = |id: &str| {
            store
                .users
                .get(id)
                .map_or_else(|| id.to_string(), |u| u.login.clone())
        };
        let rows: Vec<Row> = store
            .outbox
            .iter()
            .rev()
            .map(|m| Row {
                sent_at: timestamp(m.sent_at),
                link: m.link.clone(),
                channel: m.channel.as_str(),
                destination: m.destination.clone(),
                code: m.code.clone(),
                user: login(&m.user_id),
                factor_id: m.factor_id.clone(),
                expires_at: timestamp(m.expires_at),
            })
            .collect();
        let mut pushes: Vec<PushRow> = store
            .factors
            .iter()
            .filter(|f| {
                f.factor_type == FactorType::Push
                    && f.status == FactorStatus::PendingActivation
                    && f.activation_expires.is_some_and(|e| e > now)
            })
            .map(|f| PushRow {
                factor_id: f.id.clone(),
                user: login(&f.user_id),
                what: "enrollment",
            })
            .collect();
        pushes.extend(
            store
                .push_transactions
                .iter()
                .filter(|t| t.result == PushResult::Waiting && t.expires_at > now)
                .map(|t| PushRow {
                    factor_id: t.factor_id.clone(),
                    user: login(&t.user_id),
                    what: "sign-in",
                }),
        );
        (rows, pushes)
    };
    match (OutboxPage { rows, pushes }).render() {
        Ok(body) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Html(body),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /dev/outbox.json`: the messages as JSON, newest first.
pub async fn outbox_json(State(state): State<SimState>) -> Response {
    let items: Vec<Value> = state
        .store()
        .outbox
        .iter()
        .rev()
        .map(OutboxMessage::to_json)
        .collect();
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(Value::Array(items)),
    )
        .into_response()
}

/// `POST /dev/push/{factorId}/approve`: the simulated Okta Verify app accepts.
pub async fn approve_push(
    State(state): State<SimState>,
    Path(factor_id): Path<String>,
) -> Response {
    factors::answer_push(&state, &factor_id, true);
    Redirect::to(&format!("{}/dev/outbox", state.base_url())).into_response()
}

/// `POST /dev/push/{factorId}/reject`: the simulated Okta Verify app declines.
pub async fn reject_push(State(state): State<SimState>, Path(factor_id): Path<String>) -> Response {
    factors::answer_push(&state, &factor_id, false);
    Redirect::to(&format!("{}/dev/outbox", state.base_url())).into_response()
}
