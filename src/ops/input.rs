//! Validated inputs every operation shares: the `Why` of a change (reason and ticket) and the
//! reference to the user acted on. Each has its own constructor, so an operation never sees a
//! value that was not checked, and nothing unchecked reaches Okta or the audit trail.

use std::collections::BTreeMap;

use regex::Regex;

use super::config::UsersConfig;

/// Per-field problems with an input: `field → message` (field names of the front end's form).
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Longest reason kept, in characters.
pub const REASON_MAX: usize = 500;
/// Longest ticket reference accepted, in characters.
pub const TICKET_MAX: usize = 64;

/// Okta accepts only characters that encode in at most 3 bytes of UTF-8.
pub fn has_four_byte_chars(s: &str) -> bool {
    s.chars().any(|c| c.len_utf8() > 3)
}

/// What a reason and a ticket must look like (from `[users]`).
#[derive(Debug, Clone)]
pub struct WhyRules {
    pub reason_min_length: usize,
    pub ticket_required: bool,
    pub ticket_pattern: Option<Regex>,
}

impl WhyRules {
    pub fn new(users: &UsersConfig, ticket_pattern: Option<Regex>) -> WhyRules {
        WhyRules {
            reason_min_length: users.reason_min_length,
            ticket_required: users.ticket_required,
            ticket_pattern,
        }
    }
}

/// The reason (required) and ticket reference (optional unless configured) of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    reason: String,
    ticket: Option<String>,
}

/// Why a reason or ticket was not accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhyErrors {
    pub reason: Option<String>,
    pub ticket: Option<String>,
}

impl WhyErrors {
    pub fn any(&self) -> bool {
        self.reason.is_some() || self.ticket.is_some()
    }

    /// The first problem, for front ends that show one message.
    pub fn first(&self) -> Option<&str> {
        self.reason.as_deref().or(self.ticket.as_deref())
    }

    pub fn into_fields(self) -> FieldErrors {
        let mut fields = FieldErrors::new();
        if let Some(r) = self.reason {
            fields.insert("reason", r);
        }
        if let Some(t) = self.ticket {
            fields.insert("ticket", t);
        }
        fields
    }
}

impl Why {
    /// Checks a typed reason and ticket (both already trimmed by the front end).
    pub fn new(reason: &str, ticket: &str, rules: &WhyRules) -> Result<Why, WhyErrors> {
        let errors = WhyErrors {
            reason: reason_problem(reason, rules),
            ticket: ticket_problem(ticket, rules),
        };
        if errors.any() {
            return Err(errors);
        }
        Ok(Why {
            reason: reason.to_string(),
            ticket: (!ticket.is_empty()).then(|| ticket.to_string()),
        })
    }

