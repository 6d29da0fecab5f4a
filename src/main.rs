//! The `lux` command line: raw arguments → validated settings → one command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use lux::commerce::secrets::{Provider, SecretsKey};
use lux::db::embedded::EmbeddedPostgres;
use lux::http::HttpOptions;
use lux::privacy::SuppressionTarget;
use lux::server::ServeOptions;
use mimalloc::MiMalloc;
use uuid::Uuid;

mod cli;

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
    /// 64 hex characters that encrypt webhook secrets. With the embedded cluster it is
    /// generated once and kept in the data folder.
    #[arg(long, env = "LUX_SECRETS_KEY", global = true, hide_env_values = true)]
    secrets_key: Option<String>,
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
    /// Run jobs (attribution, ...) now, for one company or all.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Create a demo company with realistic synthetic data (visits, orders, refunds, ad
    /// spend), run its jobs, then serve. Prints the company's keys, then a summary, as JSON.
    Demo(DemoArgs),
    /// Print a report (the same numbers as the API) as a table, CSV or JSON.
    Report(cli::report::ReportArgs),
    /// Import orders (exported Stripe events or WooCommerce REST API v3 orders) or ad spend
    /// (a CSV export of Google Ads, Meta Ads, or the generic layout).
    Import {
        /// stripe, woocommerce or spend.
        provider: String,
        /// Orders: a JSON array, one JSON object, or JSON lines. Spend: a CSV file.
        file: PathBuf,
        #[arg(long, value_parser = cli::args::company_id)]
        company: Uuid,
        /// Spend only: the CSV's layout; guessed from its header when absent.
        #[arg(long, value_parser = ["google", "meta", "generic"])]
        format: Option<String>,
    },
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
    /// Requests that may wait for the writers before /e answers 503 (shared out among them).
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
    /// Seconds between runs of the jobs (attribution, ...) for every company; 0 turns the
    /// scheduler off (run them with `lux jobs run`).
    #[arg(long, env = "LUX_JOBS_INTERVAL", default_value_t = 60)]
    jobs_interval: u64,
}

