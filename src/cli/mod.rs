//! The `lux` command line: raw arguments → validated settings → one command. `main.rs` parses
//! and sets up logging and the runtime; each command group has its file here. Library code
//! never sees clap's strings: flags arrive as typed values (`ValueEnum`s, UUIDs, days).

pub mod alerts;
pub mod args;
pub mod company;
pub mod demo;
pub mod experiments;
pub mod import;
pub mod jobs;
pub mod privacy;
pub mod report;
pub mod serve;
pub mod sns;
pub mod user;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lux::commerce::secrets::SecretsKey;
use lux::db::embedded::EmbeddedPostgres;

/// LUX Analytics: first-party marketing analytics on PostgreSQL.
#[derive(Parser)]
#[command(name = "lux", version)]
pub struct Cli {
    /// PostgreSQL URL of the owner role. When unset, lux runs its own private cluster under
    /// --data-dir from the machine's PostgreSQL binaries.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Folder for the embedded PostgreSQL cluster (used only without DATABASE_URL).
    #[arg(long, env = "LUX_DATA_DIR", default_value = ".lux", global = true)]
    pub data_dir: PathBuf,
    /// 64 hex characters that encrypt webhook secrets. With the embedded cluster it is
    /// generated once and kept in the data folder.
    #[arg(long, env = "LUX_SECRETS_KEY", global = true, hide_env_values = true)]
    pub secrets_key: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve ingestion (/e), the snippet (/lux.js) and health checks.
    Serve(serve::ServeArgs),
    /// Apply database migrations.
    Migrate,
    /// Manage companies (tenants) and their keys.
    #[command(subcommand)]
    Company(company::CompanyCommand),
    /// Privacy: suppression, requests, export, erasure and retention (docs/privacy.md).
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
    /// Run jobs (attribution, ...) now, for one company or all.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Create a demo company with realistic synthetic data (visits, orders, refunds, ad
    /// spend), run its jobs, then serve. Prints the company's keys, then a summary, as JSON.
    Demo(demo::DemoArgs),
    /// Print a report (the same numbers as the API) as a table, CSV or JSON.
    Report(report::ReportArgs),
    /// Import orders (exported Stripe events or WooCommerce REST API v3 orders), ad spend
    /// (a CSV export of Google Ads, Meta Ads, or the generic layout) or email and SMS sends
    /// (a CSV).
    Import(import::ImportArgs),
    /// Experiments: register, conclude and list a company's A/B tests.
    #[command(subcommand)]
    Experiments(experiments::ExperimentsCommand),
    /// Dashboard users (`/app`): create one, grant it companies.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Amazon SNS (SES webhooks): pin a signing certificate for offline verification.
    #[command(subcommand)]
    Sns(sns::SnsCommand),
    /// Alerts: configure recipients and rules, evaluate a day now, send a test message.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
}

impl Command {
    /// The service logs at info; one-shot commands (and the demo's generation) only warn.
    pub fn serves(&self) -> bool {
        matches!(self, Command::Serve(_))
    }
}

/// The database to use: DATABASE_URL, or the embedded cluster (started here, stopped when
/// the command ends).
pub struct Database {
    url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    pub async fn open(cli_url: Option<String>, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        if let Some(url) = cli_url.filter(|u| !u.trim().is_empty()) {
            return Ok(Database {
                url,
                embedded: None,
            });
        }
        let dir = data_dir.to_path_buf();
        let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir))
            .await
            .context("starting the embedded PostgreSQL")??;
        eprintln!(
            "lux: no DATABASE_URL; using the embedded PostgreSQL in {} ({})",
            data_dir.display(),
            cluster.database_url()
        );
        create_database_if_missing(&cluster).await?;
        Ok(Database {
            url: cluster.database_url(),
            embedded: Some(cluster),
        })
    }

    pub fn close(self) {
        if let Some(cluster) = self.embedded {
            cluster.stop();
        }
    }
}

async fn create_database_if_missing(cluster: &EmbeddedPostgres) -> anyhow::Result<()> {
    let server = lux::db::connect_owner(&cluster.server_url(), 1).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'lux')")
            .fetch_one(&server)
            .await?;
    if !exists {
        sqlx::query("CREATE DATABASE lux").execute(&server).await?;
    }
    server.close().await;
    Ok(())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let db = Database::open(cli.database_url, &cli.data_dir).await?;
    let secrets_key = secrets_key(
        cli.secrets_key.as_deref(),
        &cli.data_dir,
        db.embedded.is_some(),
    );
    let context = Context {
        url: db.url.clone(),
        embedded: db.embedded.is_some(),
        secrets_key,
    };
    let result = run_command(cli.command, &context).await;
    db.close();
    result
}

/// What every command may need.
pub struct Context {
    pub url: String,
    pub embedded: bool,
    pub secrets_key: anyhow::Result<Option<SecretsKey>>,
}

impl Context {
    pub fn require_secrets_key(&self) -> anyhow::Result<SecretsKey> {
        match &self.secrets_key {
            Ok(Some(key)) => Ok(key.clone()),
            Ok(None) => anyhow::bail!(
                "LUX_SECRETS_KEY is not set: webhook secrets are encrypted with it \
                 (64 hex characters, e.g. `openssl rand -hex 32`; every node needs the same)"
            ),
            Err(e) => anyhow::bail!("{e:#}"),
        }
    }
}

/// LUX_SECRETS_KEY, or with the embedded cluster a key generated once into the data folder.
fn secrets_key(
    given: Option<&str>,
    data_dir: &std::path::Path,
    embedded: bool,
) -> anyhow::Result<Option<SecretsKey>> {
    if let Some(text) = given.filter(|t| !t.trim().is_empty()) {
        return Ok(Some(SecretsKey::parse_hex(text)?));
    }
    if !embedded {
        return Ok(None);
    }
    let path = data_dir.join("secrets.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(Some(SecretsKey::parse_hex(&text)?));
    }
    let key = SecretsKey::generate();
    std::fs::write(&path, key.to_hex()).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(Some(key))
}

async fn run_command(command: Command, ctx: &Context) -> anyhow::Result<()> {
    let url = ctx.url.as_str();
    match command {
        Command::Serve(args) => serve::serve(args, ctx, None, None).await,
        Command::Migrate => {
            let owner = lux::db::connect_owner(url, 1).await?;
            lux::db::migrate(&owner).await?;
            owner.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Company(command) => company::run(command, ctx).await,
        Command::Privacy(command) => privacy::run(command, url).await,
        Command::Jobs(command) => jobs::run(command, url).await,
        Command::Demo(args) => demo::run(args, ctx).await,
        Command::Report(args) => report::run(args, url).await,
        Command::Import(args) => import::run(args, ctx).await,
        Command::Sns(command) => sns::run(command, url).await,
        Command::Experiments(command) => experiments::run(command, url).await,
        Command::Alerts(command) => alerts::run(command, url).await,
        Command::User(command) => user::run(command, ctx).await,
    }
}

/// The owner's pool, with the migrations applied.
pub async fn owner_pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    let owner = lux::db::connect_owner(url, 2).await?;
    lux::db::migrate(&owner).await?;
    Ok(owner)
}
