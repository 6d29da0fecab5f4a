//! `lux import`: orders (Stripe, WooCommerce), ad spend, message sends and creatives from files.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lux::commerce::secrets::Provider;

use super::{Context, owner_pool};

#[derive(Args)]
pub struct ImportArgs {
    pub kind: ImportKind,
    /// Orders: a JSON array, one JSON object, or JSON lines. Spend, sends, creatives: a CSV file.
    pub file: PathBuf,
    #[arg(long, value_parser = super::args::company_id)]
    pub company: lux::ids::CompanyId,
    /// Spend only: the CSV's layout; guessed from its header when absent.
    #[arg(long, value_enum)]
    pub format: Option<lux::spend::Format>,
}

/// What a file holds.
#[derive(Clone, Copy, ValueEnum)]
pub enum ImportKind {
    /// Exported Stripe events.
    Stripe,
    /// WooCommerce REST API v3 orders.
    #[value(name = "woocommerce")]
    WooCommerce,
    /// Ad spend: a CSV export of Google Ads, Meta Ads, or the generic layout.
    Spend,
    /// Email and SMS sends: a CSV with the header
    /// `message_id,channel,provider,provider_message_id,campaign,recipient,sent_at`.
    Sends,
    /// The creative catalog: a CSV with the header
    /// `creative_id,name,platform,campaign,concept,angle,format,launched_on`.
    Creatives,
}

pub async fn run(args: ImportArgs, ctx: &Context) -> anyhow::Result<()> {
    let provider = match args.kind {
        ImportKind::Spend => {
            return import_spend(&args.file, args.company, args.format, &ctx.url).await;
        }
        ImportKind::Sends if args.format.is_none() => {
            return import_sends(&args.file, args.company, ctx).await;
        }
        ImportKind::Creatives if args.format.is_none() => {
            return import_creatives(&args.file, args.company, &ctx.url).await;
        }
        ImportKind::Sends | ImportKind::Creatives => {
            anyhow::bail!("--format is for `lux import spend` only")
        }
        ImportKind::Stripe => Provider::Stripe,
        ImportKind::WooCommerce => Provider::WooCommerce,
    };
    if args.format.is_some() {
        anyhow::bail!("--format is for `lux import spend` only");
    }
    import_orders(provider, &args.file, args.company, ctx).await
}

/// `lux import spend`: prints what was imported as one JSON object; fails when the file is
/// refused or has no valid row.
async fn import_spend(
    file: &Path,
    company: lux::ids::CompanyId,
    format: Option<lux::spend::Format>,
    url: &str,
) -> anyhow::Result<()> {
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

/// `lux import creatives`: prints the summary as one JSON object; fails when the file is
/// refused or has no valid line.
async fn import_creatives(
    file: &Path,
    company: lux::ids::CompanyId,
    url: &str,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // Migrated as the owner, written as the service (row-level security applies).
    owner_pool(url).await?.close().await;
    let pool = lux::db::connect_app(url, 1)?;
    let result = lux::creatives::catalog::import(&pool, company.uuid(), &text).await;
    pool.close().await;
    let summary = result.with_context(|| format!("importing {}", file.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.stored + summary.updated + summary.unchanged == 0 {
        anyhow::bail!(
            "nothing imported: none of the {} data lines is a valid creative (reasons above)",
            summary.lines
        );
    }
    Ok(())
}

/// `lux import stripe|woocommerce`: a line of counts, then one per reason lines were skipped.
async fn import_orders(
    provider: Provider,
    file: &Path,
    company: lux::ids::CompanyId,
    ctx: &Context,
) -> anyhow::Result<()> {
    // Imported payloads are kept encrypted, like webhook deliveries.
    let key = ctx.require_secrets_key()?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let owner = owner_pool(&ctx.url).await?;
    let summary = lux::commerce::import::run(
        &owner,
        &key,
        company,
        provider,
        &text,
        &lux::clock::Clock::System,
    )
    .await?;
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

/// Lines between two progress lines on stderr when it is not a terminal (a log file).
const PROGRESS_EVERY: u64 = 100_000;

/// `lux import sends`: progress on stderr while it runs, then the summary as one JSON object
/// on stdout; fails when the file is refused or none of its lines is a valid send.
async fn import_sends(
    file: &Path,
    company: lux::ids::CompanyId,
    ctx: &Context,
) -> anyhow::Result<()> {
    let reader = std::fs::File::open(file)
        .map(std::io::BufReader::new)
        .with_context(|| format!("reading {}", file.display()))?;
    // Migrated as the owner, written as the service (row-level security applies).
    owner_pool(&ctx.url).await?.close().await;
    let pool = lux::db::connect_app(&ctx.url, 2)?;
    let terminal = std::io::stderr().is_terminal();
    let mut next_line = PROGRESS_EVERY;
    let mut show = |p: &lux::messages::sends::import::Progress| {
        if terminal {
            eprint!(
                "\rread {}  stored {}  updated {}  unchanged {}  skipped {}",
                p.lines, p.stored, p.updated, p.unchanged, p.skipped
            );
            let _ = std::io::stderr().flush();
        } else if p.lines >= next_line {
            eprintln!(
                "lux: read {} lines (stored {}, updated {}, unchanged {}, skipped {})",
                p.lines, p.stored, p.updated, p.unchanged, p.skipped
            );
            next_line = (p.lines / PROGRESS_EVERY + 1) * PROGRESS_EVERY;
        }
    };
    let now = chrono::Utc::now();
    let result =
        lux::messages::sends::import::run(&pool, company.uuid(), reader, now, &mut show).await;
    if terminal {
        eprintln!();
    }
    pool.close().await;
    let summary = result.with_context(|| format!("importing {}", file.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.stored + summary.updated + summary.unchanged + summary.suppressed == 0 {
        anyhow::bail!(
            "nothing imported: none of the {} data lines is a valid send (reasons above)",
            summary.lines
        );
    }
    Ok(())
}
