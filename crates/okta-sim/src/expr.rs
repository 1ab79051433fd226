//! The expression language of `filter` and `search` (OKTA-FACTS.md §4.2).
//!
//! Grammar (operators and keywords case-insensitive, attribute names case-sensitive):
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | primary
//! primary := "(" expr ")" | ATTR "pr" | ATTR OP LITERAL
//! OP      := eq | ne | gt | ge | lt | le | sw | ew | co
//! LITERAL := JSON string (with `\"` escapes) | number | true | false | null
//! ```
//!
//! Attribute operators bind tightest, then parentheses, then `and`, then `or`. Each API
//! checks which attributes and operators it accepts with [`Expr::visit`].

use std::fmt;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sw,
    Ew,
    Co,
    Pr,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "co" => Op::Co,
            "pr" => Op::Pr,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Sw => "sw",
            Op::Ew => "ew",
            Op::Co => "co",
            Op::Pr => "pr",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    /// `attr op value`; `value` is `Null` for `pr`.
    Cmp {
        attr: String,
        op: Op,
        value: Value,
    },
}

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Str(String),
    Num(Value),
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            tokens.push((pos, Token::Open));
            i += 1;
        } else if c == ')' {
            tokens.push((pos, Token::Close));
            i += 1;
        } else if c == '"' {
            // Find the closing quote, skipping escapes, and let serde_json decode.
            let mut j = i + 1;
            let mut closed = None;
            while j < chars.len() {
                match chars[j].1 {
                    '\\' => j += 2,
                    '"' => {
                        closed = Some(j);
                        break;
                    }
                    _ => j += 1,
                }
            }
            let Some(end) = closed else {
                return Err(ParseError(format!("Unterminated string at position {pos}")));
            };
            let end_byte = chars[end].0 + 1;
            let literal: String = serde_json::from_str(&input[pos..end_byte])
                .map_err(|_| ParseError(format!("Invalid string literal at position {pos}")))?;
            tokens.push((pos, Token::Str(literal)));
            i = end + 1;
        } else if c == '-' || c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].1.is_ascii_alphanumeric() || matches!(chars[j].1, '.' | '-' | '+'))
            {
                j += 1;
            }
            let end_byte = chars.get(j).map_or(input.len(), |(p, _)| *p);
            let text = &input[pos..end_byte];
            let number: serde_json::Number = text
                .parse()
                .map_err(|_| ParseError(format!("Invalid number '{text}'")))?;
            tokens.push((pos, Token::Num(Value::Number(number))));
            i = j;
        } else if c.is_alphanumeric() || matches!(c, '_' | '$') {
            let mut j = i;
            while j < chars.len()
                && (chars[j].1.is_alphanumeric() || matches!(chars[j].1, '_' | '$' | '.' | ':'))
            {
                j += 1;
            }
            let end_byte = chars.get(j).map_or(input.len(), |(p, _)| *p);
            tokens.push((pos, Token::Word(input[pos..end_byte].to_string())));
            i = j;
        } else {
            return Err(ParseError(format!(
                "Unexpected character '{c}' at position {pos}"
            )));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).map(|(_, t)| t.clone());
        self.at += 1;
        token
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.and()?];
        while self.peek_keyword("or") {
            self.at += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary()?];
        while self.peek_keyword("and") {
            self.at += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek_keyword("not")
            && matches!(self.tokens.get(self.at + 1), Some((_, Token::Open)))
        {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(ParseError("Missing closing parenthesis".into())),
                }
            }
            Some(Token::Word(attr)) => {
                let op_word = match self.next() {
                    Some(Token::Word(w)) => w,
                    Some(_) => {
                        return Err(ParseError(format!(
                            "Expected an operator after attribute '{attr}'"
                        )));
                    }
                    None => {
                        return Err(ParseError(format!(
                            "Missing operator after attribute '{attr}'"
                        )));
                    }
                };
                let Some(op) = Op::parse(&op_word) else {
                    return Err(ParseError(format!(
                        "Unrecognized attribute operator '{op_word}'"
                    )));
                };
                if op == Op::Pr {
                    return Ok(Expr::Cmp {
                        attr,
                        op,
                        value: Value::Null,
                    });
                }
                let value = match self.next() {
                    Some(Token::Str(s)) => Value::String(s),
                    Some(Token::Num(n)) => n,
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
                    Some(Token::Word(w)) => {
                        return Err(ParseError(format!(
                            "Invalid value '{w}': string values must be quoted"
                        )));
                    }
                    _ => {
                        return Err(ParseError(format!(
                            "Missing value for operator '{op_word}'"
                        )));
                    }
                };
                Ok(Expr::Cmp { attr, op, value })
            }
            Some(Token::Close) => Err(ParseError("Unexpected ')'".into())),
            Some(Token::Str(_)) | Some(Token::Num(_)) => {
                Err(ParseError("Expected an attribute name".into()))
            }
            None => Err(ParseError("Unexpected end of expression".into())),
        }
    }
}

