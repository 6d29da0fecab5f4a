//! The `lux` command line: raw arguments → validated settings → one command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lux::db::embedded::EmbeddedPostgres;
use lux::http::HttpOptions;
use lux::privacy::SuppressionTarget;
use lux::server::ServeOptions;
use uuid::Uuid;

/// LUX Analytics: first-party marketing analytics on PostgreSQL.
#[derive(Parser)]
#[command(name = "lux", version)]
struct Cli {
    /// PostgreSQL URL of the owner role. When unset, lux runs its own private cluster under
    /// --data-dir from the machine's PostgreSQL binaries.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Folder for the embedded PostgreSQL cluster (used only without DATABASE_URL).
    #[arg(long, env = "LUX_DATA_DIR", default_value = ".lux", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve ingestion (/e), the snippet (/lux.js) and health checks.
    Serve(ServeArgs),
    /// Apply database migrations.
    Migrate,
    /// Manage companies (tenants) and their keys.
    #[command(subcommand)]
    Company(CompanyCommand),
    /// Privacy: stop collecting for a person or a company.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LUX_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Trust X-Forwarded-For for the client address (only behind your own proxy).
    #[arg(long, env = "LUX_TRUST_PROXY")]
    trust_proxy: bool,
    /// Serve /dev, a page that shows the snippet working.
    #[arg(long, env = "LUX_DEV_PAGE")]
    dev_page: bool,
    /// Batch writer tasks.
    #[arg(long, env = "LUX_WRITERS", default_value_t = 2)]
    writers: usize,
    /// Requests that may wait for the writer before /e answers 503.
    #[arg(long, env = "LUX_QUEUE_CAPACITY", default_value_t = 4096)]
    queue_capacity: usize,
    /// Most events written in one transaction.
    #[arg(long, env = "LUX_MAX_BATCH_ROWS", default_value_t = 2000)]
    max_batch_rows: usize,
    /// Seconds a key and its company settings are cached.
    #[arg(long, env = "LUX_KEY_CACHE_SECONDS", default_value_t = 30)]
    key_cache_seconds: u64,
    /// Database connections of the service.
    #[arg(long, env = "LUX_DB_POOL", default_value_t = 16)]
    db_pool: u32,
}

#[derive(Subcommand)]
enum CompanyCommand {
    /// Create a company; prints its id, write key and secret key (shown once) as JSON.
    Create {
        #[arg(long)]
        name: String,
        /// IANA time zone: the company's days for reports.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// ISO 4217 reporting currency.
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Origin allowed to send browser events (repeatable). None means any origin.
        #[arg(long = "origin")]
        origins: Vec<String>,
    },
    /// List companies as JSON lines.
    List,
}

#[derive(Subcommand)]
enum PrivacyCommand {
    /// Stop collecting events for a person (by user id, visitor id or email) or a company.
    Suppress {
        company_id: Uuid,
        #[arg(long, group = "target")]
        user_id: Option<String>,
        #[arg(long, group = "target")]
        visitor_id: Option<Uuid>,
        #[arg(long, group = "target")]
        email: Option<String>,
        /// Turn tracking off for the whole company.
        #[arg(long, group = "target")]
        company: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve(_)));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lux: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lux: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// JSON logs to stderr (stdout is for command output). `RUST_LOG` overrides the level.
