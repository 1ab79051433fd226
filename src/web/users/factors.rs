//! MFA for a user: enroll (TOTP with a server-rendered QR code, SMS, voice call, email),
//! activate with a passcode while the user is on the call, resend, reset one or all. Every
//! change goes through `ops::factors`; this module only reads what pages show and renders.
//!
//! The TOTP shared secret is shown only on the response to the enrollment: it is never
//! stored by the portal (not in the session, not in the audit trail, not in logs).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::extract::Agent;
use crate::error::AppError;
use crate::okta::OktaError;
use crate::okta::factors::Factor;
use crate::okta::models::User;
use crate::web::forms::WhyForm;
use crate::web::layout::PageCtx;

pub mod activate;
pub mod enroll;
pub mod reset;

/// A QR code as SVG path data (rendered by askama, no markup built by hand).
pub struct Qr {
    pub size: usize,
    pub path: String,
}

pub fn qr_for(text: &str) -> Option<Qr> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let width = code.width();
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % width + 4, i / width + 4);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Some(Qr {
        size: width + 8,
        path,
    })
}

/// `otpauth://` URI for authenticator apps.
pub fn otpauth_uri(issuer: &str, login: &str, secret: &str) -> String {
    let enc = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(login),
        enc(issuer)
    )
}

/// `JBSWY3DPEHPK3PXP` → `JBSW Y3DP EHPK 3PXP`.
pub fn group_secret(secret: &str) -> String {
    secret
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Template)]
#[template(path = "users/factor_activate.html")]
struct ActivatePage {
    ctx: PageCtx,
    user: User,
    factor: Factor,
    /// Only on the enrollment response.
    qr: Option<Qr>,
    secret_groups: Option<String>,
    why: WhyForm,
    message: Option<(String, String)>,
    notice: Option<String>,
}

/// What the activation form says besides the factor.
pub struct Feedback {
    pub status: StatusCode,
    /// A problem (message, Okta request id).
    pub message: Option<(String, String)>,
    pub notice: Option<String>,
    /// The TOTP secret, on the enrollment response only: (QR code, grouped secret).
    pub secret: Option<(Option<Qr>, String)>,
}

impl Feedback {
    pub fn problem(status: StatusCode, message: String, okta_request_id: Option<String>) -> Self {
        Feedback {
            status,
            message: Some((message, okta_request_id.unwrap_or_default())),
            notice: None,
            secret: None,
        }
    }

    pub fn notice(notice: Option<String>) -> Self {
        Feedback {
            status: StatusCode::OK,
            message: None,
            notice,
            secret: None,
        }
    }
}

/// Renders the activation form (with the secret only when `feedback` carries it).
pub async fn activation_page(
    agent: &Agent,
    (user, factor): (User, Factor),
    why: WhyForm,
    feedback: Feedback,
) -> Result<Response, AppError> {
    let (qr, secret_groups) = match feedback.secret {
        Some((qr, groups)) => (qr, Some(groups)),
        None => (None, None),
    };
    let page = ActivatePage {
        ctx: PageCtx::for_agent(agent, "users").await?,
        user,
        factor,
        qr,
        secret_groups,
        why,
        message: feedback.message,
        notice: feedback.notice,
    };
    Ok((feedback.status, Html(page.render()?)).into_response())
}

/// Okta's answer in an agent's words, for passcode problems.
pub fn passcode_message(e: &OktaError) -> String {
    match e.code.as_deref() {
        Some("E0000068") => {
            "That code is not right. Ask the user to read the current code again.".into()
        }
        Some("E0000082") => {
            "That code was already used. Wait for the next code and try again.".into()
        }
        Some("E0000083") => {
            "That code has expired. Send a new one or wait for the next code.".into()
        }
        Some("E0000047") => {
            "Too many attempts. Wait five minutes, or abandon this enrollment and start again."
                .into()
        }
        Some("E0000109") | Some("E0000133") => {
            "A code was sent less than 30 seconds ago. Wait a moment before sending another.".into()
        }
        _ => e.plain_message(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_grouped_and_uris_encoded() {
        assert_eq!(group_secret("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(group_secret("ABCDEF"), "ABCD EF");
        let uri = otpauth_uri("Example Org", "ada@example.com", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Org:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Org&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn the_qr_code_is_svg_path_data_only() {
        let qr = qr_for("otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(qr.size > 20);
        assert!(
            qr.path.starts_with('M')
                && qr
                    .path
                    .chars()
                    .all(|c| c.is_ascii_digit() || "Mhvz -".contains(c))
        );
    }
}
