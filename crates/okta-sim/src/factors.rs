//! The Factors API (OKTA-FACTS.md §7): `/api/v1/users/{userId}/factors`.
//!
//! The simulated org enables `sms`, `call` and `email` (provider `OKTA`),
//! `token:software:totp` (providers `OKTA` and `GOOGLE`) and Okta Verify `push` (`OKTA`).
//! Passcodes for `sms`, `call` and `email` are not delivered but recorded in the outbox
//! ([`super::outbox`]); TOTP codes are checked per RFC 6238 (HMAC-SHA1, 30 s, 6 digits, one
//! step of skew either way); push requests are answered on the developer outbox page or by
//! [`SimState::approve_push`] / [`SimState::reject_push`].
//!
//! Behaviour the facts leave open, as simulated (the portal must not depend on it):
//! * enrolling for a `DEPROVISIONED` user, and every factor write for one, is refused with
//!   403 `E0000038`; other statuses may enroll;
//! * activating (or resending for) a factor that is already `ACTIVE`, and verifying one that
//!   is not, is refused with 400 `E0000001`;
//! * email resends have no cool-down; sms/call sends (enroll, resend, verify challenge) to
//!   the same number on the same channel are limited to one per 30 s;
//! * the QR code link (`…/qr/{token}`) needs the same authentication as every other
//!   `/api/v1` call and serves an SVG;
//! * Okta Verify TOTP and push are enrolled individually (Classic Engine behaviour);
//!   unenrolling `push` also unenrolls the Okta Verify TOTP factor.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::api::{ApiContext, ApiError, ApiResult, Params};
use super::outbox::{Channel, OutboxMessage, message_text};
use super::store::{SimUser, Store, UserStatus, okta_id};
use super::syslog::{self, EventSource, user_target};
use super::users::timestamp;
use super::{SimState, random_token, request_id};

/// RFC 6238 parameters published in the TOTP activation object.
pub const TOTP_STEP_SECS: u64 = 30;
pub const TOTP_DIGITS: usize = 6;
/// How long an sms/call passcode is valid, and the default for email.
pub const OTP_LIFETIME_SECS: i64 = 300;
/// At most this many activation attempts per factor within [`ATTEMPT_WINDOW_SECS`].
pub const MAX_ACTIVATION_ATTEMPTS: usize = 5;
pub const ATTEMPT_WINDOW_SECS: i64 = 300;
/// One sms (or one call) per phone number per this many seconds.
pub const PHONE_COOLDOWN_SECS: i64 = 30;
/// How long a push activation or push verification waits for an answer.
pub const PUSH_WAIT_SECS: i64 = 300;
/// TOTP codes this many steps away are "valid but outside the window" (`E0000083`).
const TOTP_LATE_STEPS: u64 = 10;

// ---------------------------------------------------------------------------------------
// Model

/// The factor types the simulated org supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorType {
    Sms,
    Call,
    Email,
    Totp,
    Push,
}

impl FactorType {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorType::Sms => "sms",
            FactorType::Call => "call",
            FactorType::Email => "email",
            FactorType::Totp => "token:software:totp",
            FactorType::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<FactorType> {
        [
            FactorType::Sms,
            FactorType::Call,
            FactorType::Email,
            FactorType::Totp,
            FactorType::Push,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    fn id_prefix(self) -> &'static str {
        match self {
            FactorType::Sms => "sms",
            FactorType::Call => "clf",
            FactorType::Email => "emf",
            FactorType::Totp => "ostf",
            FactorType::Push => "opf",
        }
    }

    /// The outbox channel of factors whose passcodes the simulator sends.
    fn channel(self) -> Option<Channel> {
        match self {
            FactorType::Sms => Some(Channel::Sms),
            FactorType::Call => Some(Channel::Call),
            FactorType::Email => Some(Channel::Email),
            FactorType::Totp | FactorType::Push => None,
        }
    }
}

/// Every `factorType` of the `UserFactorType` enum: others are malformed requests.
const KNOWN_FACTOR_TYPES: &[&str] = &[
    "call",
    "email",
    "push",
    "question",
    "signed_nonce",
    "sms",
    "token",
    "token:hardware",
    "token:hotp",
    "token:software:totp",
    "u2f",
    "web",
    "webauthn",
];

/// The enrollable factors of the simulated org, in catalog order.
const CATALOG: &[(FactorType, &str)] = &[
    (FactorType::Totp, "OKTA"),
    (FactorType::Totp, "GOOGLE"),
    (FactorType::Push, "OKTA"),
    (FactorType::Sms, "OKTA"),
    (FactorType::Call, "OKTA"),
    (FactorType::Email, "OKTA"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorStatus {
    PendingActivation,
    Active,
}

impl FactorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorStatus::PendingActivation => "PENDING_ACTIVATION",
            FactorStatus::Active => "ACTIVE",
        }
    }
}

/// The last passcode sent for an `sms`, `call` or `email` factor (only the latest counts).
#[derive(Debug, Clone)]
pub struct SentCode {
    pub code: String,
    pub sent_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

/// An enrolled factor.
#[derive(Debug, Clone)]
pub struct SimFactor {
    pub id: String,
    pub user_id: String,
    pub factor_type: FactorType,
    /// `OKTA` or `GOOGLE`.
    pub provider: String,
    pub status: FactorStatus,
    pub created: OffsetDateTime,
    pub last_updated: OffsetDateTime,
    pub phone_number: Option<String>,
    pub phone_extension: Option<String>,
    pub email: Option<String>,
    /// The user's login (TOTP and push).
    pub credential_id: Option<String>,
    /// The TOTP shared secret (20 random bytes).
    pub totp_secret: Option<Vec<u8>>,
    /// The last TOTP time step accepted (replay protection).
    pub last_totp_step: Option<u64>,
    /// The token in the QR code URL of a pending TOTP or push enrollment.
    pub qr_token: Option<String>,
    /// When a pending push activation times out.
    pub activation_expires: Option<OffsetDateTime>,
    /// Lifetime of email passcodes (`tokenLifetimeSeconds`).
    pub token_lifetime_secs: i64,
    pub last_code: Option<SentCode>,
    /// Activation attempts (times), for the 5-per-5-minutes limit.
    pub activation_attempts: Vec<OffsetDateTime>,
    /// The device a push factor was activated on.
    pub device_name: Option<String>,
}

impl SimFactor {
    /// The name Okta shows for this factor (System Log `target.displayName`).
    pub fn display_name(&self) -> &'static str {
        match (self.factor_type, self.provider.as_str()) {
            (FactorType::Sms, _) => "SMS Authentication",
            (FactorType::Call, _) => "Voice Call Authentication",
            (FactorType::Email, _) => "Email Authentication",
            (FactorType::Totp, "GOOGLE") => "Google Authenticator",
            (FactorType::Totp, _) => "Okta Verify",
            (FactorType::Push, _) => "Okta Verify",
        }
    }

