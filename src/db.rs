//! Database connection: SQLite (embedded default) or PostgreSQL (several instances).
//! Sessions and the audit trail live in the same database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::config::DatabaseConfig;

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