#[derive(Args)]
struct DemoArgs {
    /// Days of history, up to now.
    #[arg(long, default_value_t = lux::demo::DEFAULT_DAYS)]
    days: u32,
    /// Size as a multiple of the default (about 400,000 raw events); 25 gives about 10 million.
    #[arg(long, conflicts_with = "events")]
    scale: Option<f64>,
    /// Size as a number of raw events (within a few percent).
    #[arg(long)]
    events: Option<u64>,
    /// The same seed gives the same counts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The demo company's name.
    #[arg(long, default_value = "Northwind Outfitters (demo)")]
    name: String,
    /// Stop after generating and running the jobs.
    #[arg(long)]
    no_serve: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run a job now and print what it did as JSON lines. Waits if another process is
    /// running the same job for the same company.
    Run {
        /// attribution, rollups, or all (attribution first).
        job: String,
        /// Only this company (default: every company).
        #[arg(long, value_parser = cli::args::company_id)]
        company: Option<Uuid>,
        /// Redo everything, not only what changed since the last run (rollups: rebuild every
        /// day of the company).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        full: bool,
        /// Redo what concerns these local days of the company (attribution: the orders
        /// placed on them; rollups: those days), from this day ...
        #[arg(long, value_name = "YYYY-MM-DD", requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// ... to this day, included.
        #[arg(long, value_name = "YYYY-MM-DD", requires = "from")]
        to: Option<chrono::NaiveDate>,
    },
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
    /// List a company's keys (prefixes only), create one, or revoke one.
    Keys {
        #[arg(value_parser = cli::args::company_id)]
        company_id: Uuid,
        /// Create a key: write (public, for the snippet) or secret (server-side).
        #[arg(long, value_name = "KIND")]
        create: Option<String>,
        /// Revoke the key with this id.
        #[arg(long, value_name = "KEY_ID")]
        revoke: Option<Uuid>,
    },
    /// Show or change a company's attribution settings (only the options given change);
    /// prints the settings in force. The next attribution run redoes every order.
    Attribution {
        #[arg(value_parser = cli::args::company_id)]
        company_id: Uuid,
        #[command(flatten)]
        change: lux::attribution::settings::SettingsChange,
    },
    /// Show or change a company's rollup settings: what makes a session engaged, and the
    /// company's own funnels (only the options given change); prints the settings in force.
    /// The next rollups run recomputes every day.
    Rollups {
        #[arg(value_parser = cli::args::company_id)]
        company_id: Uuid,
        #[command(flatten)]
        change: lux::rollups::settings::SettingsChange,
    },
    /// Create a database login that reads this company's rollups only (for Metabase): it
    /// sees the company's rows whatever company it asks for, and never raw events.
    ReaderLogin {
        #[arg(value_parser = cli::args::company_id)]
        company_id: Uuid,
        #[arg(long)]
        login: String,
        /// At least 12 characters.
        #[arg(long, env = "LUX_READER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Store a webhook signing secret (encrypted with LUX_SECRETS_KEY).
    SetSecret {
        #[arg(value_parser = cli::args::company_id)]
        company_id: Uuid,
        /// stripe, woocommerce, sendgrid or twilio.
        #[arg(long)]
        provider: String,
        #[arg(long, hide_env_values = true)]
        secret: String,
    },
}

#[derive(Subcommand)]
enum PrivacyCommand {
    /// Stop collecting events for a person (by user id, visitor id or email) or a company.
    Suppress {
        #[arg(value_parser = cli::args::company_id)]
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

/// mimalloc rather than the system allocator: the ingest path allocates per event (JSON
/// values, strings, batch arrays), and glibc's malloc and free took about a quarter of the
/// service's CPU time under load (perf, single-event benchmark).
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

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
struct Context {
    url: String,
    embedded: bool,
    secrets_key: anyhow::Result<Option<SecretsKey>>,
}

impl Context {
    fn require_secrets_key(&self) -> anyhow::Result<SecretsKey> {
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
        return SecretsKey::parse_hex(text).map(Some);
    }
    if !embedded {
        return Ok(None);
    }
    let path = data_dir.join("secrets.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return SecretsKey::parse_hex(&text).map(Some);
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
        Command::Serve(args) => serve(args, ctx, None).await,
        Command::Migrate => {
            let owner = lux::db::connect_owner(url, 1).await?;
            lux::db::migrate(&owner).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Company(command) => company(command, ctx).await,
        Command::Privacy(command) => privacy(command, url).await,
        Command::Jobs(command) => jobs(command, url).await,
        Command::Demo(args) => demo(args, ctx).await,
        Command::Report(args) => cli::report::run(args, url).await,
        Command::Import {
            provider,
            file,
            company,
            format,
        } if provider == "spend" => import_spend(&file, company, format.as_deref(), url).await,
        Command::Import {
            provider,
            file,
            company,
            format,
        } => {
            if format.is_some() {
                anyhow::bail!("--format is for `lux import spend` only");
            }
            import(&provider, &file, company, ctx).await
        }
    }
}

/// `lux import spend`: prints what was imported as one JSON object; fails when the file is
/// refused or has no valid row.
async fn import_spend(
    file: &std::path::Path,
    company: Uuid,
    format: Option<&str>,
    url: &str,
) -> anyhow::Result<()> {
    let format = format.and_then(lux::spend::Format::parse);
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // Migrated as the owner, written as the service (row-level security applies).
    owner_pool(url).await?.close().await;
    let pool = lux::db::connect_app(url, 1)?;
    let result = lux::spend::import(&pool, company, &bytes, format).await;
    pool.close().await;
    let summary = result.with_context(|| format!("importing {}", file.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

async fn import(
    provider: &str,
    file: &std::path::Path,
    company: Uuid,
    ctx: &Context,
) -> anyhow::Result<()> {
    // Imported payloads are kept encrypted, like webhook deliveries.
    let key = ctx.require_secrets_key()?;
    let provider = match Provider::parse(provider) {
        Some(p @ (Provider::Stripe | Provider::WooCommerce)) => p,
        _ => anyhow::bail!("cannot import {provider:?}: use stripe, woocommerce or spend"),
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let owner = owner_pool(&ctx.url).await?;
    let summary = lux::commerce::import::run(&owner, &key, company, provider, &text).await?;
    owner.close().await;
    println!(
        "read {}, imported {}, already imported {}, not about orders {}, skipped {}",
        summary.read,
        summary.imported,
        summary.duplicates,
        summary.ignored,
        summary.skipped_total()
    );
    for (reason, count) in &summary.skipped {
        println!("  skipped {count}: {reason}");
    }
    Ok(())
}

/// Serves until stopped. `welcome`: a company just created for the person at the terminal
/// (`lux demo`), whose addresses are printed once the service listens.
async fn serve(
    args: ServeArgs,
    ctx: &Context,
    welcome: Option<lux::tenancy::CreatedCompany>,
) -> anyhow::Result<()> {
    let url = ctx.url.as_str();
    let first_site = match welcome {
        Some(company) => Some((company, false)),
        None if ctx.embedded => create_first_site(url).await?.map(|c| (c, true)),
        None => None,
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
        jobs_interval: (args.jobs_interval > 0).then(|| Duration::from_secs(args.jobs_interval)),
        secrets_key: match &ctx.secrets_key {
            Ok(key) => key.clone(),
            Err(e) => anyhow::bail!("{e:#}"),
        },
        clock: lux::clock::Clock::System,
    };
    if options.secrets_key.is_none() {
        tracing::warn!("LUX_SECRETS_KEY is not set: webhooks will answer 503");
    }
    let server = lux::server::start(url, options).await?;
    eprintln!("lux: listening on http://{}", server.addr);
    if let Some((site, created_here)) = first_site {
        if created_here {
            eprintln!(
                "lux: created a first company for you (keys shown once):\n{}",
                serde_json::to_string_pretty(&site)?
            );
        }
        let hint = if dev_page {
            ""
        } else {
            " (start with --dev-page)"
        };
        let today = chrono::Utc::now().date_naive();
        eprintln!(
            "lux: see the snippet working at http://{addr}/dev?key={key}{hint}\n\
             lux: reports: curl -H 'Authorization: Bearer {secret}' \
             'http://{addr}/api/v1/reports/revenue_by_channel?from={from}&to={today}'\n\
             lux: or at the terminal: lux report revenue_by_channel --company {id} --from {from} --to {today}",
            addr = server.addr,
            key = site.write_key,
            secret = site.secret_key,
            id = site.company_id,
            from = today - chrono::Days::new(29),
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

async fn company(command: CompanyCommand, ctx: &Context) -> anyhow::Result<()> {
    let owner = owner_pool(&ctx.url).await?;
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
        CompanyCommand::Keys {
            company_id,
            create,
            revoke,
        } => {
            if let Some(kind) = create {
                let kind = match kind.as_str() {
                    "write" => lux::tenancy::KeyKind::Write,
                    "secret" => lux::tenancy::KeyKind::Secret,
                    other => anyhow::bail!("--create {other:?}: use write or secret"),
                };
                let (key_id, key) = lux::tenancy::create_key(&owner, company_id, kind).await?;
                println!(
                    "{}",
                    serde_json::json!({"key_id": key_id, "kind": kind.as_str(), "key": key})
                );
            } else if let Some(key_id) = revoke {
                lux::tenancy::revoke_key(&owner, company_id, key_id).await?;
                println!("revoked {key_id}");
            } else {
                for key in lux::tenancy::list_keys(&owner, company_id).await? {
                    println!("{}", serde_json::to_string(&key)?);
                }
            }
        }
        CompanyCommand::Attribution { company_id, change } => {
            let settings = lux::attribution::settings::change(&owner, company_id, &change).await?;
            println!("{}", serde_json::to_string_pretty(&settings)?);
            eprintln!("lux: rules {}", settings.rules());
        }
        CompanyCommand::ReaderLogin {
            company_id,
            login,
            password,
        } => {
            lux::tenancy::create_reader_login(&owner, company_id, &login, &password).await?;
            println!(
                "{}",
                serde_json::json!({"company_id": company_id, "login": login, "role": "lux_reader"})
            );
        }
        CompanyCommand::Rollups { company_id, change } => {
            let settings = lux::rollups::settings::change(&owner, company_id, &change).await?;
            println!("{}", serde_json::to_string_pretty(&settings)?);
            eprintln!("lux: rollup parameters {}", settings.parameters());
        }
        CompanyCommand::SetSecret {
            company_id,
            provider,
            secret,
        } => {
            let provider = Provider::parse(&provider).ok_or_else(|| {
                anyhow::anyhow!(
                    "--provider {provider:?} is not one of stripe, woocommerce, sendgrid, twilio"
                )
            })?;
            let key = ctx.require_secrets_key()?;
            lux::commerce::secrets::set_secret(&owner, &key, company_id, provider, &secret).await?;
            println!("{} secret stored for {company_id}", provider.as_str());
        }
    }
    owner.close().await;
    Ok(())
}

async fn demo(args: DemoArgs, ctx: &Context) -> anyhow::Result<()> {
    let events = match (args.scale, args.events) {
        (Some(scale), _) => lux::demo::DemoSpec::events_for_scale(scale)?,
        (None, Some(events)) => events,
        (None, None) => lux::demo::DEFAULT_EVENTS,
    };
    let spec = lux::demo::DemoSpec::new(args.days, events, args.seed)?;
    let owner = owner_pool(&ctx.url).await?;
    let new = lux::tenancy::NewCompany::parse(&args.name, "America/New_York", "USD", vec![])?;
    let company = lux::tenancy::create_company(&owner, new).await?;
    println!("{}", serde_json::to_string_pretty(&company)?);
    eprintln!(
        "lux: generating about {events} events over {} days for company {} ...",
        spec.days, company.company_id
    );
    let summary = lux::demo::generate(&owner, company.company_id, &spec).await;
    owner.close().await;
    let summary = summary?;
    eprintln!(
        "lux: {} events, {} sessions, {} orders in {:.1} s ({:.0} events/s); running the jobs ...",
        summary.events,
        summary.sessions,
        summary.orders,
        summary.seconds,
        summary.events_per_second
    );
    let pool = lux::db::connect_app(&ctx.url, 4)?;
    let jobs = lux::demo::run_jobs(&pool, company.company_id).await;
    pool.close().await;
    let jobs = jobs?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "demo": summary, "jobs": jobs }))?
    );
    if args.no_serve {
        return Ok(());
    }
    serve(args.serve, ctx, Some(company)).await
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

async fn jobs(command: JobsCommand, url: &str) -> anyhow::Result<()> {
    let JobsCommand::Run {
        job,
        company,
        full,
        from,
        to,
    } = command;
    let jobs: Vec<lux::jobs::Job> =
        match job.as_str() {
            "all" => lux::jobs::Job::ALL.to_vec(),
            name => vec![lux::jobs::Job::parse(name).ok_or_else(|| {
                anyhow::anyhow!("no job {name:?}: use attribution, rollups or all")
            })?],
        };
    // Migrated as the owner, run as the service (row-level security applies).
    owner_pool(url).await?.close().await;
    let pool = lux::db::connect_app(url, 4)?;
    let companies = match company {
        Some(id) => {
            lux::tenancy::require_company(&lux::db::connect_owner(url, 1).await?, id).await?;
            vec![id]
        }
        None => lux::jobs::company_ids(&pool).await?,
    };
    let mode = match (from, to) {
        (Some(from), Some(to)) if from <= to => lux::jobs::Mode::Days { from, to },
        (Some(from), Some(to)) => anyhow::bail!("--from {from} is after --to {to}"),
        _ if full => lux::jobs::Mode::Full,
        _ => lux::jobs::Mode::Incremental,
    };
    // One company's failure (bad settings, say) does not stop the others; it is reported and
    // the command fails at the end.
    let mut failed = 0;
    for company_id in companies {
        for &job in &jobs {
            match lux::jobs::run(&pool, company_id, job, mode, lux::jobs::WhenBusy::Wait).await {
                Ok(Some(report)) => println!("{}", serde_json::to_string(&report)?),
                Ok(None) => {}
                Err(error) => {
                    eprintln!("lux: {} for company {company_id}: {error:#}", job.as_str());
                    failed += 1;
                }
            }
        }
    }
    pool.close().await;
    if failed > 0 {
        anyhow::bail!("{failed} job run(s) failed (see above; recorded in job_runs)");
    }
    Ok(())
}
