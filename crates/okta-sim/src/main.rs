//! `okta-sim`: the Okta simulator alone, to point a portal (or any OIDC client) at it.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "okta-sim", version, about = "A local Okta for demos and tests")]
struct Cli {
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Register the portal client for a portal at this URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    portal_url: String,
    #[command(flatten)]
    knobs: okta_sim::Knobs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let addr = SocketAddr::from(([127, 0, 0, 1], cli.port));
    match okta_sim::run_standalone(
        addr,
        &cli.portal_url,
        cli.knobs,
        okta_sim::shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
