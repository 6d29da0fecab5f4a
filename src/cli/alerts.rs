//! `lux alerts configure|check|test` (SPEC §11), and the delivery settings `lux serve` shares.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use lux::alerts::config::{QuietHours, RuleConfig, parse_email, parse_webhook};
use lux::alerts::{AlertOptions, AlertSettings, DeliveryOptions, Rule, SmtpSettings};
use uuid::Uuid;

/// How alerts are delivered (`lux serve`, `lux alerts check|test`).
#[derive(Args, Clone)]
pub struct DeliveryArgs {
    /// SMTP server for alert email: smtp://[user:pass@]host:port (STARTTLS when offered) or
    /// smtps://... (TLS).
    #[arg(long, env = "LUX_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender of alert email (an address, or `Name <address>`).
    #[arg(
        long,
        env = "LUX_SMTP_FROM",
        default_value = "LUX Analytics <alerts@localhost>"
    )]
    smtp_from: String,
    /// Seconds before the first retry of a failed delivery (doubling each time).
    #[arg(long, env = "LUX_ALERTS_RETRY_SECONDS", default_value_t = 60)]
    alerts_retry_seconds: u64,
    /// Longest wait between two retries, in seconds.
    #[arg(long, env = "LUX_ALERTS_RETRY_CAP_SECONDS", default_value_t = 3600)]
    alerts_retry_cap_seconds: u64,
    /// Let Slack webhooks point at loopback and private addresses (a relay on your network).
    #[arg(long, env = "LUX_ALERTS_ALLOW_PRIVATE_WEBHOOKS")]
    alerts_allow_private_webhooks: bool,
    /// How often `lux serve` looks for due deliveries, in milliseconds.
    #[arg(long, env = "LUX_ALERTS_POLL_MS", default_value_t = 5000)]
    alerts_poll_ms: u64,
    /// The service's public base URL, for the dashboard links in alerts.
    /// (Read by `lux serve` as --public-url; one flag name per command.)
    #[arg(long = "alerts-public-url", env = "LUX_PUBLIC_URL", hide = true)]
    alerts_public_url: Option<url::Url>,
}