fn init_logging(serving: bool) {
    // sqlx reports "relation already exists, skipping" notices at info: noise.
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The database to use: DATABASE_URL, or the embedded cluster (started here, stopped when
/// the command ends).
struct Database {
    url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    async fn open(cli_url: Option<String>, data_dir: &std::path::Path) -> anyhow::Result<Self> {
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

    fn close(self) {
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let db = Database::open(cli.database_url, &cli.data_dir).await?;
    let result = run_command(cli.command, &db.url, db.embedded.is_some()).await;
    db.close();
    result
}

async fn run_command(command: Command, url: &str, embedded: bool) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args, url, embedded).await,
        Command::Migrate => {
            let owner = lux::db::connect_owner(url, 1).await?;
            lux::db::migrate(&owner).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Company(command) => company(command, url).await,
        Command::Privacy(command) => privacy(command, url).await,
    }
}

async fn serve(args: ServeArgs, url: &str, embedded: bool) -> anyhow::Result<()> {
    let first_site = if embedded {
        create_first_site(url).await?
    } else {
        None
    };
    let dev_page = args.dev_page;
    let options = ServeOptions {
        bind: args.bind,
        http: HttpOptions {
            trust_proxy: args.trust_proxy,
            dev_page: args.dev_page,
        },
        writer: lux::analytics::writer::WriterConfig {
            writers: args.writers,
            queue_capacity: args.queue_capacity,
            max_batch_rows: args.max_batch_rows,
        },
        key_cache_ttl: Duration::from_secs(args.key_cache_seconds),
        pool_size: args.db_pool,
    };
    let server = lux::server::start(url, options).await?;
    eprintln!("lux: listening on http://{}", server.addr);
    if let Some(site) = first_site {
        eprintln!(
            "lux: created a first company for you (keys shown once):\n{}",
            serde_json::to_string_pretty(&site)?
        );
        let hint = if dev_page {
            ""
        } else {
            " (start with --dev-page)"
        };
        eprintln!(
            "lux: see the snippet working at http://{}/dev?key={}{hint}",
            server.addr, site.write_key
        );
    }
    server.wait().await
}

/// On the embedded cluster's first run there is no company yet: make one, so a new user can
/// try the snippet at once. Never done against a DATABASE_URL server.
async fn create_first_site(url: &str) -> anyhow::Result<Option<lux::tenancy::CreatedCompany>> {
    let owner = owner_pool(url).await?;
    let created = if lux::tenancy::list_companies(&owner).await?.is_empty() {
        let new = lux::tenancy::NewCompany::parse("My first site", "UTC", "USD", vec![])?;
        Some(lux::tenancy::create_company(&owner, new).await?)
    } else {
        None
    };
    owner.close().await;
    Ok(created)
}

async fn owner_pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    let owner = lux::db::connect_owner(url, 2).await?;
    lux::db::migrate(&owner).await?;
    Ok(owner)
}

async fn company(command: CompanyCommand, url: &str) -> anyhow::Result<()> {
    let owner = owner_pool(url).await?;
    match command {
        CompanyCommand::Create {
            name,
            timezone,
            currency,
            origins,
        } => {
            let new = lux::tenancy::NewCompany::parse(&name, &timezone, &currency, origins)?;
            let created = lux::tenancy::create_company(&owner, new).await?;
            println!("{}", serde_json::to_string_pretty(&created)?);
        }
        CompanyCommand::List => {
            for company in lux::tenancy::list_companies(&owner).await? {
                println!("{}", serde_json::to_string(&company)?);
            }
        }
    }
    owner.close().await;
    Ok(())
}

async fn privacy(command: PrivacyCommand, url: &str) -> anyhow::Result<()> {
    let owner = owner_pool(url).await?;
    match command {
        PrivacyCommand::Suppress {
            company_id,
            user_id,
            visitor_id,
            email,
            company,
        } => {
            let target = match (user_id, visitor_id, email, company) {
                (Some(u), None, None, false) => SuppressionTarget::User(u),
                (None, Some(v), None, false) => SuppressionTarget::Visitor(v),
                (None, None, Some(e), false) => SuppressionTarget::Email(e),
                (None, None, None, true) => SuppressionTarget::Company,
                _ => anyhow::bail!(
                    "say who to suppress: one of --user-id, --visitor-id, --email or --company"
                ),
            };
            lux::privacy::suppress(&owner, company_id, &target).await?;
            println!("suppressed");
        }
    }
    owner.close().await;
    Ok(())
}
