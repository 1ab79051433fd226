//! Builds the application from a validated configuration and runs it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::audit::AuditStore;
use crate::auth::oidc::Oidc;
use crate::auth::oidc::RevokeOnEnd;
use crate::config::ValidConfig;
use crate::db::Database;
use crate::okta::OktaClient;
use crate::ops::Ops;
use crate::session_store::DbSessionStore;
use crate::state::AppState;

pub use crate::http::{USER_AGENT, http_client, init_tls};

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    addr: SocketAddr,
    pub state: AppState,
    sessions: DbSessionStore,
}

/// The session cookie: `__Host-` and `Secure` behind https, HttpOnly, SameSite=Lax, idle expiry.
fn session_layer(
    config: &crate::config::Config,
    sessions: DbSessionStore,
) -> SessionManagerLayer<DbSessionStore> {
    let secure = config.secure_cookies();
    SessionManagerLayer::new(sessions)
        .with_name(if secure {
            "__Host-portal_session"
        } else {
            "portal_session"
        })
        .with_secure(secure)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        // Every request hands the session to the store, which writes it only when its
        // data changed or the idle expiry moved far enough (see `session_store`).
        .with_always_save(true)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            config.session.idle_timeout_minutes as i64,
        )))
}

impl Application {
    /// Connects the database, binds the listener (port 0 picks one) and wires everything.
    pub async fn build(valid: ValidConfig) -> anyhow::Result<Application> {
        let ValidConfig {
            config,
            policy,
            ticket_pattern,
        } = valid;
        let listener = TcpListener::bind(config.server.bind).await?;
        let addr = listener.local_addr()?;
        let public_base = config.public_base(addr);
        let http = http_client()?;
        let db = Database::connect(&config.database).await?;
        let shared = crate::cluster::Shared::connect(&config.cluster).await?;
        let mut okta = OktaClient::new(http.clone(), &config.okta)?;
        okta.share_budget(shared.clone());
        let oidc = Arc::new(Oidc::new(http, config.oidc.clone(), &public_base)?);
        let sessions = DbSessionStore::new(
            &db,
            config.session.store_settings(),
            Some(Arc::new(RevokeOnEnd(oidc.clone()))),
        )?;
        // Load the provider's metadata now; a provider that is down at start-up is retried
        // on first use and reported by /readyz.
        if !oidc.ready().await {
            tracing::warn!(issuer = %config.oidc.issuer, "OpenID Provider discovery failed; will retry");
        }
        let session_layer = session_layer(&config, sessions.clone());
        let (policy, okta, audit) = (
            Arc::new(policy),
            Arc::new(okta),
            AuditStore::with_throttle(db.clone(), &config.audit.throttle, shared.clone()),
        );
        let ops = Ops::new(
            okta.clone(),
            audit.clone(),
            policy.clone(),
            config.users.clone(),
            config.mfa.clone(),
            ticket_pattern,
        )
        .with_velocity(crate::ops::velocity::Velocity::new(
            shared.clone(),
            config.limits.velocity.clone(),
        ));
        let state = AppState {
            session: Arc::new(config.session.clone()),
            config: Arc::new(config),
            policy,
            oidc,
            okta,
            audit,
            ops: Arc::new(ops),
            db,
            public_base,
            shared,
            live_searches: Default::default(),
        };
        let router = crate::routes::router(state.clone(), session_layer);
        Ok(Application {
            listener,
            router,
            addr,
            state,
            sessions,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        self.state
            .public_base
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sessions = self.sessions.clone();
        let sweep = Duration::from_secs(self.state.config.session.sweep_interval_seconds.max(1));
        let cleanup = tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep);
            loop {
                tick.tick().await;
                if let Err(e) = sessions.sweep_expired().await {
                    tracing::warn!(error = %e, "removing expired sessions failed");
                }
            }
        });
        let audit = self.state.audit.clone();
        let window = self.state.config.audit.throttle.window_seconds.max(1);
        let flush = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(window));
            loop {
                tick.tick().await;
                // A failure here is logged by the store; the counts are retried next time.
                let _ = audit.flush_suppressed(false).await;
            }
        });
        let unfinished = self.unfinished_recovery();
        let result = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        cleanup.abort();
        flush.abort();
        unfinished.abort();
        // Counted failures are written before the process ends.
        let _ = self.state.audit.flush_suppressed(true).await;
        result.map_err(Into::into)
    }

    /// Records, at start-up and then periodically, the changes a stopped portal left
    /// unfinished (see `audit::unfinished`).
    fn unfinished_recovery(&self) -> JoinHandle<()> {
        let audit = self.state.audit.clone();
        let after = Duration::from_secs(self.state.config.audit.unfinished_after_seconds);
        let every = after.min(Duration::from_secs(60)) / 2;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(500)));
            loop {
                tick.tick().await;
                if let Err(e) = audit.recover_unfinished(after).await {
                    tracing::warn!(error = %e, "recording unfinished changes failed");
                }
            }
        })
    }

    /// Runs in the background; the handle stops it.
    pub fn spawn(self) -> RunningApp {
        let addr = self.addr;
        let base_url = self.base_url();
        let state = self.state.clone();
        let sessions = self.sessions.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = rx.await;
            };
            if let Err(e) = self.run_until_stopped(stopped).await {
                tracing::error!(error = %e, "portal stopped with an error");
            }
        });
        RunningApp {
            addr,
            base_url,
            state,
            sessions,
            shutdown: Some(tx),
            task: Some(task),
        }
    }
}

