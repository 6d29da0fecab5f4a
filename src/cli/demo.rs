//! `lux demo`: a demo company with realistic history, its jobs run, then served.

use clap::Args;

use super::serve::{ServeArgs, serve};
use super::{Context, owner_pool};

/// The demo's dashboard login.
const DEMO_EMAIL: &str = "demo@example.com";

#[derive(Args)]
pub struct DemoArgs {
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

pub async fn run(args: DemoArgs, ctx: &Context) -> anyhow::Result<()> {
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
    let summary = lux::demo::generate(&owner, company.company_id, &spec).await?;
    eprintln!(
        "lux: {} events, {} sessions, {} orders in {:.1} s ({:.0} events/s); running the jobs ...",
        summary.events,
        summary.sessions,
        summary.orders,
        summary.seconds,
        summary.events_per_second
    );
    // A dashboard login for the person at the terminal (the same email each run; each
    // run sets a new password and grants the new company).
    let email = lux::dashboards::users::Email::parse(DEMO_EMAIL)?;
    let password = lux::dashboards::users::Password::generate();
    lux::dashboards::users::upsert_user(&owner, &email, &password).await?;
    lux::dashboards::users::grant(
        &owner,
        &email,
        company.company_id,
        lux::dashboards::users::Role::Admin,
    )
    .await?;
    let login = (DEMO_EMAIL.to_string(), password.expose().to_string());
    owner.close().await;
    let pool = lux::db::connect_app(&ctx.url, 4)?;
    let jobs = lux::demo::run_jobs(&pool, company.company_id).await;
    // The alerts of yesterday, on the rollups just made (no recipients yet: nothing is sent;
    // they show in the alerts report and dashboard).
    let alerts = match jobs {
        Ok(_) => Some(
            lux::alerts::check(
                &pool,
                company.company_id.uuid(),
                None,
                chrono::Utc::now(),
                (
                    &lux::alerts::AlertOptions::default(),
                    &lux::alerts::DeliveryOptions::default(),
                ),
            )
            .await,
        ),
        Err(_) => None,
    };
    pool.close().await;
    let jobs = jobs?;
    let (evaluation, _) = alerts.expect("evaluated after the jobs")?;
    let fired: Vec<_> = evaluation
        .fired
        .iter()
        .map(|n| serde_json::json!({"rule": n.rule, "subject": n.subject, "title": n.title}))
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "demo": summary,
            "jobs": jobs,
            "alerts": {"day": evaluation.day, "fired": fired},
            "dashboards": {
                "path": format!("/app/{}/executive", company.company_id),
                "email": login.0,
                "password": login.1,
            },
        }))?
    );
    if args.no_serve {
        return Ok(());
    }
    serve(args.serve, ctx, Some(company), Some(login)).await
}
