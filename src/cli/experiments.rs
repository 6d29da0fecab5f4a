//! `lux experiments`: the experiment registry (SPEC §8.3, §11), the same operations as
//! `/api/v1/experiments`. Each command prints the experiment(s) as JSON.

use chrono::NaiveDate;
use clap::{ArgGroup, Subcommand};
use lux::experiments::Variant;
use lux::experiments::registry::{self, NewExperiment, Outcome};
use lux::ids::CompanyId;

use super::owner_pool;

#[derive(Subcommand)]
pub enum ExperimentsCommand {
    /// Register an experiment (running from --started, default the company's today).
    Create {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
        /// What the snippet sends: `lux.expose(KEY, variant)`.
        #[arg(long)]
        key: String,
        #[arg(long)]
        name: String,
        /// The event that counts as a conversion (e.g. purchase, signup).
        #[arg(long)]
        primary_event: String,
        #[arg(long)]
        hypothesis: Option<String>,
        /// First day (company-local), YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD")]
        started: Option<NaiveDate>,
    },
    /// Conclude an experiment with its winning variant, or with none.
    #[command(group(ArgGroup::new("outcome").required(true).args(["winner", "no_winner"])))]
    Conclude {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
        #[arg(long)]
        key: String,
        #[arg(long)]
        winner: Option<String>,
        #[arg(long)]
        no_winner: bool,
        /// Last day (company-local), YYYY-MM-DD; default the company's today.
        #[arg(long, value_name = "YYYY-MM-DD")]
        ended: Option<NaiveDate>,
    },
    /// The company's experiments.
    List {
        #[arg(value_parser = super::args::company_id)]
        company_id: CompanyId,
    },
}

pub async fn run(command: ExperimentsCommand, url: &str) -> anyhow::Result<()> {
    let owner = owner_pool(url).await?;
    let now = chrono::Utc::now();
    let printed = match command {
        ExperimentsCommand::Create {
            company_id,
            key,
            name,
            primary_event,
            hypothesis,
            started,
        } => {
            let new =
                NewExperiment::parse(&key, &name, &primary_event, hypothesis.as_deref(), started)?;
            let (_, experiment) = registry::create(&owner, company_id.uuid(), &new, now).await?;
            serde_json::to_string_pretty(&experiment)?
        }
        ExperimentsCommand::Conclude {
            company_id,
            key,
            winner,
            no_winner: _,
            ended,
        } => {
            let outcome = match winner {
                Some(w) => Outcome::Winner(
                    Variant::parse(&w).map_err(|e| anyhow::anyhow!("--winner: {e}"))?,
                ),
                None => Outcome::NoWinner,
            };
            let experiment =
                registry::conclude(&owner, company_id.uuid(), &key, &outcome, ended, now).await?;
            serde_json::to_string_pretty(&experiment)?
        }
        ExperimentsCommand::List { company_id } => {
            let experiments = registry::list(&owner, company_id.uuid()).await?;
            serde_json::to_string_pretty(&serde_json::json!({ "experiments": experiments }))?
        }
    };
    owner.close().await;
    println!("{printed}");
    Ok(())
}