    /// A reason the portal itself gives (self-registration, recovery), not typed by anyone.
    pub fn fixed(reason: &'static str) -> Why {
        Why {
            reason: reason.to_string(),
            ticket: None,
        }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn ticket(&self) -> Option<&str> {
        self.ticket.as_deref()
    }
}

fn reason_problem(reason: &str, rules: &WhyRules) -> Option<String> {
    let length = reason.chars().count();
    if length < rules.reason_min_length {
        Some(if length == 0 {
            "Give a reason: it is kept in the audit trail.".to_string()
        } else {
            format!(
                "Give a reason of at least {} characters (you wrote {length}).",
                rules.reason_min_length
            )
        })
    } else if length > REASON_MAX {
        Some(format!("Keep the reason under {REASON_MAX} characters."))
    } else if has_four_byte_chars(reason) || reason.chars().any(char::is_control) {
        Some("The reason contains characters that cannot be stored (such as emoji).".into())
    } else {
        None
    }
}

fn ticket_problem(ticket: &str, rules: &WhyRules) -> Option<String> {
    if ticket.is_empty() {
        return rules
            .ticket_required
            .then(|| "Give the ticket reference.".to_string());
    }
    let pattern_ok = rules
        .ticket_pattern
        .as_ref()
        .is_none_or(|p| p.is_match(ticket));
    let plain = ticket.chars().count() <= TICKET_MAX && !ticket.chars().any(char::is_control);
    (!pattern_ok || !plain).then(|| match &rules.ticket_pattern {
        Some(p) => format!(
            "A ticket reference looks like SUP-1234 (pattern {}).",
            p.as_str()
        ),
        None => format!("A ticket reference is at most {TICKET_MAX} plain characters."),
    })
}

/// A user as named in a request path or body: an Okta id or a login. Anything else (path
/// separators, whitespace, control characters, over-long values) is refused before Okta or
/// the audit trail sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef(String);

impl UserRef {
    pub fn parse(value: &str) -> Result<UserRef, String> {
        let ok = (1..=100).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._%+-@'".contains(c));
        if ok {
            Ok(UserRef(value.to_string()))
        } else {
            Err("That is not an Okta user id or login.".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A factor id from a request: Okta ids are short and alphanumeric.
pub fn factor_id(value: &str) -> Result<&str, String> {
    if (1..=40).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(value)
    } else {
        Err("That is not an Okta factor id.".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> WhyRules {
        WhyRules {
            reason_min_length: 10,
            ticket_required: false,
            ticket_pattern: Some(Regex::new(r"^[A-Z][A-Z0-9]+-\d+$").unwrap()),
        }
    }

    #[test]
    fn a_reason_and_ticket_are_checked_by_the_constructor() {
        let why = Why::new("Caller verified on the phone", "SUP-12", &rules()).unwrap();
        assert_eq!(
            (why.reason(), why.ticket()),
            ("Caller verified on the phone", Some("SUP-12"))
        );
        assert_eq!(
            Why::new("Caller ok!!", "", &rules()).unwrap().ticket(),
            None
        );
        let e = Why::new("", "", &rules()).unwrap_err();
        assert_eq!(
            e.reason.as_deref(),
            Some("Give a reason: it is kept in the audit trail.")
        );
        let e = Why::new("short", "x", &rules()).unwrap_err();
        assert_eq!(
            e.reason.as_deref(),
            Some("Give a reason of at least 10 characters (you wrote 5).")
        );
        assert!(e.ticket.unwrap().contains("SUP-1234"));
        let huge = "x".repeat(1_500_000);
        let e = Why::new("A long enough reason", &huge, &rules()).unwrap_err();
        assert!(e.ticket.is_some() && e.reason.is_none());
        let e = Why::new(&"r".repeat(501), "", &rules()).unwrap_err();
        assert_eq!(
            e.reason.as_deref(),
            Some("Keep the reason under 500 characters.")
        );
    }

    #[test]
    fn without_a_pattern_a_ticket_is_still_bounded() {
        let rules = WhyRules {
            ticket_pattern: None,
            ticket_required: true,
            ..rules()
        };
        assert_eq!(
            Why::new("A long enough reason", "", &rules)
                .unwrap_err()
                .ticket
                .as_deref(),
            Some("Give the ticket reference.")
        );
        assert!(Why::new("A long enough reason", &"T".repeat(65), &rules).is_err());
        assert!(Why::new("A long enough reason", "anything 12", &rules).is_ok());
    }

    #[test]
    fn user_references_are_ids_or_logins_only() {
        assert!(UserRef::parse("00u1a2b3c4D5e6F7g8h9").is_ok());
        assert!(UserRef::parse("o'brien+x@example.com").is_ok());
        for bad in [
            "",
            "../../activity/export.csv",
            "a b",
            "x\n",
            &"a".repeat(101),
            "a/b",
        ] {
            assert!(UserRef::parse(bad).is_err(), "{bad:?}");
        }
        assert!(factor_id("ostf1a2b3c4").is_ok());
        assert!(factor_id("../x").is_err());
    }
}
