//! `lux report NAME --company ID --from D --to D`: a report for a person at a terminal, as an
//! aligned table (default), CSV or the API's JSON. It runs exactly what the API runs
//! (`lux::reports::run`, as `lux_reader`, scoped to the company), so the numbers are the same.

use std::io::Write;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use serde_json::Value;

use lux::reports::{ReportBody, ReportRequest};

#[derive(Args)]
pub struct ReportArgs {
    /// revenue_by_channel, cac, roas, funnel, time_to_conversion, qualified_sessions,
    /// repeat_purchase, ltv_rolling, ltv_cohorts, messages, creatives, creative_decay,
    /// creative_fatigue, experiments or ops_velocity.
    pub name: String,
    #[arg(long, value_parser = super::args::company_id)]
    pub company: lux::ids::CompanyId,
    /// First local day of the company, included.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: NaiveDate,
    /// Last local day, included.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: NaiveDate,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Attribution model (revenue_by_channel, cac, roas, creatives).
    #[arg(long)]
    pub model: Option<String>,
    /// roas: channel, campaign or creative.
    #[arg(long)]
    pub by: Option<String>,
    /// funnel: the funnel's name (default commerce).
    #[arg(long)]
    pub funnel: Option<String>,
    /// messages: only email or sms.
    #[arg(long)]
    pub channel: Option<String>,
    /// messages: a row per channel (default), campaign or message; creatives: per creative
    /// (default), concept or angle.
    #[arg(long)]
    pub group: Option<String>,
    /// creative_decay: the creative.
    #[arg(long)]
    pub creative_id: Option<String>,
    /// experiments: only this experiment (its key).
    #[arg(long)]
    pub experiment: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// Aligned columns, for reading.
    Table,
    /// A header and a line per row, for spreadsheets.
    Csv,
    /// The API's answer, as is.
    Json,
}

impl ReportArgs {
    /// The same request the API would parse from `?from=..&to=..&model=..`.
    fn request(&self) -> Result<ReportRequest, lux::reports::RequestError> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("from", &self.from.to_string());
        query.append_pair("to", &self.to.to_string());
        for (key, value) in [
            ("model", &self.model),
            ("by", &self.by),
            ("funnel", &self.funnel),
            ("channel", &self.channel),
            ("group", &self.group),
            ("creative_id", &self.creative_id),
            ("experiment", &self.experiment),
        ] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        ReportRequest::parse(&self.name, Some(&query.finish()))
    }
}

pub async fn run(args: ReportArgs, url: &str) -> anyhow::Result<()> {
    let request = args.request().map_err(|e| anyhow::anyhow!("{e}"))?;
    let reader = lux::db::connect_reader(url, 1)?;
    let app = lux::db::connect_app(url, 1)?;
    let mut tx = lux::db::begin_for_company(&app, args.company.uuid()).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM companies WHERE company_id = $1)")
            .bind(args.company)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    if !exists {
        anyhow::bail!(
            "no company {} in this database (`lux company list` shows your companies' ids)",
            args.company
        );
    }
    let body = lux::reports::run(
        &reader,
        &app,
        chrono::Utc::now(),
        args.company.uuid(),
        &request,
    )
    .await
    .context("running the report")?;
    reader.close().await;
    app.close().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?,
        Format::Csv => write_csv(&mut out, &body)?,
        Format::Table => write_table(&mut out, &body)?,
    }
    Ok(())
}

/// The columns of the rows, in the order of the first row's fields, then any a later row adds.
fn columns(rows: &[Value]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(fields) = row {
            for key in fields.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    columns
}

/// A value as a cell: strings bare, null empty, anything nested as compact JSON.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn rows(body: &ReportBody) -> &[Value] {
    body.rows.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn write_csv(out: &mut impl Write, body: &ReportBody) -> anyhow::Result<()> {
    let rows = rows(body);
    let columns = columns(rows);
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(&columns)?;
    for row in rows {
        csv.write_record(columns.iter().map(|c| cell(row.get(c))))?;
    }
    csv.flush()?;
    Ok(())
}

fn write_table(out: &mut impl Write, body: &ReportBody) -> anyhow::Result<()> {
    writeln!(out, "{} from {} to {}", body.report, body.from, body.to)?;
    if let Some(summary) = &body.summary {
        writeln!(out, "summary: {}", serde_json::to_string(summary)?)?;
    }
    let rows = rows(body);
    if rows.is_empty() {
        writeln!(
            out,
            "(no rows: nothing in this range; `lux jobs run all` updates the rollups)"
        )?;
        return Ok(());
    }
    let columns = columns(rows);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(row.get(c))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Numbers (and decimal strings) right-aligned, text left-aligned.
    let numeric: Vec<bool> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok())
        })
        .collect();
    let line = |values: &[String]| -> String {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if numeric[i] {
                    format!("{v:>w$}", w = widths[i])
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&columns))?;
    for row in &cells {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}
