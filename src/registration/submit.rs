//! One path for every submission, from a page or JSON: limits, honeypot, proof of work,
//! validation, the per-email limit, then the service API. Whatever the API did behind its
//! 202, the caller gets the same answer.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::EdgeState;
use super::abuse::RetryAfter;
use super::pow::PowError;
use super::upstream::{NewRegistration, Upstream};

/// Longest name accepted (Okta's profile limit is larger; nobody needs more here).
const MAX_NAME: usize = 50;
/// RFC 5321's limit for an address in a path.
const MAX_EMAIL: usize = 254;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Register,
    Recover,
}

/// What a member of the public sent (the names are empty for a recovery).
#[derive(Debug, Default)]
pub struct Submission {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// The ALTCHA payload (base64 JSON), if the client solved a challenge.
    pub altcha: Option<String>,
    /// The honeypot field: people leave it empty.
    pub website: String,
}

/// Why a submission was not passed on.
#[derive(Debug)]
pub enum Refused {
    Limited(RetryAfter),
    Honeypot,
    Pow(PowError),
    Invalid(BTreeMap<String, String>),
    Unavailable,
}

/// Who sent it, as the edge saw it.
pub struct Sender<'a> {
    pub ip: IpAddr,
    pub request_id: &'a str,
    /// A form from a page may come without a proof of work (no JavaScript), under a
    /// tighter limit; a JSON call never may.
    pub from_page: bool,
}

impl EdgeState {
    pub async fn submit(&self, kind: Kind, s: &Submission, by: &Sender<'_>) -> Result<(), Refused> {
        self.abuse.ip(by.ip).await.map_err(Refused::Limited)?;
        if !s.website.trim().is_empty() {
            self.abuse.failed(by.ip).await;
            return Err(Refused::Honeypot);
        }
        self.proof(s, by).await?;
        let errors = validate(kind, s);
        if !errors.is_empty() {
            self.abuse.failed(by.ip).await;
            return Err(Refused::Invalid(errors));
        }
        self.abuse.email(&s.email).await.map_err(Refused::Limited)?;
        let answer = match kind {
            Kind::Register => {
                let person = NewRegistration {
                    first_name: s.first_name.trim(),
                    last_name: s.last_name.trim(),
                    email: s.email.trim(),
                };
                self.api.register(&person, by.ip).await
            }
            Kind::Recover => self.api.recover(s.email.trim(), by.ip).await,
        };
        match answer {
            Ok(Upstream::Accepted) => Ok(()),
            Ok(Upstream::Invalid(errors)) => {
                self.abuse.failed(by.ip).await;
                Err(Refused::Invalid(errors))
            }
            Err(e) => {
                tracing::error!(request_id = %by.request_id, error = %e, "the admin service did not accept the call");
                Err(Refused::Unavailable)
            }
        }
    }

    async fn proof(&self, s: &Submission, by: &Sender<'_>) -> Result<(), Refused> {
        match self.pow.spend(s.altcha.as_deref()).await {
            Ok(()) => Ok(()),
            Err(PowError::Missing) if by.from_page => self
                .abuse
                .without_pow(by.ip)
                .await
                .map_err(Refused::Limited),
            Err(e) => {
                self.abuse.failed(by.ip).await;
                Err(Refused::Pow(e))
            }
        }
    }
}

fn plain(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn name_error(value: &str, what: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        Some(format!("Enter your {what}."))
    } else if value.chars().count() > MAX_NAME || !plain(value) {
        Some(format!(
            "Your {what} must be at most {MAX_NAME} letters, on one line."
        ))
    } else {
        None
    }
}

/// A plausible address: one `@`, something before it, a dotted domain after, no spaces.
pub fn email_ok(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= MAX_EMAIL
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub fn validate(kind: Kind, s: &Submission) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    if kind == Kind::Register {
        if let Some(e) = name_error(&s.first_name, "first name") {
            errors.insert("first_name".to_string(), e);
        }
        if let Some(e) = name_error(&s.last_name, "last name") {
            errors.insert("last_name".to_string(), e);
        }
    }
    if !email_ok(&s.email) {
        errors.insert(
            "email".to_string(),
            "Enter an email address like name@example.com.".to_string(),
        );
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_names_are_checked_plainly() {
        for good in ["pat@example.com", " Pat.Public+x@mail.example.org "] {
            assert!(email_ok(good), "{good}");
        }
        for bad in [
            "",
            "pat",
            "@example.com",
            "pat@example",
            "pat@@example.com",
            "pat @example.com",
            "pa\u{7}t@example.com",
        ] {
            assert!(!email_ok(bad), "{bad:?}");
        }
        let s = Submission {
            first_name: " ".into(),
            last_name: "x".repeat(51),
            email: "pat@example.com".into(),
            ..Submission::default()
        };
        let errors = validate(Kind::Register, &s);
        assert_eq!(errors["first_name"], "Enter your first name.");
        assert!(errors["last_name"].contains("at most 50"));
        assert!(validate(Kind::Recover, &s).is_empty());
    }
}
