//! `admin-portal demo`: the simulator, the portal and a SQLite file, seeded, in one process.
//! Only with the `demo` feature (on by default).

use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use url::Url;

use crate::config::{
    Config, DatabaseConfig, OidcConfig, OktaConfig, PolicyConfig, ServerConfig, SessionConfig,
    UsersConfig,
};
use crate::startup::{Application, shutdown_signal};
use okta_sim::{DEMO_ACCOUNTS, DEMO_PASSWORD, SimOptions};

/// The registration edge's configuration for a demo or test: the customer app's client at
/// the simulator's authorization server, calling the portal at `portal_base`.
pub fn registration_config_for(
    sim_issuer: &str,
    portal_base: &str,
    bind: SocketAddr,
) -> anyhow::Result<crate::registration::RegistrationConfig> {
    Ok(crate::registration::RegistrationConfig {
        bind,
        public_base_url: None,
        api_base_url: Url::parse(portal_base)?,
        token_endpoint: Url::parse(&format!("{sim_issuer}/v1/token"))?,
        client_id: okta_sim::CUSTOMER_APP_CLIENT_ID.to_string(),
        client_secret: Some(SecretString::from(okta_sim::CUSTOMER_APP_SECRET)),
        private_key: None,
        private_key_file: None,
        key_id: None,
        scopes: crate::registration::config::default_scopes(),
        cors_origins: Vec::new(),
        trusted_proxies: Vec::new(),
        pow_hmac_key: None,
        limits: Default::default(),
        cluster: Default::default(),
        timeout_seconds: None,
        metrics: Default::default(),
    })
}

/// A portal configuration pointing at a simulator with the given base URL.
pub fn config_for_simulator(
    sim_base: &str,
    bind: SocketAddr,
    database_url: String,
) -> anyhow::Result<Config> {
    Ok(Config {
        server: ServerConfig {
            bind,
            public_base_url: None,
            tls_terminated: false,
        },
        oidc: OidcConfig {
            issuer: Url::parse(&format!("{sim_base}/oauth2/{}", okta_sim::AUTH_SERVER_ID))?,
            client_id: okta_sim::PORTAL_CLIENT_ID.to_string(),
            client_secret: SecretString::from(okta_sim::PORTAL_CLIENT_SECRET),
            redirect_path: "/auth/callback".into(),
            post_logout_path: "/signed-out".into(),
            scopes: crate::config::default_scopes(),
            groups_claim: "groups".into(),
            scopes_claim: "scp".into(),
            access_token_audience: okta_sim::AUDIENCE.into(),
            leeway_seconds: 60,
            discovery_ttl_seconds: 3600,
        },
        okta: OktaConfig {
            org_url: Url::parse(sim_base)?,
            api_token: Some(SecretString::from(okta_sim::DEMO_API_TOKEN)),
            oauth: None,
            timeout_seconds: 10,
            max_retry_wait_seconds: 2,
            budget: Default::default(),
        },
        database: DatabaseConfig {
            url: database_url,
            max_connections: 10,
        },
        // A key of its own for every run: demo sessions do not outlive the process's key.
        session: SessionConfig {
            encryption_key: Some(crate::session_store::SessionKey::generate_base64()),
            ..SessionConfig::default()
        },
        policy: PolicyConfig {
            permissions: Some(crate::api::demo_rules()),
            ..PolicyConfig::default()
        },
        users: UsersConfig::default(),
        audit: Default::default(),
        mfa: Default::default(),
        http: Default::default(),
        api: crate::api::demo_config(),
        cluster: Default::default(),
        metrics: Default::default(),
        log: Default::default(),
        limits: Default::default(),
    })
}

/// OAuth 2.0 for Okta with the simulator's demo service app instead of the SSWS token. The
/// app is DPoP-bound, as Okta creates API Services apps today; the portal's default
/// `okta.oauth.dpop = "auto"` switches to DPoP when Okta first asks for it.
pub fn use_service_app(config: &mut Config) {
    config.okta.api_token = None;
    config.okta.oauth = Some(crate::config::OktaOAuthConfig {
        client_id: okta_sim::SERVICE_APP_CLIENT_ID.to_string(),
        private_key: Some(SecretString::from(okta_sim::SERVICE_APP_KEY_PEM)),
        private_key_file: None,
        key_id: okta_sim::SERVICE_APP_KID.to_string(),
        scopes: okta_sim::SERVICE_APP_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        dpop: Default::default(),
    });
}

