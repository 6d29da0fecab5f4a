//! `lux privacy`: stop collecting for a person or a company.

use clap::Subcommand;
use lux::privacy::SuppressionTarget;
use uuid::Uuid;

use super::owner_pool;

#[derive(Subcommand)]
pub enum PrivacyCommand {
    /// Stop collecting events for a person (by user id, visitor id or email) or a company.
    Suppress {
        #[arg(value_parser = super::args::company_id)]
        company_id: lux::ids::CompanyId,
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

pub async fn run(command: PrivacyCommand, url: &str) -> anyhow::Result<()> {
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
