//! Export lines: CSV (RFC 4180 quoting, spreadsheet formulas neutralised) and JSON Lines.

use super::AuditRecord;

pub const CSV_HEADER: &str = "id,occurred_at,request_id,action,outcome,actor_sub,actor_login,actor_name,client_id,permission,target_id,target_login,target_name,reason,ticket,detail,okta_request_id,okta_error_code,status_before,status_after,client_ip,user_agent,hash\r\n";

fn csv_field(value: &str) -> String {
    // A cell starting with = + - @ is run as a formula by spreadsheets: prefix a quote.
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

pub fn csv_line(r: &AuditRecord) -> String {
    let opt = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
    let fields = [
        r.id.to_string(),
        csv_field(&r.occurred_at),
        csv_field(&r.request_id),
        csv_field(&r.action),
        csv_field(&r.outcome),
        opt(&r.actor_sub),
        opt(&r.actor_login),
        opt(&r.actor_name),
        opt(&r.client_id),
        opt(&r.permission),
        opt(&r.target_id),
        opt(&r.target_login),
        opt(&r.target_name),
        opt(&r.reason),
        opt(&r.ticket),
        opt(&r.detail),
        opt(&r.okta_request_id),
        opt(&r.okta_error_code),
        opt(&r.status_before),
        opt(&r.status_after),
        opt(&r.client_ip),
        opt(&r.user_agent),
        csv_field(&r.hash),
    ];
    let mut line = fields.join(",");
    line.push_str("\r\n");
    line
}

pub fn jsonl_line(r: &AuditRecord) -> String {
    let mut line = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_string());
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_formula_neutralising() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(CSV_HEADER.matches(',').count(), 22);
    }
}