pub async fn run(
    port: u16,
    sim_port: u16,
    registration_port: u16,
    data_dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let sim = okta_sim::spawn(
        SocketAddr::from(([127, 0, 0, 1], sim_port)),
        SimOptions::default(),
    )
    .await?;
    let db_path = data_dir.join("admin-portal.db");
    let mut config = config_for_simulator(
        sim.base_url(),
        SocketAddr::from(([127, 0, 0, 1], port)),
        format!("sqlite://{}", db_path.display()),
    )?;
    // The path a new real org takes: a service app that requires DPoP.
    use_service_app(&mut config);
    let valid = config.validate().map_err(|problems| {
        anyhow::anyhow!("demo configuration invalid: {}", problems.join("; "))
    })?;
    let app = Application::build(valid).await?;
    sim.state
        .register_client(okta_sim::portal_client(&app.base_url()));
    let edge = crate::registration::Edge::build(registration_config_for(
        sim.issuer(),
        &app.base_url(),
        SocketAddr::from(([127, 0, 0, 1], registration_port)),
    )?)
    .await?;
    let edge_url = edge.base_url().to_string();
    let edge = edge.spawn();

    println!();
    println!("  admin-portal demo");
    println!("  ─────────────────");
    println!("  Portal:          {}/", app.base_url());
    println!(
        "  Okta simulator:  {} (issuer {})",
        sim.base_url(),
        sim.issuer()
    );
    println!(
        "  Registration:    {edge_url}/register (the public edge; its own process in production)"
    );
    println!(
        "  Okta API access: service app {} (private_key_jwt, DPoP-bound tokens)",
        okta_sim::SERVICE_APP_CLIENT_ID
    );
    println!("  Database:        {}", db_path.display());
    println!(
        "  Codes, activation and recovery emails sent: {}/dev/outbox",
        sim.base_url()
    );
    println!();
    println!("  Demo accounts (password for all: {DEMO_PASSWORD})");
    for account in DEMO_ACCOUNTS {
        println!("    {:<22} {}", account.login, account.what);
    }
    println!();
    print_api_clients(&app.base_url(), sim.issuer());
    println!("  Press Ctrl-C to stop.");
    println!();

    app.run_until_stopped(shutdown_signal()).await?;
    edge.stop().await;
    sim.stop().await;
    Ok(())
}

/// `admin-portal okta-sim`: the simulator alone, as the `okta-sim` binary runs it.
pub async fn okta_sim_only(
    port: u16,
    portal_url: &str,
    knobs: okta_sim::Knobs,
) -> anyhow::Result<()> {
    okta_sim::run_standalone(
        SocketAddr::from(([127, 0, 0, 1], port)),
        portal_url,
        knobs,
        shutdown_signal(),
    )
    .await
}

/// The service API's demo clients, their secrets (demo only), the token endpoint and a curl.
fn print_api_clients(portal: &str, issuer: &str) {
    println!("  Service API ({portal}/api/docs/)");
    println!("    Token endpoint: {issuer}/v1/token (client_credentials, client_secret_basic)");
    for (id, secret, scopes) in [
        (
            okta_sim::SUPPORT_APP_CLIENT_ID,
            okta_sim::SUPPORT_APP_SECRET,
            okta_sim::SUPPORT_APP_SCOPES,
        ),
        (
            okta_sim::CUSTOMER_APP_CLIENT_ID,
            okta_sim::CUSTOMER_APP_SECRET,
            okta_sim::CUSTOMER_APP_SCOPES,
        ),
    ] {
        println!("    {id}  secret {secret}");
        println!("      scopes: {}", scopes.join(" "));
    }
    println!("    Try it:");
    println!(
        "      TOKEN=$(curl -s -u {}:{} -d grant_type=client_credentials -d scope=admin.users.read {issuer}/v1/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')",
        okta_sim::SUPPORT_APP_CLIENT_ID,
        okta_sim::SUPPORT_APP_SECRET
    );
    println!("      curl -s -H \"Authorization: Bearer $TOKEN\" '{portal}/api/v1/users?limit=5'");
    println!();
}
