//! The edge's configuration: the `[registration]` section of its own file (plus
//! `ADMIN_PORTAL__REGISTRATION__…` environment overrides). A registration configuration that
//! also carries an Okta API token, an Okta OAuth key or a database URL is refused: the edge
//! must hold nothing that can change an existing account.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::config::ENV_PREFIX;

/// Keys that give power over Okta or the portal's data; none may be in an edge's file.
const FORBIDDEN: &[(&str, &str)] = &[
    ("okta.api_token", "an Okta API token (okta.api_token)"),
    ("okta.oauth", "an Okta OAuth key (okta.oauth)"),
    ("okta.oauth.private_key", "an Okta OAuth key (okta.oauth)"),
    ("database.url", "a database URL (database.url)"),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// The URL the public uses, e.g. `https://join.example.com` (default `http://{bind}`).
    #[serde(default)]
    pub public_base_url: Option<Url>,
    /// admin-portal's base URL; the edge calls `{api_base_url}/api/v1/…`.
    pub api_base_url: Url,
    /// The authorization server's token endpoint (client_credentials).
    pub token_endpoint: Url,
    pub client_id: String,
    /// `client_secret_basic`, or
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// `private_key_jwt`: the client's RSA private key (PEM, PKCS#8 or PKCS#1), or
    #[serde(default)]
    pub private_key: Option<SecretString>,
    /// a file holding it,
    #[serde(default)]
    pub private_key_file: Option<std::path::PathBuf>,
    /// with the `kid` of its public key registered at the authorization server.
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Origins allowed to call the JSON endpoints from a browser (CORS); none by default.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed (the rightmost address is the client).
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// Secret for the proof-of-work challenges (HMAC); random at start-up when absent.
    #[serde(default)]
    pub pow_hmac_key: Option<SecretString>,
    #[serde(default)]
    pub limits: Limits,
    /// Redis shared by every edge (limits, spent challenges); unset: each edge keeps its own.
    /// Its keys (`gcra:edge.…`, `count:edge.failures:…`, `once:pow:…`) never meet the
    /// portal's, so both may use one Redis and one prefix.
    #[serde(default)]
    pub cluster: crate::cluster::ClusterConfig,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// `[registration.metrics]`: the edge's own `/metrics` (its limits' refusals), loopback
    /// only by default.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
}

/// Abuse controls; every number is configurable (defaults in the README).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Submissions (register or forgot-password, page or JSON) per client address per hour.
    pub per_ip_per_hour: u32,
    /// Burst allowed per address.
    pub per_ip_burst: u32,
    /// Submissions per email address per hour.
    pub per_email_per_hour: u32,
    pub per_email_burst: u32,
    /// Form submissions without a proof of work (browsers without JavaScript) per address
    /// per hour: a much smaller budget.
    pub no_pow_per_ip_per_hour: u32,
    /// Proof-of-work difficulty: the largest number a challenge may hide.
    pub pow_max_number: u64,
    /// How long a challenge may be solved and used (once).
    pub pow_ttl_seconds: u64,
    /// Refused submissions from one address within `failure_window_seconds` after which
    /// every further challenge for that address is harder (doubling per failure, to 64×).
    pub failures_before_slowdown: u32,
    pub failure_window_seconds: u64,
    /// Request bodies over this size are refused with 413.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_ip_per_hour: 30,
            per_ip_burst: 10,
            per_email_per_hour: 5,
            per_email_burst: 3,
            no_pow_per_ip_per_hour: 3,
            pow_max_number: 50_000,
            pow_ttl_seconds: 600,
            failures_before_slowdown: 3,
            failure_window_seconds: 900,
            max_body_bytes: 8 * 1024,
        }
    }
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}

pub fn default_scopes() -> Vec<String> {
    vec!["admin.users.register".into(), "admin.users.recover".into()]
}

/// The whole file, as read: the edge's section and whatever else is in it.
fn read(path: Option<&Path>) -> Result<config::Config, Vec<String>> {
    let mut builder = config::Config::builder();
    if let Some(path) = path {
        if !path.exists() {
            return Err(vec![format!(
                "configuration file {} does not exist",
                path.display()
            )]);
        }
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("registration.scopes")
            .with_list_parse_key("registration.cors_origins")
            .with_list_parse_key("registration.trusted_proxies")
            .try_parsing(true),
    );
    builder.build().map_err(|e| vec![e.to_string()])
}

/// Whether the file is an edge's (it has a `[registration]` section).
pub fn is_registration_file(path: Option<&Path>) -> bool {
    read(path).is_ok_and(|raw| raw.get::<config::Value>("registration").is_ok())
}

