//! The command line: check-config prints every problem plainly and never a secret.

use std::process::Command;

/// A valid session key for the example file (base64 of 32 bytes).
const SESSION_KEY: (&str, &str) = (
    "ADMIN_PORTAL__SESSION__ENCRYPTION_KEY",
    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
);

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_admin-portal"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run admin-portal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("admin-portal-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_accepts_the_example_and_hides_secrets() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/admin-portal.example.toml");
    let (code, stdout, stderr) = run(
        &["check-config", "--config", example],
        &[
            (
                "ADMIN_PORTAL__OIDC__CLIENT_SECRET",
                "super-secret-value-123",
            ),
            SESSION_KEY,
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Configuration is valid."));
    assert!(!stdout.contains(SESSION_KEY.1) && !stderr.contains(SESSION_KEY.1));
    assert!(stdout.contains("oidc.client_secret") && stdout.contains("(set, hidden)"));
    assert!(
        !stdout.contains("super-secret-value-123") && !stderr.contains("super-secret-value-123")
    );
}

#[test]
fn check_config_lists_every_problem_and_exits_1() {
    let path = write(
        "bad.toml",
        r#"
[oidc]
issuer = "http://idp.example.com/oauth2/default"
client_id = ""
client_secret = "do-not-print-me"
scopes = ["profile"]
[okta]
org_url = "https://example.okta.com"
[database]
url = "mysql://nope"
[policy.permissions."users.fly"]
scopes = ["admin.users.read"]
groups = ["Portal-Agents"]
"#,
    );
    let (code, stdout, stderr) = run(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    for needle in [
        "oidc.client_id is empty",
        "must include \"openid\"",
        "plain http on a non-loopback host",
        "database.url must start with",
        "unknown permission \"users.fly\"",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
    assert!(!stderr.contains("do-not-print-me") && !stdout.contains("do-not-print-me"));
}

#[test]
fn environment_overrides_the_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/admin-portal.example.toml");
    let (code, stdout, _) = run(
        &["check-config", "--config", example],
        &[
            ("ADMIN_PORTAL__OIDC__CLIENT_SECRET", "x"),
            ("ADMIN_PORTAL__SESSION__IDLE_TIMEOUT_MINUTES", "12"),
            SESSION_KEY,
            (
                "ADMIN_PORTAL__DATABASE__URL",
                "postgres://portal:pw@db.internal/portal",
            ),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("session.idle_timeout_minutes") && stdout.contains(" 12"),
        "{stdout}"
    );
    assert!(
        stdout.contains("postgres://portal:hidden@db.internal/portal"),
        "{stdout}"
    );
}

#[test]
fn check_config_without_the_session_key_fails_with_a_clear_message() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/admin-portal.example.toml");
    let (code, stdout, stderr) = run(
        &["check-config", "--config", example],
        &[("ADMIN_PORTAL__OIDC__CLIENT_SECRET", "x")],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "session.encryption_key is not set: it encrypts the tokens kept in sessions; set it to 32 random bytes in base64"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run(
        &["check-config", "--config", example],
        &[
            ("ADMIN_PORTAL__OIDC__CLIENT_SECRET", "x"),
            ("ADMIN_PORTAL__SESSION__ENCRYPTION_KEY", "dG9vLXNob3J0"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("session.encryption_key must decode to 32 bytes, not 9"),
        "{stderr}"
    );
    assert!(!stderr.contains("dG9vLXNob3J0"), "{stderr}");
}

#[test]
fn missing_config_file_is_reported() {
    let (code, _, stderr) = run(
        &["check-config", "--config", "/nonexistent/portal.toml"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

/// `admin-portal okta-sim` started with its knobs, killed when dropped.
struct SimProcess {
    child: std::process::Child,
    base: String,
}

impl SimProcess {
    async fn start(knobs: &[&str]) -> SimProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_admin-portal"))
            .args(["okta-sim", "--port", &port.to_string()])
            .args(knobs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start okta-sim");
        let sim = SimProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let url = format!(
            "{}/oauth2/default/.well-known/openid-configuration",
            sim.base
        );
        for _ in 0..100 {
            if client.get(&url).send().await.is_ok() {
                return sim;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("okta-sim did not start on {}", sim.base);
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value, std::time::Duration) {
        let started = std::time::Instant::now();
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header(
                "Authorization",
                format!("SSWS {}", okta_sim::DEMO_API_TOKEN),
            )
            .send()
            .await
            .expect("the simulator answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body, started.elapsed())
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn okta_sim_command_line_sets_latency_rate_limits_and_faults() {
    let sim = SimProcess::start(&[
        "--latency-ms",
        "150",
        "--rate-limit",
        "GET /api/v1/users=2",
        "--fault",
        "/api/v1/groups:503:50%",
    ])
    .await;
    for _ in 0..2 {
        let (status, _, took) = sim.get("/api/v1/users?limit=1").await;
        assert_eq!(status, 200);
        assert!(took >= std::time::Duration::from_millis(150), "{took:?}");
    }
    let (status, body, _) = sim.get("/api/v1/users?limit=1").await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (429, Some("E0000047"))
    );
    // Every second request to /api/v1/groups fails as Okta's 503 does.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, body, _) = sim.get("/api/v1/groups").await;
        if status == 503 {
            assert!(body["errorCode"].as_str().is_some(), "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 503, 200, 503]);
}

#[tokio::test]
async fn okta_sim_rate_limit_off_lifts_every_ceiling() {
    let sim = SimProcess::start(&["--rate-limit", "*=3", "--rate-limit", "off"]).await;
    for _ in 0..10 {
        let (status, _, _) = sim.get("/api/v1/users?limit=1").await;
        assert_eq!(status, 200);
    }
}

#[test]
fn okta_sim_refuses_a_malformed_knob_plainly() {
    let (code, _, stderr) = run(&["okta-sim", "--fault", "/api/v1/users:404:0.5"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("the kind is a 5xx status, 429, timeout or malformed"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["okta-sim", "--rate-limit", "users=5"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a bucket"), "{stderr}");
}
