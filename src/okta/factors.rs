//! Factors API (OKTA-FACTS.md §7): list, catalog, enroll, activate, resend, unenroll.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{OktaClient, OktaRequest, OktaResponse};
use super::error::OktaError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FactorProfile {
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub credential_id: Option<String>,
}

/// `_embedded.activation` of a pending enrollment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    #[serde(default)]
    pub shared_secret: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub key_length: Option<u32>,
    #[serde(default)]
    pub time_step: Option<u64>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Embedded {
    #[serde(default)]
    pub activation: Option<Activation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    pub id: String,
    pub factor_type: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub vendor_name: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub last_verified: Option<String>,
    #[serde(default)]
    pub profile: FactorProfile,
    #[serde(rename = "_links", default)]
    pub links: BTreeMap<String, Value>,
    #[serde(rename = "_embedded", default)]
    pub embedded: Option<Embedded>,
}

impl Factor {
    /// A human name for the factor.
    pub fn label(&self) -> String {
        match (self.factor_type.as_str(), self.provider.as_str()) {
            ("token:software:totp", "GOOGLE") => "Google Authenticator".into(),
            ("token:software:totp", "OKTA") => "Okta Verify (code)".into(),
            ("push", "OKTA") => "Okta Verify (push)".into(),
            ("sms", _) => "SMS".into(),
            ("call", _) => "Voice call".into(),
            ("email", _) => "Email".into(),
            ("question", _) => "Security question".into(),
            ("signed_nonce", _) => "Okta FastPass".into(),
            (t, p) => format!("{t} ({p})"),
        }
    }

    /// Where codes go, masked: `+1 ••• ••• 0100`, `a•••@example.com`.
    pub fn masked_destination(&self) -> Option<String> {
        if let Some(phone) = &self.profile.phone_number {
            let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
            let tail = &digits[digits.len().saturating_sub(4)..];
            return Some(format!("••• {tail}"));
        }
        if let Some(email) = &self.profile.email {
            return Some(match email.split_once('@') {
                Some((local, domain)) => {
                    let first: String = local.chars().take(1).collect();
                    format!("{first}•••@{domain}")
                }
                None => "•••".into(),
            });
        }
        None
    }

    pub fn is_pending(&self) -> bool {
        self.status == "PENDING_ACTIVATION"
    }

    /// The TOTP secret of a pending enrollment (never stored by the portal).
    pub fn shared_secret(&self) -> Option<&str> {
        self.embedded
            .as_ref()?
            .activation
            .as_ref()?
            .shared_secret
            .as_deref()
    }
}

/// What to enroll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollRequest {
    Totp { provider: &'static str },
    Push,
    Sms { phone: String },
    Call { phone: String },
    Email { email: String },
}

fn factors_path(user_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
    format!("/api/v1/users/{encoded}/factors")
}

fn factor_path(user_id: &str, factor_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(factor_id.as_bytes()).collect();
    format!("{}/{encoded}", factors_path(user_id))
}

impl EnrollRequest {
    fn body(&self) -> Value {
        match self {
            EnrollRequest::Totp { provider } => {
                json!({ "factorType": "token:software:totp", "provider": provider })
            }
            EnrollRequest::Push => json!({ "factorType": "push", "provider": "OKTA" }),
            EnrollRequest::Sms { phone } => {
                json!({ "factorType": "sms", "provider": "OKTA", "profile": { "phoneNumber": phone } })
            }
            EnrollRequest::Call { phone } => {
                json!({ "factorType": "call", "provider": "OKTA", "profile": { "phoneNumber": phone } })
            }
            EnrollRequest::Email { email } => {
                json!({ "factorType": "email", "provider": "OKTA", "profile": { "email": email } })
            }
        }
    }
}

impl OktaClient {
    pub async fn list_factors(&self, user_id: &str) -> Result<Vec<Factor>, OktaError> {
        Ok(self
            .send(OktaRequest::get(factors_path(user_id)))
            .await?
            .body)
    }

