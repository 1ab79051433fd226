//! A builder for Okta `search` expressions. Values are always JSON-quoted by the builder,
//! never pasted into the expression (OKTA-FACTS.md §4.2).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    /// `attr op "value"`.
    Compare {
        attr: &'static str,
        op: &'static str,
        value: String,
    },
    /// `attr pr`.
    Present(&'static str),
    And(Vec<Search>),
    Or(Vec<Search>),
}

impl Search {
    pub fn eq(attr: &'static str, value: impl Into<String>) -> Search {
        Search::Compare {
            attr,
            op: "eq",
            value: value.into(),
        }
    }
    pub fn sw(attr: &'static str, value: impl Into<String>) -> Search {
        Search::Compare {
            attr,
            op: "sw",
            value: value.into(),
        }
    }
    /// Contains: Okta allows it only on firstName, lastName, email and login.
    pub fn co(attr: &'static str, value: impl Into<String>) -> Search {
        Search::Compare {
            attr,
            op: "co",
            value: value.into(),
        }
    }
    pub fn gt(attr: &'static str, value: impl Into<String>) -> Search {
        Search::Compare {
            attr,
            op: "gt",
            value: value.into(),
        }
    }
    pub fn lt(attr: &'static str, value: impl Into<String>) -> Search {
        Search::Compare {
            attr,
            op: "lt",
            value: value.into(),
        }
    }
    pub fn present(attr: &'static str) -> Search {
        Search::Present(attr)
    }
    pub fn and(self, other: Search) -> Search {
        match self {
            Search::And(mut items) => {
                items.push(other);
                Search::And(items)
            }
            first => Search::And(vec![first, other]),
        }
    }
    pub fn or(self, other: Search) -> Search {
        match self {
            Search::Or(mut items) => {
                items.push(other);
                Search::Or(items)
            }
            first => Search::Or(vec![first, other]),
        }
    }
    /// `any of` the given expressions; `None` for an empty list.
    pub fn any(items: Vec<Search>) -> Option<Search> {
        items.into_iter().reduce(Search::or)
    }
}

fn quote(value: &str) -> String {
    // JSON string syntax: escapes `"`, `\` and control characters.
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string())
}

impl fmt::Display for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Search::Compare { attr, op, value } => write!(f, "{attr} {op} {}", quote(value)),
            Search::Present(attr) => write!(f, "{attr} pr"),
            Search::And(items) | Search::Or(items) => {
                let joiner = if matches!(self, Search::And(_)) {
                    " and "
                } else {
                    " or "
                };
                let parts: Vec<String> = items
                    .iter()
                    .map(|item| match item {
                        Search::And(_) | Search::Or(_) => format!("({item})"),
                        _ => item.to_string(),
                    })
                    .collect();
                f.write_str(&parts.join(joiner))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_quotes() {
        let s = Search::eq("status", "ACTIVE").and(Search::sw("profile.lastName", "Love"));
        assert_eq!(
            s.to_string(),
            r#"status eq "ACTIVE" and profile.lastName sw "Love""#
        );
    }

    #[test]
    fn escapes_user_input_instead_of_pasting_it() {
        let hostile = r#"x" or status eq "ACTIVE"#;
        let s = Search::co("profile.email", hostile);
        assert_eq!(
            s.to_string(),
            r#"profile.email co "x\" or status eq \"ACTIVE""#
        );
        let s = Search::eq("profile.login", "back\\slash");
        assert_eq!(s.to_string(), r#"profile.login eq "back\\slash""#);
    }

    #[test]
    fn nests_with_parentheses() {
        let name = Search::sw("profile.firstName", "Ada").or(Search::sw("profile.lastName", "Ada"));
        let s = Search::eq("status", "ACTIVE").and(name);
        assert_eq!(
            s.to_string(),
            r#"status eq "ACTIVE" and (profile.firstName sw "Ada" or profile.lastName sw "Ada")"#
        );
        assert_eq!(
            Search::present("profile.employeeNumber").to_string(),
            "profile.employeeNumber pr"
        );
        assert_eq!(Search::any(vec![]), None);
    }
}
