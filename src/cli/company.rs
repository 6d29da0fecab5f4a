//! `lux company`: tenants, their keys, settings, reader logins and webhook secrets.

use clap::Subcommand;
use lux::commerce::secrets::Provider;
use lux::tenancy::KeyKind;
use uuid::Uuid;

use super::{Context, owner_pool};

#[derive(Subcommand)]
pub enum CompanyCommand {
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
        #[arg(value_parser = super::args::company_id)]
        company_id: lux::ids::CompanyId,
        /// Create a key: write (public, for the snippet) or secret (server-side).
        #[arg(long, value_name = "KIND", value_enum)]
        create: Option<KeyKind>,
        /// Revoke the key with this id.
        #[arg(long, value_name = "KEY_ID")]
        revoke: Option<Uuid>,
    },
    /// Show or change a company's attribution settings (only the options given change);
    /// prints the settings in force. The next attribution run redoes every order.
    Attribution {
        #[arg(value_parser = super::args::company_id)]
        company_id: lux::ids::CompanyId,
        #[command(flatten)]
        change: lux::attribution::settings::SettingsChange,
    },
    /// Show or change a company's rollup settings: what makes a session engaged, and the
    /// company's own funnels (only the options given change); prints the settings in force.
    /// The next rollups run recomputes every day.
    Rollups {
        #[arg(value_parser = super::args::company_id)]
        company_id: lux::ids::CompanyId,
        #[command(flatten)]
        change: lux::rollups::settings::SettingsChange,
    },
    /// Create a database login that reads this company's rollups only (for Metabase): it
    /// sees the company's rows whatever company it asks for, and never raw events.
    ReaderLogin {
        #[arg(value_parser = super::args::company_id)]
        company_id: lux::ids::CompanyId,
        #[arg(long)]
        login: String,
        /// At least 12 characters.
        #[arg(long, env = "LUX_READER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Store a webhook signing secret (encrypted with LUX_SECRETS_KEY): Stripe's or
    /// WooCommerce's signing secret, SendGrid's verification key (base64 DER public key),
    /// Mailgun's webhook signing key, Twilio's auth token, or for ses the SNS topic ARN.
    SetSecret {
        #[arg(value_parser = super::args::company_id)]
        company_id: lux::ids::CompanyId,
        #[arg(long, value_enum)]
        provider: Provider,
        #[arg(long, hide_env_values = true)]
        secret: String,
    },
}

pub async fn run(command: CompanyCommand, ctx: &Context) -> anyhow::Result<()> {
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
            let key = ctx.require_secrets_key()?;
            check_message_secret(provider, &secret)?;
            lux::commerce::secrets::set_secret(&owner, &key, company_id.uuid(), provider, &secret)
                .await?;
            println!("{} secret stored for {company_id}", provider.as_str());
        }
    }
    owner.close().await;
    Ok(())
}

/// The message providers' secrets have a shape that can be checked before storing.
fn check_message_secret(provider: Provider, secret: &str) -> anyhow::Result<()> {
    use lux::messages::Provider as Message;
    let provider = match provider {
        Provider::SendGrid => Message::SendGrid,
        Provider::Mailgun => Message::Mailgun,
        Provider::Ses => Message::Ses,
        Provider::Twilio => Message::Twilio,
        Provider::Stripe | Provider::WooCommerce => return Ok(()),
    };
    lux::messages::webhook::check_secret(provider, secret)
        .map_err(|problem| anyhow::anyhow!("--secret for {provider}: {problem}"))
}