    pub async fn get_factor(&self, user_id: &str, factor_id: &str) -> Result<Factor, OktaError> {
        Ok(self
            .send(OktaRequest::get(factor_path(user_id, factor_id)))
            .await?
            .body)
    }

    /// Enrolls a factor (PENDING_ACTIVATION, with `_embedded.activation`). Never retried.
    pub async fn enroll_factor(
        &self,
        user_id: &str,
        request: &EnrollRequest,
    ) -> Result<OktaResponse<Factor>, OktaError> {
        let mut req = OktaRequest::post(factors_path(user_id), Some(request.body()));
        if matches!(
            request,
            EnrollRequest::Sms { .. } | EnrollRequest::Call { .. }
        ) {
            req = req.query("updatePhone", "true");
        }
        self.send(req).await
    }

    pub async fn activate_factor(
        &self,
        user_id: &str,
        factor_id: &str,
        passcode: &str,
    ) -> Result<OktaResponse<Factor>, OktaError> {
        self.send(OktaRequest::post(
            format!("{}/lifecycle/activate", factor_path(user_id, factor_id)),
            Some(json!({ "passCode": passcode })),
        ))
        .await
    }

    /// Sends the enrollment code again (sms, call, email).
    pub async fn resend_factor(
        &self,
        user_id: &str,
        factor: &Factor,
    ) -> Result<OktaResponse<Option<Value>>, OktaError> {
        let mut body = json!({ "factorType": factor.factor_type, "provider": factor.provider });
        if let Some(phone) = &factor.profile.phone_number {
            body["profile"] = json!({ "phoneNumber": phone });
        } else if let Some(email) = &factor.profile.email {
            body["profile"] = json!({ "email": email });
        }
        self.send(OktaRequest::post(
            format!("{}/resend", factor_path(user_id, &factor.id)),
            Some(body),
        ))
        .await
    }

    /// Unenrolls one factor (204).
    pub async fn delete_factor(
        &self,
        user_id: &str,
        factor_id: &str,
    ) -> Result<OktaResponse<Option<Value>>, OktaError> {
        self.send(OktaRequest::delete(factor_path(user_id, factor_id)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(v: Value) -> Factor {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn totp_enrollment_exposes_the_secret_and_masks_destinations() {
        let f = factor(json!({
            "id": "ostf1", "factorType": "token:software:totp", "provider": "GOOGLE", "status": "PENDING_ACTIVATION",
            "profile": { "credentialId": "ada@example.com" },
            "_embedded": { "activation": { "timeStep": 30, "sharedSecret": "JBSWY3DPEHPK3PXP", "encoding": "base32", "keyLength": 6 } }
        }));
        assert_eq!(f.shared_secret(), Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(f.label(), "Google Authenticator");
        assert!(f.is_pending());
        let sms = factor(
            json!({"id": "sms1", "factorType": "sms", "provider": "OKTA", "status": "ACTIVE", "profile": {"phoneNumber": "+1 555 0100"}}),
        );
        assert_eq!(sms.masked_destination().as_deref(), Some("••• 0100"));
        let email = factor(
            json!({"id": "emf1", "factorType": "email", "provider": "OKTA", "status": "ACTIVE", "profile": {"email": "ada@example.com"}}),
        );
        assert_eq!(
            email.masked_destination().as_deref(),
            Some("a•••@example.com")
        );
    }

    #[test]
    fn enroll_bodies_follow_okta() {
        assert_eq!(
            EnrollRequest::Sms {
                phone: "+15555551234".into()
            }
            .body(),
            json!({"factorType": "sms", "provider": "OKTA", "profile": {"phoneNumber": "+15555551234"}})
        );
        assert_eq!(
            EnrollRequest::Totp { provider: "OKTA" }.body()["factorType"],
            "token:software:totp"
        );
    }
}