pub struct RunningApp {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: AppState,
    /// The session store (its write count, for tests and benchmarks).
    pub sessions: DbSessionStore,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningApp {
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Escapes control characters in one formatted log event, so that untrusted text in a
/// field or message (CR, LF, TAB, ESC, NUL, …) cannot forge or hide log lines. The one
/// newline that ends the event is kept. Applied to every event, whatever the call site.
pub fn escape_log_line(line: &[u8]) -> Vec<u8> {
    let (body, end) = match line.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (line, &b""[..]),
    };
    let mut out = Vec::with_capacity(line.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0 => out.extend_from_slice(b"\\0"),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

/// A writer that passes each log event through [`escape_log_line`].
pub struct EscapingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&escape_log_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Logs to stdout, one escaped line (or one JSON object) per event, filtered by `RUST_LOG`
/// (default `info`).
pub fn init_tracing(format: crate::config::LogFormat) {
    use tracing_subscriber::util::SubscriberInitExt;
    log_subscriber(format, || EscapingWriter(std::io::stdout())).init();
}

/// The subscriber behind [`init_tracing`], writing to `writer`.
pub fn log_subscriber<W>(
    format: crate::config::LogFormat,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes would be escaped too.
        .with_ansi(false)
        .with_writer(writer);
    match format {
        crate::config::LogFormat::Text => Box::new(builder.finish()),
        // The JSON encoder escapes every string it writes (the escaping writer then has
        // nothing left to do but stays as a guard).
        crate::config::LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_log_event_are_escaped() {
        let line = b"WARN summary=group \n2026 INFO forged\r\x1b[31m\0\ttab\x7f\n";
        let escaped = String::from_utf8(escape_log_line(line)).unwrap();
        assert_eq!(
            escaped,
            "WARN summary=group \\n2026 INFO forged\\r\\x1b[31m\\0\\ttab\\x7f\n"
        );
        assert_eq!(escaped.matches('\n').count(), 1);
        assert_eq!(escape_log_line("ünïcode".as_bytes()), "ünïcode".as_bytes());
    }

    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_logs_are_one_object_per_event_with_untrusted_text_escaped() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = log_subscriber(crate::config::LogFormat::Json, move || {
            EscapingWriter(writer.clone())
        });
        let typed = "ada\n{\"level\":\"ERROR\",\"message\":\"forged\"}\r\u{1b}[31m\"";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(login = typed, "sign-in refused");
            tracing::info!(count = 3, "second event");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["message"], "sign-in refused");
        assert_eq!(
            first["login"], typed,
            "the text survives, escaped: {}",
            lines[0]
        );
        assert!(!lines[0].contains('\u{1b}') && !lines[0].contains('\r'));
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["count"], 3);
    }
}