impl Expr {
    pub fn parse(input: &str) -> Result<Expr, ParseError> {
        let tokens = tokenize(input)?;
        if tokens.is_empty() {
            return Err(ParseError("Empty expression".into()));
        }
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.or()?;
        if let Some((pos, _)) = parser.tokens.get(parser.at) {
            return Err(ParseError(format!("Unexpected token at position {pos}")));
        }
        Ok(expr)
    }

    /// Calls `check` on every comparison; `not_allowed` is called when a `not` appears.
    pub fn visit(
        &self,
        check: &mut dyn FnMut(&str, Op, &Value) -> Result<(), String>,
        allow_not: bool,
    ) -> Result<(), String> {
        match self {
            Expr::Or(items) | Expr::And(items) => {
                items.iter().try_for_each(|e| e.visit(check, allow_not))
            }
            Expr::Not(inner) => {
                if !allow_not {
                    return Err("The 'not' operator is not supported".into());
                }
                inner.visit(check, allow_not)
            }
            Expr::Cmp { attr, op, value } => check(attr, *op, value),
        }
    }

    /// Evaluates against an object; `resolve` returns the values of an attribute (several
    /// for arrays, none when absent).
    pub fn eval(&self, resolve: &dyn Fn(&str) -> Vec<Value>, case_insensitive: bool) -> bool {
        match self {
            Expr::Or(items) => items.iter().any(|e| e.eval(resolve, case_insensitive)),
            Expr::And(items) => items.iter().all(|e| e.eval(resolve, case_insensitive)),
            Expr::Not(inner) => !inner.eval(resolve, case_insensitive),
            Expr::Cmp { attr, op, value } => {
                let values = resolve(attr);
                match op {
                    Op::Pr => values.iter().any(present),
                    Op::Ne => !values
                        .iter()
                        .any(|v| compare(v, Op::Eq, value, case_insensitive)),
                    _ => values
                        .iter()
                        .any(|v| compare(v, *op, value, case_insensitive)),
                }
            }
        }
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

fn timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn compare(actual: &Value, op: Op, expected: &Value, case_insensitive: bool) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (actual, expected) {
        (Value::String(a), Value::String(e)) => {
            if let (Some(ta), Some(te)) = (timestamp(a), timestamp(e)) {
                Some(ta.cmp(&te))
            } else {
                let (a, e) = if case_insensitive {
                    (a.to_lowercase(), e.to_lowercase())
                } else {
                    (a.clone(), e.clone())
                };
                match op {
                    Op::Sw => return a.starts_with(&e),
                    Op::Ew => return a.ends_with(&e),
                    Op::Co => return a.contains(&e),
                    _ => Some(a.cmp(&e)),
                }
            }
        }
        (Value::Number(a), Value::Number(e)) => match (a.as_f64(), e.as_f64()) {
            (Some(a), Some(e)) => a.partial_cmp(&e),
            _ => None,
        },
        (Value::Bool(a), Value::Bool(e)) => Some(a.cmp(e)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        // Starts/ends/contains on a timestamp compare the text.
        Op::Sw | Op::Ew | Op::Co => {
            let (Value::String(a), Value::String(e)) = (actual, expected) else {
                return false;
            };
            match op {
                Op::Sw => a.starts_with(e.as_str()),
                Op::Ew => a.ends_with(e.as_str()),
                _ => a.contains(e.as_str()),
            }
        }
        Op::Pr => false,
    }
}

/// The values at a dotted path of a JSON object; arrays on the way yield each element.
pub fn resolve_path(root: &Value, path: &str) -> Vec<Value> {
    let mut current = vec![root];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            match v {
                Value::Object(map) => {
                    if let Some(child) = map.get(part) {
                        next.push(child);
                    }
                }
                Value::Array(items) => {
                    for item in items {
                        if let Some(child) = item.get(part) {
                            next.push(child);
                        }
                    }
                }
                _ => {}
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for v in current {
        match v {
            Value::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(attr: &str, op: Op, value: Value) -> Expr {
        Expr::Cmp {
            attr: attr.into(),
            op,
            value,
        }
    }

    #[test]
    fn precedence_and_parentheses() {
        let e = Expr::parse(r#"a eq "1" or b eq "2" and c eq "3""#).unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                cmp("a", Op::Eq, json!("1")),
                Expr::And(vec![
                    cmp("b", Op::Eq, json!("2")),
                    cmp("c", Op::Eq, json!("3"))
                ])
            ])
        );
        let e = Expr::parse(r#"(a EQ "1" OR b eq "2") And c pr"#).unwrap();
        assert_eq!(
            e,
            Expr::And(vec![
                Expr::Or(vec![
                    cmp("a", Op::Eq, json!("1")),
                    cmp("b", Op::Eq, json!("2"))
                ]),
                cmp("c", Op::Pr, Value::Null)
            ])
        );
    }

    #[test]
    fn literals_and_escapes() {
        let e = Expr::parse(r#"profile.nickName eq "say \"hi\" \\ ok""#).unwrap();
        assert_eq!(
            e,
            cmp("profile.nickName", Op::Eq, json!("say \"hi\" \\ ok"))
        );
        assert_eq!(Expr::parse("n ge 10").unwrap(), cmp("n", Op::Ge, json!(10)));
        assert_eq!(
            Expr::parse("b eq true").unwrap(),
            cmp("b", Op::Eq, json!(true))
        );
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "status",
            r#"status eqq "A""#,
            "status eq ACTIVE",
            r#"status eq "A" and"#,
            r#"(status eq "A""#,
            r#"status eq "A")"#,
            r#"status eq "unterminated"#,
            r#"status eq "A" status eq "B""#,
        ] {
            assert!(Expr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn evaluation() {
        let doc = json!({"status": "ACTIVE", "profile": {"firstName": "Ada", "tags": ["x", "y"]},
            "lastUpdated": "2024-03-01T17:20:00.000Z"});
        let resolve = |p: &str| resolve_path(&doc, p);
        let t = |s: &str| Expr::parse(s).unwrap().eval(&resolve, true);
        assert!(t(r#"status eq "active""#));
        assert!(
            !Expr::parse(r#"status eq "active""#)
                .unwrap()
                .eval(&resolve, false)
        );
        assert!(t(r#"profile.firstName sw "ad""#));
        assert!(t(r#"profile.firstName co "D""#));
        assert!(t(r#"profile.tags eq "y""#));
        assert!(t(r#"lastUpdated gt "2024-01-01T00:00:00Z""#));
        assert!(!t(r#"lastUpdated lt "2024-01-01T00:00:00.000Z""#));
        assert!(t(r#"status lt "STAGED" or status gt "STAGED""#));
        assert!(t("profile.firstName pr"));
        assert!(!t("profile.middleName pr"));
        assert!(t(r#"not (status eq "SUSPENDED")"#));
    }
}