    fn push_timed_out(&self, now: OffsetDateTime) -> bool {
        self.factor_type == FactorType::Push
            && self.status == FactorStatus::PendingActivation
            && self.activation_expires.is_none_or(|e| e <= now)
    }

    /// The TOTP shared secret in base32 (no padding), as published at enrollment.
    pub fn totp_secret_base32(&self) -> Option<String> {
        self.totp_secret
            .as_ref()
            .map(|s| totp_rs::Secret::from(s.clone()).to_base32())
    }
}

/// The result of a push verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult {
    Waiting,
    Success,
    Rejected,
}

/// A push verification (`POST …/verify` on a push factor) and its answer.
#[derive(Debug, Clone)]
pub struct PushTransaction {
    pub id: String,
    pub factor_id: String,
    pub user_id: String,
    pub expires_at: OffsetDateTime,
    pub result: PushResult,
}

// ---------------------------------------------------------------------------------------
// JSON

fn hinted(href: String, allow: &[&str]) -> Value {
    json!({ "href": href, "hints": { "allow": allow } })
}

fn user_url(base: &str, user_id: &str) -> String {
    format!("{base}/api/v1/users/{user_id}")
}

fn factor_url(base: &str, f: &SimFactor) -> String {
    format!("{}/factors/{}", user_url(base, &f.user_id), f.id)
}

fn qr_link(base: &str, f: &SimFactor) -> Option<Value> {
    f.qr_token.as_ref().map(|token| {
        json!({
            "href": format!("{}/qr/{token}", factor_url(base, f)),
            "type": "image/svg+xml",
        })
    })
}

fn profile_json(f: &SimFactor) -> Option<Value> {
    let mut p = Map::new();
    match f.factor_type {
        FactorType::Sms => {
            p.insert("phoneNumber".into(), json!(f.phone_number));
        }
        FactorType::Call => {
            p.insert("phoneNumber".into(), json!(f.phone_number));
            if let Some(ext) = &f.phone_extension {
                p.insert("phoneExtension".into(), json!(ext));
            }
        }
        FactorType::Email => {
            p.insert("email".into(), json!(f.email));
        }
        FactorType::Totp => {
            p.insert("credentialId".into(), json!(f.credential_id));
        }
        FactorType::Push => {
            if f.status != FactorStatus::Active {
                return None;
            }
            p.insert("credentialId".into(), json!(f.credential_id));
            p.insert("deviceType".into(), json!("SmartPhone_IPhone"));
            p.insert("name".into(), json!(f.device_name));
            p.insert("platform".into(), json!("IOS"));
            p.insert("version".into(), json!("9.0"));
        }
    }
    Some(Value::Object(p))
}

/// A factor as Okta renders it. Pending TOTP and push factors embed their activation
/// object (shared secret, QR code link; push: expiry and result).
pub fn factor_json(f: &SimFactor, base: &str, now: OffsetDateTime) -> Value {
    let me = factor_url(base, f);
    let mut links = Map::new();
    let mut embedded = Map::new();
    match f.status {
        FactorStatus::Active => {
            links.insert("verify".into(), hinted(format!("{me}/verify"), &["POST"]));
            links.insert("self".into(), hinted(me.clone(), &["GET", "DELETE"]));
        }
        FactorStatus::PendingActivation => {
            match f.factor_type {
                FactorType::Push => {
                    let timed_out = f.push_timed_out(now);
                    if timed_out {
                        links.insert(
                            "activate".into(),
                            hinted(format!("{me}/lifecycle/activate"), &["POST"]),
                        );
                    } else {
                        links.insert(
                            "poll".into(),
                            hinted(format!("{me}/lifecycle/activate/poll"), &["POST"]),
                        );
                    }
                    let mut activation = Map::new();
                    activation.insert(
                        "expiresAt".into(),
                        json!(f.activation_expires.map(timestamp)),
                    );
                    activation.insert(
                        "factorResult".into(),
                        json!(if timed_out { "TIMEOUT" } else { "WAITING" }),
                    );
                    if !timed_out && let Some(qr) = qr_link(base, f) {
                        activation.insert("_links".into(), json!({ "qrcode": qr }));
                    }
                    embedded.insert("activation".into(), Value::Object(activation));
                }
                FactorType::Totp => {
                    links.insert(
                        "activate".into(),
                        hinted(format!("{me}/lifecycle/activate"), &["POST"]),
                    );
                    let mut activation = Map::new();
                    activation.insert("timeStep".into(), json!(TOTP_STEP_SECS));
                    activation.insert("sharedSecret".into(), json!(f.totp_secret_base32()));
                    activation.insert("encoding".into(), json!("base32"));
                    activation.insert("keyLength".into(), json!(TOTP_DIGITS));
                    if let Some(qr) = qr_link(base, f) {
                        activation.insert("_links".into(), json!({ "qrcode": qr }));
                    }
                    embedded.insert("activation".into(), Value::Object(activation));
                }
                FactorType::Sms | FactorType::Call | FactorType::Email => {
                    links.insert(
                        "activate".into(),
                        hinted(format!("{me}/lifecycle/activate"), &["POST"]),
                    );
                    links.insert(
                        "resend".into(),
                        json!([{
                            "name": f.factor_type.as_str(),
                            "href": format!("{me}/resend"),
                            "hints": { "allow": ["POST"] },
                        }]),
                    );
                }
            }
            links.insert("self".into(), hinted(me.clone(), &["GET"]));
        }
    }
    links.insert("user".into(), hinted(user_url(base, &f.user_id), &["GET"]));
    let mut v = Map::new();
    v.insert("id".into(), json!(f.id));
    v.insert("factorType".into(), json!(f.factor_type.as_str()));
    v.insert("provider".into(), json!(f.provider));
    v.insert("vendorName".into(), json!(f.provider));
    v.insert("status".into(), json!(f.status.as_str()));
    v.insert("created".into(), json!(timestamp(f.created)));
    v.insert("lastUpdated".into(), json!(timestamp(f.last_updated)));
    if let Some(profile) = profile_json(f) {
        v.insert("profile".into(), profile);
    }
    v.insert("_links".into(), Value::Object(links));
    if !embedded.is_empty() {
        v.insert("_embedded".into(), Value::Object(embedded));
    }
    Value::Object(v)
}

