//! `lux jobs run`: attribution, rollups and creative fatigue now, for one company or all.

use clap::{Subcommand, ValueEnum};

use super::owner_pool;

/// Which job `lux jobs run` runs.
#[derive(Clone, Copy, ValueEnum)]
pub enum JobChoice {
    /// Every job, in order (attribution, then rollups: they read what it wrote; then creative
    /// fatigue, which reads the creative rollups).
    All,
    /// Touch points and credit per order.
    Attribution,
    /// The daily rollups the reports read.
    Rollups,
    /// Each creative's fatigue status as of each complete local day (creative_fatigue_history).
    #[value(name = "creative_fatigue")]
    CreativeFatigue,
    /// Raw-event retention (every company at once): drop monthly partitions older than every
    /// company's retention, erase older events of companies that keep less (docs/privacy.md).
    Retention,
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Run a job now and print what it did as JSON lines. Waits if another process is
    /// running the same job for the same company.
    Run {
        job: JobChoice,
        /// Only this company (default: every company).
        #[arg(long, value_parser = super::args::company_id)]
        company: Option<lux::ids::CompanyId>,
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

pub async fn run(command: JobsCommand, url: &str) -> anyhow::Result<()> {
    let JobsCommand::Run {
        job,
        company,
        full,
        from,
        to,
    } = command;
    let jobs: Vec<lux::jobs::Job> = match job {
        JobChoice::All => lux::jobs::Job::ALL.to_vec(),
        JobChoice::Attribution => vec![lux::jobs::Job::Attribution],
        JobChoice::Rollups => vec![lux::jobs::Job::Rollups],
        JobChoice::CreativeFatigue => vec![lux::jobs::Job::CreativeFatigue],
        JobChoice::Retention => return retention(url).await,
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
            match lux::jobs::run(
                &pool,
                company_id,
                job,
                (mode, lux::jobs::WhenBusy::Wait),
                chrono::Utc::now(),
            )
            .await
            {
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

/// `lux jobs run retention`: as the erasure role, on the owner's login. Prints its report.
async fn retention(url: &str) -> anyhow::Result<()> {
    let owner = owner_pool(url).await?;
    let actor = format!(
        "lux jobs run retention (os user {})",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let report = lux::privacy::retention::run(&owner, &actor, chrono::Utc::now()).await;
    owner.close().await;
    println!("{}", serde_json::to_string(&report?)?);
    Ok(())
}
