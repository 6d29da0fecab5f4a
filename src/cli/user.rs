//! `lux user`: dashboard logins (staff, not visitors) and the companies they may see.

use std::io::Read as _;

use clap::{Subcommand, ValueEnum};
use lux::dashboards::users::{self, Email, Password, Role};

use super::{Context, owner_pool};

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Viewer,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user. The password is read from standard input (first line), so
    /// it stays out of the shell history and the process list.
    Create {
        #[arg(long)]
        email: String,
    },
    /// Let a user see a company's dashboards (a second grant changes the role).
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = super::args::company_id)]
        company: lux::ids::CompanyId,
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
}

pub async fn run(command: UserCommand, ctx: &Context) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { email } => {
            let email = Email::parse(&email)?;
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let password = Password::parse(input.lines().next().unwrap_or_default())?;
            let owner = owner_pool(&ctx.url).await?;
            let user_id = users::create_user(&owner, &email, &password).await;
            owner.close().await;
            let user_id = user_id?;
            println!(
                "{}",
                serde_json::json!({"user_id": user_id, "email": email.as_ref()})
            );
        }
        UserCommand::Grant {
            email,
            company,
            role,
        } => {
            let email = Email::parse(&email)?;
            let role = Role::from(role);
            let owner = owner_pool(&ctx.url).await?;
            let granted = users::grant(&owner, &email, company, role).await;
            owner.close().await;
            granted?;
            println!(
                "{}",
                serde_json::json!({"email": email.as_ref(), "company_id": company.uuid(), "role": role.as_str()})
            );
        }
    }
    Ok(())
}
