//! Database connection: SQLite (embedded default) or PostgreSQL (several instances).
//! Sessions and the audit trail live in the same database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (default) or `postgres://user@host/db`.
    #[serde(default = "default_db_url")]
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_db_url(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_db_url() -> String {
    "sqlite://admin-portal.db".into()
}
fn default_max_connections() -> u32 {
    10
}

impl DatabaseConfig {
    /// What is wrong with this section, in words for `check-config`.
    pub fn problems(&self) -> Vec<String> {
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if known.iter().any(|k| self.url.starts_with(k)) {
            Vec::new()
        } else {
            vec!["database.url must start with sqlite:// or postgres://".to_string()]
        }
    }
}

#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Connects and applies migrations.
    pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Database> {
        let db = if config.url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(&config.url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(config.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            Database::Sqlite(pool)
        } else {
            let options = PgConnectOptions::from_str(&config.url)?;
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            Database::Postgres(pool)
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Database::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Database::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> bool {
        match self {
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}