/// The System Log target for a factor.
pub fn factor_target(f: &SimFactor) -> Value {
    json!({
        "id": f.id,
        "type": "AuthenticatorEnrollment",
        "alternateId": "unknown",
        "displayName": f.display_name(),
        "detailEntry": {
            "factorType": f.factor_type.as_str(),
            "provider": f.provider,
        },
    })
}

// ---------------------------------------------------------------------------------------
// Errors

fn factor_not_found(factor_id: &str) -> ApiError {
    ApiError::not_found(factor_id, "UserFactor")
}

fn enroll_failed(cause: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "E0000001",
        "Api validation failed: factorEnrollRequest",
    )
    .with_causes(vec![cause.to_string()])
}

fn not_allowed() -> ApiError {
    enroll_failed("Factor not allowed for the user based on the Multifactor policy.")
}

fn already_active() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "E0000001",
        "Api validation failed: factor",
    )
    .with_causes(vec!["factor: The factor is already active.".into()])
}

fn not_active() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "E0000001",
        "Api validation failed: factor",
    )
    .with_causes(vec!["factor: The factor is not active.".into()])
}

fn invalid_passcode() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "E0000068", "Invalid Passcode/Answer").with_causes(vec![
        "Your passcode doesn't match our records. Please try again.".into(),
    ])
}

fn passcode_replayed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "E0000082",
        "Each code can only be used once. Please wait for a new code and try again.",
    )
}

fn passcode_too_old() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "E0000083",
        "PassCode is valid but exceeded time window.",
    )
}

fn user_locked() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "E0000069", "User Locked")
}

fn recently_sent(channel: Channel) -> ApiError {
    match channel {
        Channel::Call => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000133",
            "A phone call was recently made. Please wait 30 seconds before trying again.",
        ),
        _ => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000109",
            "An SMS message was recently sent. Please wait 30 seconds before trying again.",
        ),
    }
}

fn blank(field: &str) -> ApiError {
    ApiError::validation(vec![(
        field.to_string(),
        "The field cannot be left blank".to_string(),
    )])
}

// ---------------------------------------------------------------------------------------
// Helpers

fn user_by_id(store: &Store, user_id: &str) -> Result<SimUser, ApiError> {
    store
        .users
        .get(user_id)
        .cloned()
        .ok_or_else(|| ApiError::user_not_found(user_id))
}

/// The user, refused (403 `E0000038`) when deactivated: factor writes need a live user.
fn writable_user(store: &Store, user_id: &str) -> Result<SimUser, ApiError> {
    let user = user_by_id(store, user_id)?;
    if user.status == UserStatus::Deprovisioned {
        return Err(ApiError::wrong_status());
    }
    Ok(user)
}

fn factor_index(store: &Store, user_id: &str, factor_id: &str) -> Result<usize, ApiError> {
    store
        .factors
        .iter()
        .position(|f| f.id == factor_id && f.user_id == user_id)
        .ok_or_else(|| factor_not_found(factor_id))
}

/// A JSON object body; an empty body counts as `{}` when `optional`.
fn object_body(body: &Bytes, optional: bool) -> Result<Map<String, Value>, ApiError> {
    if optional && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) if optional => Ok(Map::new()),
        _ => Err(ApiError::malformed_body()),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// The `passCode` of an activate/verify body (a string; numbers are accepted too).
fn passcode(body: &Map<String, Value>) -> Option<String> {
    match body.get("passCode") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The digits of a phone number (how numbers are compared).
pub fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// E.164 once separators (space, `-`, `.`, parentheses) are removed: `+`, then 2–15
/// digits not starting with 0 (`^\+[1-9]\d{1,14}$`).
pub fn valid_phone(phone: &str) -> bool {
    let Some(rest) = phone.trim().strip_prefix('+') else {
        return false;
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return false;
    }
    let digits = phone_digits(rest);
    (2..=15).contains(&digits.len()) && !digits.starts_with('0')
}

fn six_digits() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

fn new_factor_id(store: &mut Store, factor_type: FactorType) -> String {
    loop {
        store.factor_seq += 1;
        let id = okta_id(factor_type.id_prefix(), 7_000_000 + store.factor_seq);
        if !store.factors.iter().any(|f| f.id == id) {
            return id;
        }
    }
}

fn qr_token() -> String {
    format!("00{}", random_token(40))
}

fn totp(secret: &[u8]) -> Option<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(TOTP_DIGITS as u8)
        .with_skew(1)
        .with_step_duration(TOTP_STEP_SECS)
        .with_secret(secret.to_vec())
        .build()
        .ok()
}