impl RegistrationConfig {
    /// Reads and validates the edge's configuration; every problem in plain words.
    pub fn load(path: Option<&Path>) -> Result<RegistrationConfig, Vec<String>> {
        let raw = read(path)?;
        let mut problems = forbidden(&raw);
        match raw.get::<RegistrationConfig>("registration") {
            Ok(config) => problems.extend(config.problems()),
            Err(e) => problems.push(format!("registration: {e}")),
        }
        if problems.is_empty() {
            raw.get::<RegistrationConfig>("registration")
                .map_err(|e| vec![e.to_string()])
        } else {
            Err(problems)
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, url) in [
            ("registration.api_base_url", Some(&self.api_base_url)),
            ("registration.token_endpoint", Some(&self.token_endpoint)),
            (
                "registration.public_base_url",
                self.public_base_url.as_ref(),
            ),
        ] {
            if let Some(url) = url {
                crate::config::check_http_url(name, url, &mut problems);
            }
        }
        if self.client_id.trim().is_empty() {
            problems.push("registration.client_id is empty".into());
        }
        problems.extend(self.client_auth_problems());
        let allowed = default_scopes();
        for scope in self.scopes.iter().filter(|s| !allowed.contains(s)) {
            problems.push(format!(
                "registration.scopes: {scope:?} is not allowed; the edge may only ask for admin.users.register and admin.users.recover"
            ));
        }
        problems.extend(self.limits.problems());
        problems.extend(self.cluster_problems());
        problems
    }

    /// Edges that share Redis must also share the key their challenges are signed with, or a
    /// challenge from one would be refused by the next.
    fn cluster_problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .cluster
            .problems()
            .into_iter()
            .map(|p| format!("registration.{p}"))
            .collect();
        if self.cluster.redis_url.is_some() && self.pow_hmac_key.is_none() {
            problems.push(
                "registration.cluster.redis_url is set but registration.pow_hmac_key is not: edges that share Redis must share the proof-of-work key".into(),
            );
        }
        problems
    }

    fn client_auth_problems(&self) -> Vec<String> {
        let secret = self
            .client_secret
            .as_ref()
            .is_some_and(|s| !s.expose_secret().is_empty());
        let key = self.private_key.is_some() || self.private_key_file.is_some();
        match (secret, key) {
            (true, true) => vec![
                "registration: give client_secret or a private key (private_key_jwt), not both"
                    .into(),
            ],
            (false, false) => {
                vec!["registration: client_secret is empty and no private key is given".into()]
            }
            (true, false) => Vec::new(),
            (false, true) => match (&self.key_id, self.signing_key()) {
                (None, _) => vec!["registration.key_id is needed with a private key".into()],
                (_, Err(e)) => vec![format!("registration private key: {e}")],
                _ => Vec::new(),
            },
        }
    }

    /// The private_key_jwt signing key, if one is configured.
    pub fn signing_key(&self) -> Result<Option<jsonwebtoken::EncodingKey>, String> {
        let pem = match (&self.private_key, &self.private_key_file) {
            (Some(pem), _) => pem.expose_secret().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            (None, None) => return Ok(None),
        };
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
            .map(Some)
            .map_err(|_| "not an RSA private key in PEM".to_string())
    }

    /// The edge's public base URL, without a trailing slash.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        self.public_base_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// A description safe to print (the secrets hidden).
    pub fn redacted_summary(&self) -> Vec<(String, String)> {
        let l = &self.limits;
        vec![
            ("registration.bind".into(), self.bind.to_string()),
            (
                "registration.api_base_url".into(),
                self.api_base_url.to_string(),
            ),
            (
                "registration.token_endpoint".into(),
                self.token_endpoint.to_string(),
            ),
            ("registration.client_id".into(), self.client_id.clone()),
            (
                "registration.client_auth".into(),
                match &self.key_id {
                    Some(kid) if self.client_secret.is_none() => {
                        format!("private_key_jwt, key {kid} (hidden)")
                    }
                    _ => "client_secret_basic, secret (set, hidden)".into(),
                },
            ),
            ("registration.scopes".into(), self.scopes.join(" ")),
            (
                "registration.cors_origins".into(),
                self.cors_origins.join(" "),
            ),
            (
                "registration.limits".into(),
                format!(
                    "ip {}/h burst {}, email {}/h burst {}, without proof of work {}/h",
                    l.per_ip_per_hour,
                    l.per_ip_burst,
                    l.per_email_per_hour,
                    l.per_email_burst,
                    l.no_pow_per_ip_per_hour
                ),
            ),
        ]
    }
}

