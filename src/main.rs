//! The command line. All behaviour lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use admin_portal::config::{Config, LogFormat};
#[cfg(feature = "demo")]
use admin_portal::demo;
use admin_portal::startup::{Application, shutdown_signal};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "admin-portal",
    version,
    about = "Internal admin portal in front of Okta"
)]
struct Cli {
    /// How log lines are written: text, or one JSON object per line (default: `log.format`
    /// of the configuration `serve` reads, else text).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portal with a configuration file (plus ADMIN_PORTAL__… overrides).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the Okta simulator, the portal and SQLite together, seeded, for a try-out.
    #[cfg(feature = "demo")]
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Port of the Okta simulator (default: the portal's port + 1).
        #[arg(long)]
        sim_port: Option<u16>,
        /// Port of the registration edge (default: the portal's port + 2).
        #[arg(long)]
        registration_port: Option<u16>,
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
    },
    /// Run the public registration edge (its own process; no Okta credential, no database).
    Registration {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration (the portal's, or an edge's with `[registration]`) and print
    /// every problem (exit 1 if any).
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The audit trail: verify the hash chain, prune old records, seed benchmark data.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run only the Okta simulator, to point a portal at it like at a real org.
    #[cfg(feature = "demo")]
    OktaSim {
        #[arg(long, default_value_t = 8081)]
        port: u16,
        /// Register the portal client for a portal at this URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        portal_url: String,
        #[command(flatten)]
        knobs: okta_sim::Knobs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exit 0 when intact, 1 when broken (the first broken record is printed).
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Delete records older than a day, behind a checkpoint that keeps the chain verifiable.
    Prune {
        #[command(flatten)]
        db: DbArgs,
        /// First day to keep, e.g. 2026-01-31 (default: today minus audit.retention_days).
        #[arg(long)]
        before: Option<String>,
    },
    /// Append synthetic records (valid chain) for benchmarks.
    SeedBench {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
    },
}

#[derive(clap::Args)]
struct DbArgs {
    /// Read the database URL from this configuration file.
    #[arg(long, short, conflicts_with = "database")]
    config: Option<PathBuf>,
    /// The database URL (sqlite://… or postgres://…).
    #[arg(long)]
    database: Option<String>,
}

async fn audit_store(args: &DbArgs) -> anyhow::Result<admin_portal::audit::AuditStore> {
    let url = match (&args.database, &args.config) {
        (Some(url), _) => url.clone(),
        (None, config) => {
            let valid = load(config.as_deref())
                .map_err(|problems| anyhow::anyhow!("configuration: {}", problems.join("; ")))?;
            valid.config.database.url
        }
    };
    let db = admin_portal::db::Database::connect(&admin_portal::config::DatabaseConfig {
        url,
        max_connections: 4,
    })
    .await?;
    Ok(admin_portal::audit::AuditStore::new(db))
}

async fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { db } => {
            let store = audit_store(&db).await?;
            let v = store.verify().await?;
            match v.broken {
                None => {
                    println!(
                        "Audit trail intact: {} records checked, {} pruned behind checkpoints.",
                        v.checked, v.pruned
                    );
                    let unfinished = store.unfinished_count().await?;
                    if unfinished > 0 {
                        println!(
                            "{unfinished} change(s) sent to Okta are not recorded yet: in progress, \
                             or left by a portal that stopped (recorded as `unknown` by the next \
                             portal to run)."
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    println!("Audit trail BROKEN at record {}: {}.", b.id, b.reason);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Prune { db, before } => {
            let before = match before {
                Some(day) => day,
                None => {
                    let valid = load(db.config.as_deref()).map_err(|problems| {
                        anyhow::anyhow!("configuration: {}", problems.join("; "))
                    })?;
                    let days = valid.config.audit.retention_days.ok_or_else(|| {
                        anyhow::anyhow!(
                            "give --before DATE or set audit.retention_days in the configuration"
                        )
                    })?;
                    (time::OffsetDateTime::now_utc().date() - time::Duration::days(days as i64))
                        .to_string()
                }
            };
            let store = audit_store(&db).await?;
            let removed = store.prune(&before).await?;
            println!(
                "Pruned {removed} records older than {before}; a checkpoint keeps the chain verifiable."
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::SeedBench { db, count } => {
            let store = audit_store(&db).await?;
            let started = std::time::Instant::now();
            let written = store.seed_bench(count).await?;
            println!(
                "Seeded {written} records in {:.1}s.",
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The flag, else the format the configuration of `serve` names, else text.
fn init_tracing(cli: &Cli) {
    let format = match (cli.log_format, &cli.command) {
        (Some(format), _) => format,
        (None, Command::Serve { config }) => Config::load(config.as_deref())
            .map(|c| c.log.format)
            .unwrap_or_default(),
        (None, _) => LogFormat::Text,
    };
    admin_portal::startup::init_tracing(format);
}

fn load(config: Option<&std::path::Path>) -> Result<admin_portal::ValidConfig, Vec<String>> {
    Config::load(config)?.validate()
}

/// mimalloc instead of the system allocator (see Cargo.toml); the benchmarks use the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let result = match cli.command {
        Command::Serve { config } => match load(config.as_deref()) {
            Ok(valid) => serve(valid).await,
            Err(problems) => return print_problems(&problems),
        },
        #[cfg(feature = "demo")]
        Command::Demo {
            port,
            sim_port,
            registration_port,
            data_dir,
        } => {
            let sim_port = sim_port.unwrap_or(port.saturating_add(1));
            let edge_port = registration_port.unwrap_or(port.saturating_add(2));
            demo::run(port, sim_port, edge_port, &data_dir).await
        }
        Command::Registration { config } => {
            admin_portal::registration::run(config.as_deref()).await
        }
        Command::CheckConfig { config }
            if admin_portal::registration::config::is_registration_file(config.as_deref()) =>
        {
            return check_registration(config.as_deref());
        }
        Command::CheckConfig { config } => {
            return match load(config.as_deref()) {
                Ok(valid) => {
                    println!("Configuration is valid.");
                    for (key, value) in valid.config.redacted_summary() {
                        println!("  {key:<34} {value}");
                    }
                    ExitCode::SUCCESS
                }
                Err(problems) => print_problems(&problems),
            };
        }
        #[cfg(feature = "demo")]
        Command::OktaSim {
            port,
            portal_url,
            knobs,
        } => demo::okta_sim_only(port, &portal_url, knobs).await,
        Command::Audit { command } => {
            return match audit(command).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `check-config` on an edge's file: forbidden credentials and every other problem.
fn check_registration(config: Option<&std::path::Path>) -> ExitCode {
    match admin_portal::registration::RegistrationConfig::load(config) {
        Ok(valid) => {
            println!("Registration edge configuration is valid.");
            for (key, value) in valid.redacted_summary() {
                println!("  {key:<34} {value}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => print_problems(&problems),
    }
}

fn print_problems(problems: &[String]) -> ExitCode {
    eprintln!("The configuration has {} problem(s):", problems.len());
    for p in problems {
        eprintln!("  - {p}");
    }
    ExitCode::FAILURE
}

async fn serve(valid: admin_portal::ValidConfig) -> anyhow::Result<()> {
    let app = Application::build(valid).await?;
    tracing::info!(url = %app.base_url(), backend = app.state.db.backend(), "admin-portal listening");
    app.run_until_stopped(shutdown_signal()).await
}
