//! MFA for a user: enroll (each type), activate with a passcode, resend, abandon a pending
//! enrollment, reset one factor or all. Secrets and passcodes pass through, never into the
//! audit trail.

use super::record::{Attempt, Success};
use super::{Done, FieldErrors, Op, OpError, Ops, Refusal, UserRef, Why};
use crate::auth::principal::Principal;
use crate::okta::factors::{EnrollRequest, Factor};
use crate::okta::models::User;
use crate::okta::users::Lifecycle;

/// The factor types offered, by configuration name, with their labels.
pub const FACTOR_TYPES: [(&str, &str); 5] = [
    ("google_authenticator", "Google Authenticator (code app)"),
    ("okta_verify_totp", "Okta Verify (code)"),
    ("sms", "SMS to a mobile phone"),
    ("call", "Voice call"),
    ("email", "Email"),
];

fn phone_ok(phone: &str) -> bool {
    let digits = phone.chars().filter(|c| c.is_ascii_digit()).count();
    phone.starts_with('+')
        && (8..=15).contains(&digits)
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

impl Ops {
    /// The factor types agents may enroll (`mfa.enroll_types`), with labels.
    pub fn enroll_choices(&self) -> Vec<(&'static str, &'static str)> {
        let offered = |(name, _): &(&str, &str)| self.mfa.enroll_types.iter().any(|t| t == name);
        FACTOR_TYPES.into_iter().filter(offered).collect()
    }

    /// Checks what was asked for: the type is offered, the phone or email looks right.
    pub fn enroll_request(
        &self,
        kind: &str,
        phone: &str,
        email: &str,
    ) -> Result<EnrollRequest, FieldErrors> {
        let invalid = |field: &'static str, message: &str| {
            Err(FieldErrors::from([(field, message.to_string())]))
        };
        if !self.enroll_choices().iter().any(|c| c.0 == kind) {
            return invalid("kind", "Choose one of the factor types offered.");
        }
        let phone_message = "Enter the phone number with its country code, e.g. +1 555 555 1234.";
        match kind {
            "google_authenticator" => Ok(EnrollRequest::Totp { provider: "GOOGLE" }),
            "okta_verify_totp" => Ok(EnrollRequest::Totp { provider: "OKTA" }),
            "sms" | "call" if !phone_ok(phone) => invalid("phone", phone_message),
            "sms" => Ok(EnrollRequest::Sms {
                phone: phone.into(),
            }),
            "call" => Ok(EnrollRequest::Call {
                phone: phone.into(),
            }),
            _ if !super::users::looks_like_email(email) => {
                invalid("email", "Enter the user's email address.")
            }
            _ => Ok(EnrollRequest::Email {
                email: email.into(),
            }),
        }
    }

    /// Starts an enrollment. The factor in the outcome carries the TOTP secret, if any, for
    /// the one response that shows it.
    pub async fn enroll_factor(
        &self,
        principal: &Principal,
        user: &UserRef,
        request: &EnrollRequest,
        why: &Why,
    ) -> Result<Done<Factor>, OpError> {
        let op = Op::EnrollFactor;
        let mut attempt = Attempt::new(self, principal, op, Some(why)).on_ref(user.as_str());
        let (user, _) = self.load_guarded(&mut attempt, principal, op, user).await?;
        attempt.sending().await?;
        match self.okta.enroll_factor(&user.id, request).await {
            Ok(done) => {
                let factor = done.body;
                let detail = format!("{} enrolled ({})", factor.label(), factor.status);
                let success = Success {
                    before: Some(user),
                    ..Success::new(factor, done.request_id).detail(detail)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => Err(attempt.failed(e, None, Some(user)).await),
        }
    }

    /// The guarded user and one of their factors; a failed read is recorded.
    async fn factor_target(
        &self,
        attempt: &mut Attempt<'_>,
        principal: &Principal,
        op: Op,
        user: &UserRef,
        factor_id: &str,
    ) -> Result<(User, Factor), OpError> {
        let factor_id =
            super::input::factor_id(factor_id).map_err(|m| OpError::invalid("factor", m))?;
        let (user, _) = self.load_guarded(attempt, principal, op, user).await?;
        match self.okta.get_factor(&user.id, factor_id).await {
            Ok(factor) => Ok((user, factor)),
            Err(e) => {
                let detail = format!("reading the factor failed: {}", e.summary);
                Err(attempt.failed(e, Some(detail), Some(user)).await)
            }
        }
    }

    /// Activates a pending enrollment with the code the user reads out.
    pub async fn activate_factor(
        &self,
        principal: &Principal,
        user: &UserRef,
        factor_id: &str,
        passcode: &str,
        why: &Why,
    ) -> Result<Done<Factor>, OpError> {
        let passcode: String = passcode.chars().filter(|c| !c.is_whitespace()).collect();
        if !(4..=10).contains(&passcode.len()) || !passcode.chars().all(|c| c.is_ascii_digit()) {
            return Err(OpError::invalid(
                "passcode",
                "Enter the code the user reads to you (digits only).",
            ));
        }
        let op = Op::ActivateFactor;
        let mut attempt = Attempt::new(self, principal, op, Some(why)).on_ref(user.as_str());
        let (user, factor) = self
            .factor_target(&mut attempt, principal, op, user, factor_id)
            .await?;
        attempt.sending().await?;
        match self
            .okta
            .activate_factor(&user.id, &factor.id, &passcode)
            .await
        {
            Ok(done) => {
                let detail = format!("{} activated", done.body.label());
                let success = Success {
                    before: Some(user),
                    ..Success::new(done.body, done.request_id).detail(detail)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => {
                let detail = format!("{}: {}", factor.label(), e.summary);
                Err(attempt.failed(e, Some(detail), Some(user)).await)
            }
        }
    }

    /// Sends a new code for a pending SMS, call or email enrollment.
    pub async fn resend_factor(
        &self,
        principal: &Principal,
        user: &UserRef,
        factor_id: &str,
        why: &Why,
    ) -> Result<Done<Factor>, OpError> {
        let op = Op::ResendFactor;
        let mut attempt = Attempt::new(self, principal, op, Some(why)).on_ref(user.as_str());
        let (user, factor) = self
            .factor_target(&mut attempt, principal, op, user, factor_id)
            .await?;
        attempt.sending().await?;
        match self.okta.resend_factor(&user.id, &factor).await {
            Ok(done) => {
                let success = Success {
                    before: Some(user),
                    ..Success::new(factor.clone(), done.request_id).detail(factor.label())
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => Err(attempt.failed(e, None, Some(user)).await),
        }
    }

    /// Removes one factor: `abandon` only a pending enrollment (factors.enroll), otherwise a
    /// reset (factors.reset).
    pub async fn remove_factor(
        &self,
        principal: &Principal,
        user: &UserRef,
        factor_id: &str,
        abandon: bool,
        why: &Why,
    ) -> Result<Done<Factor>, OpError> {
        let op = if abandon {
            Op::AbandonFactor
        } else {
            Op::ResetFactor
        };
        let mut attempt = Attempt::new(self, principal, op, Some(why)).on_ref(user.as_str());
        let (user, factor) = self
            .factor_target(&mut attempt, principal, op, user, factor_id)
            .await?;
        if abandon && !factor.is_pending() {
            return Err(attempt.refused(Refusal::FactorNotPending, Some(user)).await);
        }
        let detail = if abandon {
            format!("abandoned the {} enrollment", factor.label())
        } else {
            format!("reset {}", factor.label())
        };
        attempt.sending().await?;
        match self.okta.delete_factor(&user.id, &factor.id).await {
            Ok(done) => {
                let success = Success {
                    before: Some(user),
                    ..Success::new(factor, done.request_id).detail(detail)
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => {
                let detail = format!("{detail}: {}", e.summary);
                Err(attempt.failed(e, Some(detail), Some(user)).await)
            }
        }
    }

    /// Removes every factor of the user.
    pub async fn reset_all_factors(
        &self,
        principal: &Principal,
        user: &UserRef,
        why: &Why,
    ) -> Result<Done, OpError> {
        let op = Op::ResetAllFactors;
        let mut attempt = Attempt::new(self, principal, op, Some(why)).on_ref(user.as_str());
        let (user, _) = self.load_guarded(&mut attempt, principal, op, user).await?;
        attempt.sending().await?;
        match self
            .okta
            .lifecycle(&user.id, Lifecycle::ResetFactors, None)
            .await
        {
            Ok(done) => {
                let success = Success {
                    before: Some(user),
                    ..Success::new((), done.request_id).detail("reset all factors")
                };
                Ok(attempt.succeeded(success).await)
            }
            Err(e) => {
                let detail = format!("reset all factors: {}", e.summary);
                Err(attempt.failed(e, Some(detail), Some(user)).await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::config::UsersConfig;

    #[tokio::test]
    async fn enroll_requests_are_checked_before_okta_sees_them() {
        let ops = crate::ops::test_ops(UsersConfig::default()).await;
        assert!(ops.enroll_request("sms", "+1 555 555 1234", "").is_ok());
        assert_eq!(
            ops.enroll_request("sms", "555", "")
                .unwrap_err()
                .keys()
                .collect::<Vec<_>>(),
            vec![&"phone"]
        );
        assert!(
            ops.enroll_request("email", "", "nope")
                .unwrap_err()
                .contains_key("email")
        );
        assert!(
            ops.enroll_request("yubikey", "", "")
                .unwrap_err()
                .contains_key("kind")
        );
        assert!(ops.enroll_request("google_authenticator", "", "").is_ok());
    }
}