impl Limits {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("per_ip_per_hour", self.per_ip_per_hour),
            ("per_ip_burst", self.per_ip_burst),
            ("per_email_per_hour", self.per_email_per_hour),
            ("per_email_burst", self.per_email_burst),
        ] {
            if value == 0 {
                problems.push(format!("registration.limits.{name} must be at least 1"));
            }
        }
        if self.pow_max_number < 1_000 {
            problems.push("registration.limits.pow_max_number must be at least 1000".into());
        }
        if self.pow_ttl_seconds < 30 {
            problems.push("registration.limits.pow_ttl_seconds must be at least 30".into());
        }
        if self.max_body_bytes < 1024 {
            problems.push("registration.limits.max_body_bytes must be at least 1024".into());
        }
        problems
    }
}

/// Every forbidden credential present in the file or the environment.
fn forbidden(raw: &config::Config) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    for (key, what) in FORBIDDEN {
        let message = format!(
            "a registration configuration must not hold {what}: the public edge holds no Okta credential and no database"
        );
        if raw.get::<config::Value>(key).is_ok() && !problems.contains(&message) {
            problems.push(message);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGE: &str = r#"
[registration]
api_base_url = "http://127.0.0.1:8080"
token_endpoint = "http://127.0.0.1:8081/oauth2/default/v1/token"
client_id = "0oaCustomerAppClient"
client_secret = "edge-secret-value"
"#;

    fn load(text: &str) -> Result<RegistrationConfig, Vec<String>> {
        let dir = std::env::temp_dir().join("admin-portal-registration-config");
        std::fs::create_dir_all(&dir).map_err(|e| vec![e.to_string()])?;
        let path = dir.join(format!("{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).map_err(|e| vec![e.to_string()])?;
        let loaded = RegistrationConfig::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn a_minimal_edge_configuration_is_valid_with_the_documented_defaults() {
        let config = load(EDGE).unwrap();
        assert_eq!(config.limits.per_ip_per_hour, 30);
        assert_eq!(config.limits.no_pow_per_ip_per_hour, 3);
        assert_eq!(config.scopes, default_scopes());
        let summary = format!("{:?} {:?}", config, config.redacted_summary());
        assert!(!summary.contains("edge-secret-value"), "{summary}");
    }

    #[test]
    fn okta_credentials_or_a_database_url_are_refused() {
        let with = format!(
            "{EDGE}\n[okta]\napi_token = \"ssws\"\n[okta.oauth]\nclient_id = \"x\"\nprivate_key = \"k\"\n[database]\nurl = \"sqlite://x.db\"\n"
        );
        let problems = load(&with).unwrap_err().join("\n");
        assert!(problems.contains("an Okta API token"), "{problems}");
        assert!(problems.contains("an Okta OAuth key"), "{problems}");
        assert!(problems.contains("a database URL"), "{problems}");
        assert_eq!(problems.matches("Okta OAuth key").count(), 1, "{problems}");
    }

    #[test]
    fn edges_sharing_redis_must_share_the_proof_of_work_key() {
        let text =
            format!("{EDGE}[registration.cluster]\nredis_url = \"redis://127.0.0.1:6379\"\n");
        let problems = load(&text).unwrap_err().join("\n");
        assert!(
            problems.contains("must share the proof-of-work key"),
            "{problems}"
        );
        let keyed = text.replace(
            "[registration.cluster]",
            "pow_hmac_key = \"k\"\n[registration.cluster]",
        );
        let config = load(&keyed).unwrap();
        assert!(config.cluster.redis_url.is_some());
    }

    #[test]
    fn a_private_key_replaces_the_secret_but_not_both() {
        let key = okta_pem();
        let with_key = EDGE.replace(
            "client_secret = \"edge-secret-value\"",
            &format!("key_id = \"kid-1\"\nprivate_key = '''{key}'''"),
        );
        let config = load(&with_key).unwrap();
        assert!(config.signing_key().unwrap().is_some());
        let both = format!("{EDGE}key_id = \"kid-1\"\nprivate_key = '''{key}'''\n");
        let problems = load(&both).unwrap_err().join("\n");
        assert!(problems.contains("not both"), "{problems}");
        let bad = EDGE.replace(
            "client_secret = \"edge-secret-value\"",
            "key_id = \"k\"\nprivate_key = \"not a key\"",
        );
        let problems = load(&bad).unwrap_err().join("\n");
        assert!(problems.contains("not an RSA private key"), "{problems}");
    }

    fn okta_pem() -> String {
        include_str!("../../crates/okta-sim/src/keys/portal-service-app.pem").to_string()
    }

    #[test]
    fn other_scopes_and_zero_limits_are_refused() {
        let text = format!(
            "{EDGE}scopes = [\"admin.users.register\", \"admin.users.lifecycle\"]\n[registration.limits]\nper_ip_per_hour = 0\n"
        );
        let problems = load(&text).unwrap_err().join("\n");
        assert!(
            problems.contains("\"admin.users.lifecycle\" is not allowed"),
            "{problems}"
        );
        assert!(
            problems.contains("per_ip_per_hour must be at least 1"),
            "{problems}"
        );
    }
}
