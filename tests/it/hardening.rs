//! Issue 13: what an outsider and a bad day could do, pinned by tests.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use admin_portal::audit::Target;
use admin_portal::audit::{Action, Actor, AuditRecord, MAX_TEXT, NewEvent, Outcome, RequestMeta};
use admin_portal::startup::EscapingWriter;
use futures_util::StreamExt;
use okta_sim::{Fault, FaultKind};

use crate::helpers::*;

fn columns(r: &AuditRecord) -> Vec<(&'static str, Option<&str>)> {
    vec![
        ("request_id", Some(r.request_id.as_str())),
        ("actor_sub", r.actor_sub.as_deref()),
        ("actor_login", r.actor_login.as_deref()),
        ("actor_name", r.actor_name.as_deref()),
        ("client_id", r.client_id.as_deref()),
        ("permission", r.permission.as_deref()),
        ("target_id", r.target_id.as_deref()),
        ("target_login", r.target_login.as_deref()),
        ("target_name", r.target_name.as_deref()),
        ("reason", r.reason.as_deref()),
        ("ticket", r.ticket.as_deref()),
        ("detail", r.detail.as_deref()),
        ("okta_request_id", r.okta_request_id.as_deref()),
        ("okta_error_code", r.okta_error_code.as_deref()),
        ("status_before", r.status_before.as_deref()),
        ("status_after", r.status_after.as_deref()),
        ("client_ip", r.client_ip.as_deref()),
        ("user_agent", r.user_agent.as_deref()),
    ]
}