/// Refuses a second sms (or call) to the same number within 30 s (any user, any factor).
fn check_cooldown(
    store: &Store,
    channel: Channel,
    phone: &str,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    if channel == Channel::Email {
        return Ok(());
    }
    let digits = phone_digits(phone);
    let recent = store.outbox.iter().rev().any(|m| {
        m.channel == channel
            && phone_digits(&m.destination) == digits
            && now - m.sent_at < time::Duration::seconds(PHONE_COOLDOWN_SECS)
    });
    if recent {
        Err(recently_sent(channel))
    } else {
        Ok(())
    }
}

/// "Sends" a new passcode for factor `idx` (checking the phone cool-down first).
fn send_code(
    store: &mut Store,
    idx: usize,
    lifetime_secs: i64,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let f = &store.factors[idx];
    let Some(channel) = f.factor_type.channel() else {
        return Ok(());
    };
    let destination = match channel {
        Channel::Email => f.email.clone(),
        Channel::Sms | Channel::Call => f.phone_number.clone(),
    }
    .unwrap_or_default();
    check_cooldown(store, channel, &destination, now)?;
    let code = six_digits();
    let expires_at = now + time::Duration::seconds(lifetime_secs);
    let message = OutboxMessage {
        sent_at: now,
        expires_at,
        user_id: f.user_id.clone(),
        factor_id: f.id.clone(),
        channel,
        destination,
        text: message_text(channel, &code),
        code: code.clone(),
        link: None,
    };
    store.outbox.push(message);
    let f = &mut store.factors[idx];
    f.last_code = Some(SentCode {
        code,
        sent_at: now,
        expires_at,
        used: false,
    });
    Ok(())
}

fn lifetime_for(f: &SimFactor) -> i64 {
    if f.factor_type == FactorType::Email {
        f.token_lifetime_secs
    } else {
        OTP_LIFETIME_SECS
    }
}

/// `tokenLifetimeSeconds`: 1–86400.
fn token_lifetime(params: &Params) -> Result<Option<i64>, ApiError> {
    let Some(v) = params.get("tokenLifetimeSeconds") else {
        return Ok(None);
    };
    match v.trim().parse::<i64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: tokenLifetimeSeconds",
        )
        .with_causes(vec![
            "tokenLifetimeSeconds should be in the range of 1 to 86400 inclusive.".into(),
        ])),
    }
}

/// Checks a passcode against factor `idx` and consumes it on success.
fn check_passcode(
    store: &mut Store,
    idx: usize,
    code: &str,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let f = &mut store.factors[idx];
    match f.factor_type {
        FactorType::Totp => {
            let secret = f.totp_secret.clone().unwrap_or_default();
            let Some(totp) = totp(&secret) else {
                return Err(invalid_passcode());
            };
            let t = u64::try_from(now.unix_timestamp()).unwrap_or(0);
            match totp.check(code, t) {
                Some(step) => {
                    if f.last_totp_step.is_some_and(|last| step <= last) {
                        return Err(passcode_replayed());
                    }
                    f.last_totp_step = Some(step);
                    Ok(())
                }
                None => {
                    let current = t / TOTP_STEP_SECS;
                    let late = (current.saturating_sub(TOTP_LATE_STEPS)
                        ..=current + TOTP_LATE_STEPS)
                        .find(|s| totp.generate(s * TOTP_STEP_SECS).to_string() == code);
                    match late {
                        Some(_) => Err(passcode_too_old()),
                        None => Err(invalid_passcode()),
                    }
                }
            }
        }
        FactorType::Sms | FactorType::Call | FactorType::Email => {
            let Some(sent) = f.last_code.as_mut() else {
                return Err(invalid_passcode());
            };
            if sent.code != code {
                return Err(invalid_passcode());
            }
            if sent.used {
                return Err(passcode_replayed());
            }
            if now >= sent.expires_at {
                return Err(passcode_too_old());
            }
            sent.used = true;
            Ok(())
        }
        FactorType::Push => Err(invalid_passcode()),
    }
}