impl DeliveryArgs {
    pub fn delivery(&self) -> anyhow::Result<DeliveryOptions> {
        let smtp = match self.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => {
                Some(SmtpSettings::parse(url, &self.smtp_from).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        Ok(DeliveryOptions {
            smtp,
            retry_base: Duration::from_secs(self.alerts_retry_seconds.max(1)),
            retry_cap: Duration::from_secs(self.alerts_retry_cap_seconds.max(1)),
            poll: Duration::from_millis(self.alerts_poll_ms.max(50)),
            allow_private_webhooks: self.alerts_allow_private_webhooks,
            ..DeliveryOptions::default()
        })
    }

    pub fn options(&self) -> AlertOptions {
        AlertOptions {
            public_url: self.alerts_public_url.clone(),
            counters: Default::default(),
        }
    }
}

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Set who is told and how (prints the settings as JSON). Options left out keep their
    /// current values; `--rule` with `--threshold` and `--min-volume` overrides a rule.
    Configure(ConfigureArgs),
    /// Evaluate the rules as of the end of a local day (default yesterday) and deliver.
    Check {
        #[arg(long)]
        company: Uuid,
        /// The local day (YYYY-MM-DD).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
    /// Send a test message to every configured target, through the outbox.
    Test {
        company_id: Uuid,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
}

#[derive(Args)]
pub struct ConfigureArgs {
    company_id: Uuid,
    /// A recipient (repeat for several); replaces the list when given.
    #[arg(long = "email")]
    emails: Vec<String>,
    /// A Slack incoming webhook URL (`none` removes it).
    #[arg(long)]
    slack_webhook: Option<String>,
    /// Local hours when nothing is delivered, e.g. 22-07 (`none` removes them).
    #[arg(long)]
    quiet_hours: Option<String>,
    /// Local hour after which the scheduler evaluates yesterday (default 7).
    #[arg(long)]
    morning_hour: Option<u8>,
    /// The rule to override (with --threshold and --min-volume).
    #[arg(long, value_parser = parse_rule, requires_all = ["threshold", "min_volume"])]
    rule: Option<Rule>,
    #[arg(long, requires = "rule")]
    threshold: Option<f64>,
    #[arg(long, requires = "rule")]
    min_volume: Option<f64>,
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    Rule::parse(text).ok_or_else(|| {
        format!(
            "unknown rule {text:?}; rules: {}",
            Rule::ALL.map(Rule::as_str).join(", ")
        )
    })
}

pub async fn run(command: AlertsCommand, url: &str) -> anyhow::Result<()> {
    let owner = super::owner_pool(url).await?;
    owner.close().await;
    let pool = lux::db::connect_app(url, 2)?;
    let now = chrono::Utc::now();
    match command {
        AlertsCommand::Configure(args) => {
            let mut settings = AlertSettings::load(&pool, args.company_id).await?;
            apply(&mut settings, args.company_id, &args)?;
            lux::alerts::Company::load(&pool, args.company_id).await?;
            settings.save(&pool, args.company_id).await?;
            println!("{}", serde_json::to_string_pretty(&settings.to_json())?);
        }
        AlertsCommand::Check {
            company,
            date,
            delivery,
        } => {
            let options = delivery.options();
            let delivery = delivery.delivery()?;
            let (evaluation, pass) =
                lux::alerts::check(&pool, company, date, now, (&options, &delivery))
                    .await
                    .context("evaluating the alerts")?;
            let out = serde_json::json!({
                "company_id": company, "day": evaluation.day, "run_id": evaluation.run_id,
                "evaluated": evaluation.evaluated, "met": evaluation.met,
                "fired": evaluation.fired, "resolved": evaluation.resolved,
                "enqueued": evaluation.enqueued, "delivered": pass,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        AlertsCommand::Test {
            company_id,
            delivery,
        } => {
            let options = delivery.options();
            let delivery = delivery.delivery()?;
            let (enqueued, pass) =
                lux::alerts::send_test(&pool, company_id, now, (&options, &delivery)).await?;
            if enqueued == 0 {
                anyhow::bail!(
                    "company {company_id} has no alert recipients: `lux alerts configure \
                     {company_id} --email ADDR` first"
                );
            }
            println!(
                "{}",
                serde_json::json!({"enqueued": enqueued, "delivered": pass})
            );
            if pass.failed > 0 {
                anyhow::bail!(
                    "{} of {enqueued} test messages failed; they are retried by `lux serve` \
                     (see the alerts report for the error)",
                    pass.failed
                );
            }
        }
    }
    pool.close().await;
    Ok(())
}

fn apply(settings: &mut AlertSettings, company: Uuid, args: &ConfigureArgs) -> anyhow::Result<()> {
    let _ = company;
    if !args.emails.is_empty() {
        settings.emails = args
            .emails
            .iter()
            .map(|e| parse_email(e))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
    }
    match args.slack_webhook.as_deref() {
        Some("none") => settings.slack_webhook = None,
        Some(url) => settings.slack_webhook = Some(parse_webhook(url).map_err(anyhow::Error::msg)?),
        None => {}
    }
    match args.quiet_hours.as_deref() {
        Some("none") => settings.quiet_hours = None,
        Some(text) => {
            settings.quiet_hours = Some(QuietHours::parse(text).map_err(anyhow::Error::msg)?)
        }
        None => {}
    }
    if let Some(hour) = args.morning_hour {
        anyhow::ensure!(hour <= 23, "--morning-hour must be 0-23, not {hour}");
        settings.morning_hour = hour;
    }
    if let (Some(rule), Some(threshold), Some(min_volume)) =
        (args.rule, args.threshold, args.min_volume)
    {
        let config = RuleConfig::parse(threshold, min_volume).map_err(anyhow::Error::msg)?;
        settings.rules.insert(rule, config);
    }
    Ok(())
}
