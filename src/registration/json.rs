//! The JSON equivalents for a single-page or mobile app: `GET /v1/challenge`,
//! `POST /v1/register`, `POST /v1/forgot-password`. Errors are RFC 9457 problem documents.
//! Every call needs a solved challenge (there is no no-JavaScript excuse here).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::{Ctx, Shared};
use super::pow::PowError;
use super::submit::{Kind, Refused, Sender, Submission};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterBody {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    altcha: Option<String>,
    #[serde(default)]
    website: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    altcha: Option<String>,
    #[serde(default)]
    website: String,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: &'static str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    errors: BTreeMap<String, String>,
}

fn problem(ctx: &Ctx, status: StatusCode, code: &'static str, detail: &str) -> Response {
    problem_with(ctx, status, code, detail, BTreeMap::new())
}

fn problem_with(
    ctx: &Ctx,
    status: StatusCode,
    code: &'static str,
    detail: &str,
    errors: BTreeMap<String, String>,
) -> Response {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
        request_id: &ctx.request_id,
        errors,
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn rejected(ctx: &Ctx, rejection: &JsonRejection) -> Response {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => problem(
            ctx,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => problem(
            ctx,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "The body is larger than this endpoint accepts.",
        ),
        JsonRejection::JsonSyntaxError(_) => problem(
            ctx,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The body is not valid JSON.",
        ),
        _ => problem(
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "The body does not have the expected fields.",
        ),
    }
}

fn refusal(ctx: &Ctx, refused: Refused) -> Response {
    match refused {
        Refused::Invalid(errors) => problem_with(
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Some fields are not valid; see errors.",
            errors,
        ),
        Refused::Limited(wait) => {
            let mut response = problem(
                ctx,
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many attempts; try again later.",
            );
            if let Ok(v) = HeaderValue::from_str(&wait.0.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Refused::Honeypot => problem(
            ctx,
            StatusCode::BAD_REQUEST,
            "rejected",
            "The submission was not accepted.",
        ),
        Refused::Pow(e) => {
            let code = match e {
                PowError::Missing => "pow_missing",
                PowError::Invalid => "pow_invalid",
                PowError::Expired => "pow_expired",
                PowError::Reused => "pow_reused",
            };
            problem(
                ctx,
                StatusCode::BAD_REQUEST,
                code,
                &format!("{e}; get a new challenge from /v1/challenge."),
            )
        }
        Refused::Unavailable => problem(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is not available right now; try again later.",
        ),
    }
}

fn accepted(message: &str) -> Response {
    let body = json!({ "status": "accepted", "message": message });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// A challenge to solve, harder for an address that keeps failing.
pub async fn challenge(State(state): State<Shared>, ctx: Ctx) -> Response {
    match state.pow.challenge(state.abuse.difficulty(ctx.ip).await) {
        Ok(challenge) => Json(challenge).into_response(),
        Err(e) => {
            tracing::error!(request_id = %ctx.request_id, error = ?e, "no challenge could be made");
            problem(
                &ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "No challenge could be made.",
            )
        }
    }
}

pub async fn register(
    State(state): State<Shared>,
    ctx: Ctx,
    body: Result<Json<RegisterBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return rejected(&ctx, &rejection),
    };
    let submission = Submission {
        first_name: body.first_name,
        last_name: body.last_name,
        email: body.email,
        altcha: body.altcha,
        website: body.website,
    };
    let by = Sender {
        ip: ctx.ip,
        request_id: &ctx.request_id,
        from_page: false,
    };
    match state.submit(Kind::Register, &submission, &by).await {
        Ok(()) => {
            accepted("If the details can be used, an email with an activation link is on its way.")
        }
        Err(refused) => refusal(&ctx, refused),
    }
}

pub async fn forgot_password(
    State(state): State<Shared>,
    ctx: Ctx,
    body: Result<Json<ForgotBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return rejected(&ctx, &rejection),
    };
    let submission = Submission {
        email: body.email,
        altcha: body.altcha,
        website: body.website,
        ..Submission::default()
    };
    let by = Sender {
        ip: ctx.ip,
        request_id: &ctx.request_id,
        from_page: false,
    };
    match state.submit(Kind::Recover, &submission, &by).await {
        Ok(()) => accepted("If the account can be recovered, an email with a link is on its way."),
        Err(refused) => refusal(&ctx, refused),
    }
}