fn log(store: &mut Store, source: &EventSource, event: &str, user: &SimUser, f: &SimFactor) {
    syslog::append(
        store,
        source,
        event,
        vec![user_target(user), factor_target(f)],
    );
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

// ---------------------------------------------------------------------------------------
// GET /factors, /factors/catalog, /factors/questions, /factors/{factorId}

pub async fn list_factors(State(state): State<SimState>, Path(user_id): Path<String>) -> ApiResult {
    let now = OffsetDateTime::now_utc();
    let store = state.store();
    let user = user_by_id(&store, &user_id)?;
    let items: Vec<Value> = store
        .factors
        .iter()
        .filter(|f| f.user_id == user.id)
        .map(|f| factor_json(f, state.base_url(), now))
        .collect();
    Ok(axum::Json(Value::Array(items)).into_response())
}

pub async fn catalog(State(state): State<SimState>, Path(user_id): Path<String>) -> ApiResult {
    let store = state.store();
    let user = user_by_id(&store, &user_id)?;
    let base = state.base_url();
    let enroll = hinted(format!("{}/factors", user_url(base, &user.id)), &["POST"]);
    let items: Vec<Value> = CATALOG
        .iter()
        .map(|(factor_type, provider)| {
            let enrolled = store.factors.iter().find(|f| {
                f.user_id == user.id && f.factor_type == *factor_type && f.provider == *provider
            });
            let mut entry = Map::new();
            entry.insert("factorType".into(), json!(factor_type.as_str()));
            entry.insert("provider".into(), json!(provider));
            entry.insert("vendorName".into(), json!(provider));
            entry.insert(
                "status".into(),
                json!(enrolled.map_or("NOT_SETUP", |f| f.status.as_str())),
            );
            entry.insert("enrollment".into(), json!("OPTIONAL"));
            let mut links = Map::new();
            if enrolled.is_none() {
                links.insert("enroll".into(), enroll.clone());
            }
            entry.insert("_links".into(), Value::Object(links));
            if let Some(f) = enrolled
                && matches!(factor_type, FactorType::Sms | FactorType::Call)
            {
                entry.insert(
                    "_embedded".into(),
                    json!({ "phones": [{
                        "id": f.id,
                        "profile": { "phoneNumber": f.phone_number },
                        "status": f.status.as_str(),
                    }] }),
                );
            }
            Value::Object(entry)
        })
        .collect();
    Ok(axum::Json(Value::Array(items)).into_response())
}

pub async fn questions(State(state): State<SimState>, Path(user_id): Path<String>) -> ApiResult {
    user_by_id(&state.store(), &user_id)?;
    Ok(axum::Json(json!([
        { "question": "disliked_food", "questionText": "What is the food you least liked as a child?" },
        { "question": "name_of_first_plush_toy", "questionText": "What is the name of your first stuffed animal?" },
        { "question": "first_award", "questionText": "What did you earn your first medal or award for?" },
        { "question": "favorite_security_question", "questionText": "What is your favorite security question?" },
        { "question": "favorite_toy", "questionText": "What is the toy/stuffed animal you liked the most as a kid?" },
        { "question": "first_computer_game", "questionText": "What was the first computer game you played?" },
    ]))
    .into_response())
}

pub async fn get_factor(
    State(state): State<SimState>,
    Path((user_id, factor_id)): Path<(String, String)>,
) -> ApiResult {
    let store = state.store();
    user_by_id(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    let v = factor_json(
        &store.factors[idx],
        state.base_url(),
        OffsetDateTime::now_utc(),
    );
    Ok(axum::Json(v).into_response())
}

// ---------------------------------------------------------------------------------------
// POST /factors (enroll)

struct EnrollRequest {
    factor_type: FactorType,
    provider: String,
    phone_number: Option<String>,
    phone_extension: Option<String>,
    email: Option<String>,
}

fn parse_enroll(body: &Map<String, Value>, user: &SimUser) -> Result<EnrollRequest, ApiError> {
    let raw_type = match body.get("factorType") {
        None | Some(Value::Null) => return Err(blank("factorType")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::malformed_body()),
    };
    if !KNOWN_FACTOR_TYPES.contains(&raw_type.as_str()) {
        return Err(ApiError::malformed_body());
    }
    let provider = match body.get("provider") {
        None | Some(Value::Null) => return Err(blank("provider")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::malformed_body()),
    };
    let Some(factor_type) = FactorType::parse(&raw_type) else {
        return Err(not_allowed());
    };
    if !CATALOG
        .iter()
        .any(|(t, p)| *t == factor_type && *p == provider)
    {
        return Err(not_allowed());
    }
    let profile = match body.get("profile") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err(ApiError::malformed_body()),
    };
    let mut request = EnrollRequest {
        factor_type,
        provider,
        phone_number: None,
        phone_extension: None,
        email: None,
    };
    match factor_type {
        FactorType::Sms | FactorType::Call => {
            let Some(phone) = text(profile.get("phoneNumber")) else {
                return Err(blank("phoneNumber"));
            };
            if !valid_phone(&phone) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: factorEnrollRequest",
                )
                .with_causes(vec!["phoneNumber: Invalid Phone Number.".into()]));
            }
            request.phone_number = Some(phone);
            if factor_type == FactorType::Call
                && let Some(ext) = text(profile.get("phoneExtension"))
            {
                if ext.len() > 15 || !ext.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ApiError::validation(vec![(
                        "phoneExtension".into(),
                        "Invalid phone extension: at most 15 digits".into(),
                    )]));
                }
                request.phone_extension = Some(ext);
            }
        }
        FactorType::Email => {
            let Some(email) = text(profile.get("email")) else {
                return Err(blank("email"));
            };
            let known = [Some(&user.email), user.second_email.as_ref()]
                .into_iter()
                .flatten()
                .any(|e| e.eq_ignore_ascii_case(&email));
            if !known {
                return Err(enroll_failed(
                    "Only verified primary or secondary email can be enrolled.",
                ));
            }
            request.email = Some(email);
        }
        FactorType::Totp | FactorType::Push => {}
    }
    Ok(request)
}

