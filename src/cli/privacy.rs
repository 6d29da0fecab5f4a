//! `lux privacy`: stop collecting for a person or a company; file and list requests; export
//! and erase a person (docs/privacy.md).

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use lux::ids::CompanyId;
use lux::privacy::SuppressionTarget;
use lux::privacy::requests::{RequestKind, Subject};
use uuid::Uuid;

use super::owner_pool;

/// Who: exactly one key of the person in the identity graph.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    user_id: Option<String>,
    #[arg(long)]
    visitor_id: Option<Uuid>,
}

/// The kinds of request a person may file.
#[derive(Clone, Copy, ValueEnum)]
pub enum KindChoice {
    Access,
    Deletion,
    OptOut,
}

#[derive(Subcommand)]
pub enum PrivacyCommand {
    /// Stop collecting events for a person (by user id, visitor id or email) or a company.
    Suppress {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
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
    /// Set how many months the company's raw events are kept (default 25).
    Retention {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=240))]
        months: i32,
    },
    /// List the company's privacy requests with their deadlines, as JSON lines.
    Requests {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
    },
    /// File a request received outside the API (by mail, by phone). Prints it as JSON.
    Request {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
        #[arg(long, value_enum)]
        kind: KindChoice,
        #[command(flatten)]
        who: Who,
    },
    /// Print (or write to --out) everything linked to a person, as one JSON document.
    Export {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
        #[command(flatten)]
        who: Who,
        /// Write the document to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Erase a person (raw events, sessions, identity links, message sends and events; orders
    /// stay unlinked), recompute the days concerned, and print what was removed as JSON.
    Erase {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
        #[command(flatten)]
        who: Who,
        /// The deletion request this answers (one is filed now when not given).
        #[arg(long)]
        request: Option<Uuid>,
    },
}

pub async fn run(command: PrivacyCommand, url: &str) -> anyhow::Result<()> {
    let owner = owner_pool(url).await?;
    let result = run_with(command, url, &owner).await;
    owner.close().await;
    result
}

async fn run_with(command: PrivacyCommand, url: &str, owner: &sqlx::PgPool) -> anyhow::Result<()> {
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
            lux::privacy::suppress(owner, company_id, &target).await?;
            println!("suppressed");
        }
        PrivacyCommand::Retention { company_id, months } => {
            lux::tenancy::require_company(owner, company_id).await?;
            sqlx::query(
                "UPDATE companies SET raw_event_retention_months = $2 WHERE company_id = $1",
            )
            .bind(company_id)
            .bind(months)
            .execute(owner)
            .await?;
            println!(
                "{}",
                serde_json::json!({"company_id": company_id.uuid(), "raw_event_retention_months": months})
            );
        }
        PrivacyCommand::Requests { company_id } => {
            lux::tenancy::require_company(owner, company_id).await?;
            let mut tx = lux::db::begin_for_company(owner, company_id.uuid()).await?;
            let today = chrono::Utc::now().date_naive();
            let listed = lux::privacy::requests::list(&mut tx, company_id.uuid(), today).await?;
            tx.commit().await?;
            for request in listed {
                println!("{}", serde_json::to_string(&request)?);
            }
        }
        PrivacyCommand::Request {
            company_id,
            kind,
            who,
        } => {
            let subject = subject(owner, company_id, &who).await?;
            let kind = match kind {
                KindChoice::Access => RequestKind::Access,
                KindChoice::Deletion => RequestKind::Deletion,
                KindChoice::OptOut => RequestKind::OptOut,
            };
            let mut tx = lux::db::begin_for_company(owner, company_id.uuid()).await?;
            let via = ("cli", chrono::Utc::now());
            let request =
                lux::privacy::requests::file(&mut tx, company_id.uuid(), kind, Some(&subject), via)
                    .await?;
            tx.commit().await?;
            println!("{}", serde_json::to_string(&request)?);
        }
        PrivacyCommand::Export {
            company_id,
            who,
            out,
        } => {
            let subject = subject(owner, company_id, &who).await?;
            // As the service: row-level security scopes every section to the company.
            let app = lux::db::connect_app(url, 1)?;
            let mut tx = lux::db::begin_for_company(&app, company_id.uuid()).await?;
            let doc = lux::privacy::person::export(
                &mut tx,
                company_id.uuid(),
                &subject,
                chrono::Utc::now(),
            )
            .await?;
            tx.commit().await?;
            app.close().await;
            let text = serde_json::to_string_pretty(&doc)?;
            match out {
                Some(path) => std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
        }
        PrivacyCommand::Erase {
            company_id,
            who,
            request,
        } => {
            let subject = subject(owner, company_id, &who).await?;
            let now = chrono::Utc::now();
            let actor = format!(
                "lux privacy erase (os user {})",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            );
            let erasure = lux::privacy::person::erase(
                owner,
                company_id.uuid(),
                &subject,
                request,
                (&actor, now),
            )
            .await?;
            let recomputed = recompute(url, company_id, &erasure).await?;
            let mut answer = serde_json::to_value(&erasure)?;
            answer["rollup_days_recomputed"] = recomputed.into();
            println!("{}", serde_json::to_string(&answer)?);
        }
    }
    Ok(())
}

/// The person named by `who`, after checking the company exists.
async fn subject(
    owner: &sqlx::PgPool,
    company_id: CompanyId,
    who: &Who,
) -> anyhow::Result<Subject> {
    lux::tenancy::require_company(owner, company_id).await?;
    let mut conn = owner.acquire().await?;
    let key = lux::privacy::company_hash_key(&mut conn, company_id.uuid()).await?;
    Ok(Subject::from_one(
        &key,
        who.email.as_deref(),
        who.user_id.as_deref(),
        who.visitor_id,
    )?)
}

/// Attribution for the days of the orders that lost their links, then the rollups of every
/// day the erasure touched. Returns the rollup days recomputed.
async fn recompute(
    url: &str,
    company_id: CompanyId,
    erasure: &lux::privacy::person::Erasure,
) -> anyhow::Result<u64> {
    use lux::jobs::{Job, Mode, WhenBusy};
    let app = lux::db::connect_app(url, 4)?;
    let mut days = 0;
    let runs = [
        (Job::Attribution, erasure.order_days),
        (Job::Rollups, erasure.days),
    ];
    for (job, range) in runs {
        let Some((from, to)) = range else {
            continue;
        };
        let how = (Mode::Days { from, to }, WhenBusy::Wait);
        let report = lux::jobs::run(&app, company_id, job, how, chrono::Utc::now()).await?;
        if job == Job::Rollups {
            days = report.and_then(|r| r.days_count).unwrap_or(0);
        }
    }
    app.close().await;
    Ok(days)
}
