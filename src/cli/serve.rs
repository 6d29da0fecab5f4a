//! `lux serve`: the HTTP service and its job scheduler.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use lux::analytics::IngestOptions;
use lux::server::ServeOptions;

use super::{Context, owner_pool};

#[derive(Args)]
pub struct ServeArgs {
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
    /// The service's public base URL (e.g. https://lux.example.com): Twilio signs it, and
    /// short links (`/r/{code}`) are built on it.
    #[arg(long, env = "LUX_PUBLIC_URL")]
    public_url: Option<url::Url>,
    /// A streaming replica of the database for the reports and dashboards (jobs and
    /// ingestion stay on the primary).
    #[arg(long, env = "LUX_READ_DATABASE_URL")]
    read_database_url: Option<String>,
    /// Seconds the replica may be behind before reads go back to the primary.
    #[arg(long, env = "LUX_READ_MAX_LAG_SECONDS", default_value_t = 30)]
    read_max_lag_seconds: u64,
    #[command(flatten)]
    alerts: super::alerts::DeliveryArgs,
}

/// Serves until stopped. `welcome`: a company just created for the person at the terminal
/// (`lux demo`), whose addresses are printed once the service listens.
pub async fn serve(
    args: ServeArgs,
    ctx: &Context,
    welcome: Option<lux::tenancy::CreatedCompany>,
    login: Option<(String, String)>,
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
        ingest: IngestOptions {
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
        alerts: Some(args.alerts.delivery()?),
        public_url: args.public_url.clone(),
        messages: lux::messages::MessagesOptions {
            public_url: args.public_url,
        },
        read_replica: args.read_database_url.map(|url| lux::server::ReadReplica {
            url,
            max_lag: Duration::from_secs(args.read_max_lag_seconds),
        }),
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
        if let Some((email, password)) = &login {
            eprintln!(
                "lux: dashboards: http://{addr}/app/{id}/executive\n\
                 lux: sign in as {email} with password {password}",
                addr = server.addr,
                id = site.company_id,
            );
        }
    }
    Ok(server.wait().await?)
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