pub async fn enroll(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let activate = params.flag("activate", false)?;
    let update_phone = params.flag("updatePhone", false)?;
    let lifetime = token_lifetime(&params)?;
    let body = object_body(&body, false)?;
    let source = EventSource::from(&ctx);
    let now = OffsetDateTime::now_utc();
    let base = state.base_url().to_string();

    let mut store = state.store();
    let user = writable_user(&store, &user_id)?;
    let request = parse_enroll(&body, &user)?;
    let auto_activate = activate
        && matches!(
            request.factor_type,
            FactorType::Sms | FactorType::Call | FactorType::Email
        );

    // One enrollment per factor type and provider.
    if let Some(idx) = store.factors.iter().position(|f| {
        f.user_id == user.id
            && f.factor_type == request.factor_type
            && f.provider == request.provider
    }) {
        let existing = &store.factors[idx];
        let phone_factor = matches!(request.factor_type, FactorType::Sms | FactorType::Call);
        let same_phone = existing.phone_number.as_deref().map(phone_digits)
            == request.phone_number.as_deref().map(phone_digits);
        if phone_factor && existing.status == FactorStatus::Active && !same_phone {
            return Err(enroll_failed("There is an existing verified phone number."));
        }
        if !(phone_factor && existing.status == FactorStatus::PendingActivation && update_phone) {
            return Err(enroll_failed("A factor of this type is already set up."));
        }
        // updatePhone: replace the number of the pending enrollment and send a new code.
        if let (Some(channel), Some(phone)) = (request.factor_type.channel(), &request.phone_number)
            && !auto_activate
        {
            check_cooldown(&store, channel, phone, now)?;
        }
        let f = &mut store.factors[idx];
        f.phone_number = request.phone_number.clone();
        f.phone_extension = request.phone_extension.clone();
        f.last_updated = now;
        f.last_code = None;
        if auto_activate {
            f.status = FactorStatus::Active;
        } else {
            send_code(&mut store, idx, OTP_LIFETIME_SECS, now)?;
        }
        let f = store.factors[idx].clone();
        log(&mut store, &source, "user.mfa.factor.update", &user, &f);
        if auto_activate {
            log(&mut store, &source, "user.mfa.factor.activate", &user, &f);
        }
        return Ok(json_response(StatusCode::OK, factor_json(&f, &base, now)));
    }

    // A code must be sendable before anything is created.
    if !auto_activate
        && let (Some(channel), Some(phone)) = (request.factor_type.channel(), &request.phone_number)
    {
        check_cooldown(&store, channel, phone, now)?;
    }
    let id = new_factor_id(&mut store, request.factor_type);
    let totp_secret = (request.factor_type == FactorType::Totp).then(|| {
        use rand::RngCore;
        let mut secret = vec![0u8; 20];
        rand::rng().fill_bytes(&mut secret);
        secret
    });
    let with_qr = matches!(request.factor_type, FactorType::Totp | FactorType::Push);
    let factor = SimFactor {
        id,
        user_id: user.id.clone(),
        factor_type: request.factor_type,
        provider: request.provider,
        status: if auto_activate {
            FactorStatus::Active
        } else {
            FactorStatus::PendingActivation
        },
        created: now,
        last_updated: now,
        phone_number: request.phone_number,
        phone_extension: request.phone_extension,
        email: request.email,
        credential_id: with_qr.then(|| user.login.clone()),
        totp_secret,
        last_totp_step: None,
        qr_token: with_qr.then(qr_token),
        activation_expires: (request.factor_type == FactorType::Push)
            .then(|| now + time::Duration::seconds(PUSH_WAIT_SECS)),
        token_lifetime_secs: lifetime.unwrap_or(OTP_LIFETIME_SECS),
        last_code: None,
        activation_attempts: Vec::new(),
        device_name: None,
    };
    store.factors.push(factor);
    let idx = store.factors.len() - 1;
    if !auto_activate {
        let lifetime = lifetime_for(&store.factors[idx]);
        send_code(&mut store, idx, lifetime, now)?;
    }
    let f = store.factors[idx].clone();
    log(&mut store, &source, "user.mfa.factor.update", &user, &f);
    if auto_activate {
        log(&mut store, &source, "user.mfa.factor.activate", &user, &f);
    }
    Ok(json_response(StatusCode::OK, factor_json(&f, &base, now)))
}

// ---------------------------------------------------------------------------------------
// POST /factors/{factorId}/lifecycle/activate, …/lifecycle/activate/poll

/// Counts an activation attempt; the sixth within five minutes is refused (429).
fn count_attempt(f: &mut SimFactor, now: OffsetDateTime) -> Result<(), ApiError> {
    let window = time::Duration::seconds(ATTEMPT_WINDOW_SECS);
    f.activation_attempts.retain(|t| now - *t < window);
    if f.activation_attempts.len() >= MAX_ACTIVATION_ATTEMPTS {
        return Err(ApiError::rate_limited());
    }
    f.activation_attempts.push(now);
    Ok(())
}

fn attempts_exhausted(f: &SimFactor, now: OffsetDateTime) -> bool {
    let window = time::Duration::seconds(ATTEMPT_WINDOW_SECS);
    f.activation_attempts
        .iter()
        .filter(|t| now - **t < window)
        .count()
        >= MAX_ACTIVATION_ATTEMPTS
}