/// How many failures one record stands for: `N × …` when aggregated, else one.
fn occurrences(r: &AuditRecord) -> u64 {
    r.detail
        .as_deref()
        .and_then(|d| d.split_once(" × "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(1)
}

#[tokio::test]
async fn a_burst_of_anonymous_failed_callbacks_writes_a_handful_of_short_rows() {
    let t = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let huge_id = "r".repeat(100_000);
    let long = "x".repeat(5_000);
    let urls: Vec<String> = (0..1100)
        .map(|i| match i % 11 {
            // Distinct provider errors: only a few per address become records.
            0 => t.url(&format!("/auth/callback?error=e{i}&error_description=d{i}")),
            n if n % 2 == 0 => t.url(&format!(
                "/auth/callback?error=access_denied&error_description={long}"
            )),
            _ => t.url(&format!("/auth/callback?code=c&state=unknown{i}")),
        })
        .collect();
    let statuses: Vec<u16> = futures_util::stream::iter(urls)
        .map(|url| {
            let client = client.clone();
            let huge_id = huge_id.clone();
            let long_ua = "ua".repeat(50_000);
            async move {
                client
                    .get(url)
                    .header("x-request-id", huge_id)
                    .header("user-agent", long_ua)
                    .send()
                    .await
                    .expect("callback")
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == 400),
        "every callback is refused"
    );
    let written_now = t.audit().await.len();
    t.app.state.audit.flush_suppressed(true).await.unwrap();
    let rows: Vec<AuditRecord> = t
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "auth.sign_in")
        .collect();
    assert!(
        written_now <= 8,
        "{written_now} rows written during the burst"
    );
    assert!(rows.len() <= 12, "{} rows: {rows:#?}", rows.len());
    assert_eq!(
        rows.iter().map(occurrences).sum::<u64>(),
        1100,
        "every failure is counted in some record"
    );
    for r in &rows {
        assert_eq!(r.outcome, "failure");
        assert_ne!(r.request_id, huge_id);
        assert!(
            r.request_id.len() <= 64,
            "request id {:?}",
            r.request_id.len()
        );
        for (name, value) in columns(r) {
            let len = value.map(str::len).unwrap_or(0);
            assert!(len <= MAX_TEXT, "{name} holds {len} bytes");
        }
    }
    assert!(t.app.state.audit.verify().await.unwrap().intact());
}

#[tokio::test]
async fn request_ids_come_from_the_portal_unless_a_trusted_proxy_sends_a_plain_one() {
    let untrusted = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let r = client
        .get(untrusted.url("/healthz"))
        .header("x-request-id", "edge-42.a_b")
        .send()
        .await
        .unwrap();
    let generated = id_of(&r);
    assert_ne!(generated, "edge-42.a_b");
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let trusted = TestApp::spawn_with(|c| {
        c.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for (sent, kept) in [
        ("edge-42.a_b", true),
        ("has space", false),
        (&"a".repeat(65)[..], false),
    ] {
        let r = client
            .get(trusted.url("/healthz"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        assert_eq!(id_of(&r) == sent, kept, "{sent}");
    }
    // The trail holds the proxy's id.
    client
        .get(trusted.url("/auth/callback?error=access_denied"))
        .header("x-request-id", "edge-43")
        .send()
        .await
        .unwrap();
    let rows = trusted.audit().await;
    assert_eq!(rows.last().map(|r| r.request_id.as_str()), Some("edge-43"));
}

#[tokio::test]
async fn activity_links_encode_stored_ids_as_one_path_segment() {
    let t = TestApp::spawn().await;
    let event = NewEvent::new(
        Action::UserSuspend,
        Outcome::Failure,
        Actor {
            sub: Some("../../users/new".into()),
            login: Some("x@example.com".into()),
            name: Some("X".into()),
            client_id: None,
        },
        RequestMeta::default(),
    )
    .target(Target {
        id: Some("../../activity/export.csv".into()),
        login: None,
        name: Some("Traversal".into()),
    });
    t.app.state.audit.record(event).await.unwrap();
    let b = t.signed_in(MANAGER).await;
    let page = b.get("/activity").await;
    assert_eq!(page.status, 200);
    let sel = scraper::Selector::parse("#activity-table a[href]").unwrap();
    let html = page.html();
    let hrefs: Vec<&str> = html
        .select(&sel)
        .filter_map(|a| a.value().attr("href"))
        .collect();
    assert!(
        hrefs.contains(&"/users/..%2F..%2Factivity%2Fexport.csv"),
        "{hrefs:?}"
    );
    assert!(
        hrefs.contains(&"/activity/agents/..%2F..%2Fusers%2Fnew"),
        "{hrefs:?}"
    );
    assert!(hrefs.iter().all(|h| !h.contains("../")), "{hrefs:?}");
}

#[tokio::test]
async fn bad_input_gets_the_portals_error_page_not_a_500_or_plain_text() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    // A form body over the 2 MiB limit.
    let token = b.csrf_token().await;
    let body = format!(
        "email=a%40example.com&reason={}",
        "a".repeat(3 * 1024 * 1024)
    );
    let page = Page::from(
        b.client
            .post(t.url("/users"))
            .header("x-csrf-token", token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 413);
    assert_eq!(
        page.text("#error-title").as_deref(),
        Some("Request too large")
    );
    assert!(page.body.contains("Request id"), "{}", page.body);

    // A filter value no record can match.
    let page = b
        .get(&format!("/activity?target={}", "t".repeat(60_000)))
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("is too long"), "{}", &page.body[..500]);

    // Query and path rejections.
    for (url, status) in [
        ("/activity?before=yesterday", 400),
        ("/activity/agents/%FF%FE", 400),
    ] {
        let page = b.get(url).await;
        assert_eq!(page.status, status, "{url}");
        assert!(
            page.header("content-type").starts_with("text/html"),
            "{url}"
        );
        assert_eq!(
            page.text("#error-title").as_deref(),
            Some("Bad request"),
            "{url}"
        );
        assert!(page.body.contains("Request id"), "{url}");
    }
}

#[tokio::test]
async fn exports_refuse_cross_site_requests_and_head_is_not_audited() {
    let t = TestApp::spawn().await;
    let b = t.signed_in(MANAGER).await;
    let exports =
        |rows: Vec<AuditRecord>| rows.iter().filter(|r| r.action == "audit.export").count();
    for site in ["cross-site", "same-site"] {
        let page = Page::from(
            b.client
                .get(t.url("/activity/export.csv"))
                .header("sec-fetch-site", site)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, 403, "{site}");
        assert!(page.body.contains("another site"), "{}", page.body);
    }
    assert_eq!(exports(t.audit().await), 0);
    let head = b
        .client
        .head(t.url("/activity/export.jsonl"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        exports(t.audit().await),
        0,
        "HEAD exports nothing and is not audited"
    );
    for site in ["same-origin", "none"] {
        let r = b
            .client
            .get(t.url("/activity/export.csv"))
            .header("sec-fetch-site", site)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{site}");
        assert!(r.text().await.unwrap().starts_with("id,occurred_at"));
    }
    assert_eq!(exports(t.audit().await), 2);
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let t = TestApp::spawn_with(|c| {
        c.server.public_base_url = Some(url::Url::parse("https://portal.example.test").unwrap());
        c.http.hsts_max_age_seconds = 600;
    })
    .await;
    let r = reqwest::get(format!("http://{}/healthz", t.app.addr))
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=600; includeSubDomains")
    );
    let plain = TestApp::spawn().await;
    let r = reqwest::get(plain.url("/healthz")).await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn untrusted_text_cannot_forge_a_log_line() {
    let captured = Captured(Arc::new(Mutex::new(Vec::new())));
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || EscapingWriter(sink.clone()))
        .finish();
    // The test binary's only subscriber; other tests' events land in the buffer too.
    tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    let t = TestApp::spawn().await;
    let b = t.signed_in(AGENT).await;
    // Okta's error repeats the group id, and the portal logs Okta's summary.
    let forged = "%0D%0A2026-01-01T00:00:00Z  INFO FORGED-LINE%1B[2K%00";
    b.get(&format!("/users?group=00g{forged}")).await;
    tracing::warn!(value = %"x\nFORGED-LINE-DIRECT", "a direct check");
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        text.contains("FORGED-LINE-DIRECT"),
        "the direct event is captured"
    );
    assert!(
        text.contains(r"00g\r\n2026-01-01") && text.contains(r"FORGED-LINE\x1b[2K\0"),
        "Okta's summary is logged, escaped: {text}"
    );
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-01-01") && !line.starts_with("FORGED-LINE"),
            "forged line: {line:?}"
        );
        assert!(
            !line.contains(['\r', '\u{1b}', '\0']),
            "raw control character: {line:?}"
        );
    }
}

#[tokio::test]
async fn a_request_that_runs_too_long_is_stopped_with_a_504_page() {
    let t = TestApp::spawn_with(|c| c.http.request_timeout_seconds = 1).await;
    let b = t.signed_in(AGENT).await;
    let id = t.plain_active_user();
    t.sim().inject_fault(
        Fault::new(
            "GET",
            &format!("/api/v1/users/{id}"),
            FaultKind::Latency(Duration::from_secs(4)),
        )
        .times(4),
    );
    let page = b.get(&format!("/users/{id}")).await;
    assert_eq!(page.status, 504, "{}", page.body);
    assert_eq!(
        page.text("#error-title").as_deref(),
        Some("The request took too long")
    );
    assert!(page.body.contains("Request id"));
    // The page works again once Okta answers in time.
    t.sim().clear_faults();
    assert_eq!(b.get(&format!("/users/{id}")).await.status, 200);
}