pub async fn activate(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path((user_id, factor_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body, true)?;
    let source = EventSource::from(&ctx);
    let now = OffsetDateTime::now_utc();
    let base = state.base_url().to_string();
    let mut store = state.store();
    let user = writable_user(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    if store.factors[idx].status == FactorStatus::Active {
        return Err(already_active());
    }
    if store.factors[idx].factor_type == FactorType::Push {
        // (Re)starts the activation: a new QR code, waiting for the device.
        let f = &mut store.factors[idx];
        f.activation_expires = Some(now + time::Duration::seconds(PUSH_WAIT_SECS));
        f.qr_token = Some(qr_token());
        f.last_updated = now;
        let v = factor_json(f, &base, now);
        return Ok(json_response(StatusCode::OK, v));
    }
    let Some(code) = passcode(&body) else {
        return Err(blank("passCode"));
    };
    count_attempt(&mut store.factors[idx], now)?;
    check_passcode(&mut store, idx, &code, now)?;
    let f = &mut store.factors[idx];
    f.status = FactorStatus::Active;
    f.last_updated = now;
    f.qr_token = None;
    let f = f.clone();
    log(&mut store, &source, "user.mfa.factor.activate", &user, &f);
    Ok(json_response(StatusCode::OK, factor_json(&f, &base, now)))
}

pub async fn poll_activation(
    State(state): State<SimState>,
    Path((user_id, factor_id)): Path<(String, String)>,
) -> ApiResult {
    let now = OffsetDateTime::now_utc();
    let store = state.store();
    user_by_id(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    let f = &store.factors[idx];
    if f.factor_type != FactorType::Push {
        return Err(factor_not_found(&factor_id));
    }
    Ok(json_response(
        StatusCode::OK,
        factor_json(f, state.base_url(), now),
    ))
}

// ---------------------------------------------------------------------------------------
// POST /factors/{factorId}/resend

pub async fn resend(
    State(state): State<SimState>,
    Path((user_id, factor_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body, false)?;
    let now = OffsetDateTime::now_utc();
    let base = state.base_url().to_string();
    let mut store = state.store();
    writable_user(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    let f = &store.factors[idx];
    if let Some(requested) = text(body.get("factorType"))
        && requested != f.factor_type.as_str()
    {
        return Err(ApiError::validation(vec![(
            "factorType".into(),
            format!("The factor type must be {}", f.factor_type.as_str()),
        )]));
    }
    if f.factor_type.channel().is_none() {
        return Err(ApiError::validation(vec![(
            "factorType".into(),
            "Resend is only supported for sms, call and email factors".into(),
        )]));
    }
    if f.status == FactorStatus::Active {
        return Err(already_active());
    }
    if attempts_exhausted(f, now) {
        return Err(ApiError::rate_limited());
    }
    let lifetime = lifetime_for(f);
    send_code(&mut store, idx, lifetime, now)?;
    let f = &mut store.factors[idx];
    f.last_updated = now;
    let v = factor_json(f, &base, now);
    Ok(json_response(StatusCode::OK, v))
}

// ---------------------------------------------------------------------------------------
// POST /factors/{factorId}/verify, GET /factors/{factorId}/transactions/{transactionId}

pub async fn verify(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path((user_id, factor_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    let lifetime = token_lifetime(&params)?;
    let body = object_body(&body, true)?;
    let source = EventSource::from(&ctx);
    let now = OffsetDateTime::now_utc();
    let base = state.base_url().to_string();
    let mut store = state.store();
    let user = writable_user(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    if user.status == UserStatus::LockedOut {
        return Err(user_locked());
    }
    let f = store.factors[idx].clone();
    if f.status != FactorStatus::Active {
        return Err(not_active());
    }
    let me = factor_url(&base, &f);
    let code = passcode(&body);
    match (f.factor_type, code) {
        (FactorType::Push, _) => {
            let tx = PushTransaction {
                id: format!("v2mst.{}", random_token(22)),
                factor_id: f.id.clone(),
                user_id: user.id.clone(),
                expires_at: now + time::Duration::seconds(PUSH_WAIT_SECS),
                result: PushResult::Waiting,
            };
            let v = json!({
                "expiresAt": timestamp(tx.expires_at),
                "factorResult": "WAITING",
                "profile": { "credentialId": f.credential_id },
                "_links": {
                    "poll": hinted(format!("{me}/transactions/{}", tx.id), &["GET"]),
                },
            });
            store.push_transactions.push(tx);
            Ok(json_response(StatusCode::CREATED, v))
        }
        (FactorType::Sms | FactorType::Call | FactorType::Email, None) => {
            let lifetime = match f.factor_type {
                FactorType::Email => lifetime.unwrap_or(f.token_lifetime_secs),
                _ => OTP_LIFETIME_SECS,
            };
            send_code(&mut store, idx, lifetime, now)?;
            let mut v = json!({
                "factorResult": "CHALLENGE",
                "_links": {
                    "verify": hinted(format!("{me}/verify"), &["POST"]),
                    "factor": hinted(me.clone(), &["GET", "DELETE"]),
                },
            });
            if f.factor_type != FactorType::Email
                && let Some(profile) = profile_json(&f)
            {
                v["profile"] = profile;
            }
            Ok(json_response(StatusCode::OK, v))
        }
        (FactorType::Totp, None) => Err(blank("passCode")),
        (_, Some(code)) => {
            check_passcode(&mut store, idx, &code, now)?;
            syslog::append(
                &mut store,
                &source,
                "user.authentication.auth_via_mfa",
                vec![user_target(&user), factor_target(&f)],
            );
            Ok(json_response(
                StatusCode::OK,
                json!({ "factorResult": "SUCCESS" }),
            ))
        }
    }
}

pub async fn transaction(
    State(state): State<SimState>,
    Path((user_id, factor_id, transaction_id)): Path<(String, String, String)>,
) -> ApiResult {
    let now = OffsetDateTime::now_utc();
    let store = state.store();
    user_by_id(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    let f = &store.factors[idx];
    let Some(tx) = store
        .push_transactions
        .iter()
        .find(|t| t.id == transaction_id && t.factor_id == f.id)
    else {
        return Err(ApiError::not_found(&transaction_id, "Transaction"));
    };
    let me = factor_url(state.base_url(), f);
    let retry_links = json!({
        "verify": hinted(format!("{me}/verify"), &["POST"]),
        "factor": hinted(me.clone(), &["GET", "DELETE"]),
    });
    let v = match tx.result {
        PushResult::Success => json!({ "factorResult": "SUCCESS" }),
        PushResult::Rejected => json!({
            "factorResult": "REJECTED",
            "profile": { "credentialId": f.credential_id },
            "_links": retry_links,
        }),
        PushResult::Waiting if tx.expires_at <= now => json!({
            "factorResult": "TIMEOUT",
            "profile": { "credentialId": f.credential_id },
            "_links": retry_links,
        }),
        PushResult::Waiting => json!({
            "expiresAt": timestamp(tx.expires_at),
            "factorResult": "WAITING",
            "profile": { "credentialId": f.credential_id },
            "_links": {
                "poll": hinted(format!("{me}/transactions/{}", tx.id), &["GET"]),
            },
        }),
    };
    Ok(json_response(StatusCode::OK, v))
}

// ---------------------------------------------------------------------------------------
// GET /factors/{factorId}/qr/{token}

pub async fn qr_code(
    State(state): State<SimState>,
    Path((user_id, factor_id, token)): Path<(String, String, String)>,
) -> ApiResult {
    let now = OffsetDateTime::now_utc();
    let store = state.store();
    let user = user_by_id(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    let f = &store.factors[idx];
    let live = f.status == FactorStatus::PendingActivation
        && f.qr_token.as_deref() == Some(token.as_str())
        && !f.push_timed_out(now);
    if !live {
        return Err(ApiError::not_found(&token, "QRCode"));
    }
    let host = state
        .base_url()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let content = match f.factor_type {
        FactorType::Totp => format!(
            "otpauth://totp/{issuer}:{login}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
            issuer = enc(&host),
            login = enc(&user.login),
            secret = f.totp_secret_base32().unwrap_or_default(),
        ),
        _ => format!(
            "oktaverify://email/{login}?t={token}&f={factor}&s={org}",
            login = enc(&user.login),
            factor = f.id,
            org = enc(state.base_url()),
        ),
    };
    drop(store);
    let svg = qrcode::QrCode::new(content.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        .map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

// ---------------------------------------------------------------------------------------
// DELETE /factors/{factorId}

pub async fn unenroll(
    State(state): State<SimState>,
    Extension(ctx): Extension<ApiContext>,
    Path((user_id, factor_id)): Path<(String, String)>,
) -> ApiResult {
    let params = Params::parse(ctx.query.as_deref());
    params.flag("removeRecoveryEnrollment", false)?;
    let source = EventSource::from(&ctx);
    let mut store = state.store();
    let user = writable_user(&store, &user_id)?;
    let idx = factor_index(&store, &user_id, &factor_id)?;
    let target = store.factors[idx].clone();
    // Unenrolling Okta Verify push also unenrolls the user's Okta Verify TOTP.
    let removed: Vec<SimFactor> = store
        .factors
        .iter()
        .filter(|f| {
            f.id == target.id
                || (target.factor_type == FactorType::Push
                    && f.user_id == user.id
                    && f.factor_type == FactorType::Totp
                    && f.provider == "OKTA")
        })
        .cloned()
        .collect();
    remove_factors(&mut store, |f| removed.iter().any(|r| r.id == f.id));
    for f in &removed {
        log(&mut store, &source, "user.mfa.factor.deactivate", &user, f);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes the matching factors and their push transactions; returns how many went.
pub fn remove_factors(store: &mut Store, mut matches: impl FnMut(&SimFactor) -> bool) -> usize {
    let before = store.factors.len();
    let mut gone: Vec<String> = Vec::new();
    store.factors.retain(|f| {
        if matches(f) {
            gone.push(f.id.clone());
            false
        } else {
            true
        }
    });
    store
        .push_transactions
        .retain(|t| !gone.contains(&t.factor_id));
    before - store.factors.len()
}

// ---------------------------------------------------------------------------------------
// The simulated Okta Verify device

/// Answers the pending push for a factor: a pending activation (approve activates it) or
/// the newest waiting verification. False if nothing was waiting.
pub fn answer_push(state: &SimState, factor_id: &str, approve: bool) -> bool {
    let now = OffsetDateTime::now_utc();
    let mut store = state.store();
    let Some(idx) = store.factors.iter().position(|f| f.id == factor_id) else {
        return false;
    };
    let f = store.factors[idx].clone();
    if f.factor_type != FactorType::Push {
        return false;
    }
    if f.status == FactorStatus::PendingActivation {
        if f.push_timed_out(now) {
            return false;
        }
        let f = &mut store.factors[idx];
        if approve {
            f.status = FactorStatus::Active;
            f.device_name = Some("Simulated iPhone".into());
            f.qr_token = None;
        } else {
            f.activation_expires = Some(now);
        }
        f.last_updated = now;
        let f = f.clone();
        if approve && let Some(user) = store.users.get(&f.user_id).cloned() {
            let source = device_source(&user, &f);
            log(&mut store, &source, "user.mfa.factor.activate", &user, &f);
        }
        return true;
    }
    let Some(tx) = store.push_transactions.iter_mut().rev().find(|t| {
        t.factor_id == factor_id && t.result == PushResult::Waiting && t.expires_at > now
    }) else {
        return false;
    };
    tx.result = if approve {
        PushResult::Success
    } else {
        PushResult::Rejected
    };
    if let Some(user) = store.users.get(&f.user_id).cloned() {
        let source = device_source(&user, &f);
        let event = if approve {
            "user.authentication.auth_via_mfa"
        } else {
            "user.mfa.okta_verify.deny_push"
        };
        syslog::append(
            &mut store,
            &source,
            event,
            vec![user_target(&user), factor_target(&f)],
        );
    }
    true
}

/// The event source of an answer given on the (simulated) device: the user acts.
fn device_source(user: &SimUser, f: &SimFactor) -> EventSource {
    EventSource {
        request_id: request_id(),
        actor: json!({
            "id": user.id,
            "type": "User",
            "alternateId": user.login,
            "displayName": user.display_name(),
            "detailEntry": null,
        }),
        user_agent: "OktaVerify/9.0 (simulated)".into(),
        ip: "127.0.0.1".into(),
        path: format!("/api/v1/users/{}/factors/{}", user.id, f.id),
        query: None,
        api_token_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert!(valid_phone("+15554151337"));
        assert!(valid_phone("+1-555-415-1337"));
        assert!(valid_phone("+44 (20) 7946 0958"));
        assert!(!valid_phone("5554151337"));
        assert!(!valid_phone("+0123"));
        assert!(!valid_phone("+1555abc1337"));
        assert!(!valid_phone("+1234567890123456"));
        assert_eq!(phone_digits("+1-555-415-1337"), "15554151337");
    }

    #[test]
    fn totp_matches_rfc6238_vectors() {
        // RFC 6238 appendix B, SHA-1, truncated to 6 digits.
        let t = totp(b"12345678901234567890").unwrap();
        assert_eq!(t.generate(59).to_string(), "287082");
        assert_eq!(t.generate(1_111_111_109).to_string(), "081804");
        assert_eq!(
            t.check("081804", 1_111_111_109 + 30),
            Some(1_111_111_109 / 30)
        );
    }

    #[test]
    fn factor_ids_have_okta_prefixes() {
        let mut store = super::super::store::seed(OffsetDateTime::now_utc(), 0);
        for (t, prefix) in [
            (FactorType::Totp, "ostf"),
            (FactorType::Sms, "sms"),
            (FactorType::Call, "clf"),
            (FactorType::Email, "emf"),
            (FactorType::Push, "opf"),
        ] {
            let id = new_factor_id(&mut store, t);
            assert_eq!(id.len(), 20);
            assert!(id.starts_with(prefix), "{id}");
        }
    }
}
