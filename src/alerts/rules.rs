//! The six rules (SPEC §8.4), each reading only rollups for the local day `day` (the last
//! complete day) and giving one [`Finding`] per subject it looked at: whether its condition
//! holds, why it was not checked (volume, history), its numbers, and a title and paragraph a
//! marketer understands, naming the likely driver of the change with its share.
//!
//! Formulas and defaults: `docs/alerts.md`. Windows: "this week" is `day−6..=day`, "last
//! week" `day−13..=day−7`; "same weekday" history is `day−7k` for k = 1..=8.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;

use super::config::{AlertSettings, Rule, RuleConfig};
use crate::stats::{Alternative, robust_z, two_proportion_p};

/// Significance level of the funnel test.
const ALPHA: f64 = 0.05;
/// `cpa_wow`'s second minimum: spend in each week, in the company's currency.
const CPA_MIN_SPEND: f64 = 100.0;
/// Same-weekday history points the z-score rules need (of the 8 looked at).
const MIN_HISTORY_POINTS: usize = 4;
/// `revenue_anomaly` needs revenue on a day at least this many days before `day`.
const REVENUE_HISTORY_DAYS: u64 = 21;
/// The attribution model whose per-channel conversions the rules read: each order is
/// credited once, in full, to its last touch (or to 'Unattributed').
const MODEL: &str = "last_touch";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What one rule found about one subject on one day.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: Rule,
    /// What the rule looked at: `blended`, `channel:Paid Social`, `commerce:add_to_cart`, ...
    pub subject: String,
    /// The condition holds (and the volume was enough to check it).
    pub met: bool,
    /// Whether this finding may start a firing (`creative_fatigue` fires on *entering*
    /// `fatigued`; a creative fatigued before alerts ran keeps quiet).
    pub may_start: bool,
    /// Why the condition was not checked.
    pub skipped: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub explanation: String,
    pub numbers: Value,
}

/// What the rules share: the company, the day, and how to write amounts and links.
pub struct Scope<'a> {
    pub day: NaiveDate,
    pub currency: &'a str,
    /// The dashboard's base for this company: `{public_url}/app/{company_id}`.
    pub app_link: String,
}

impl Scope<'_> {
    fn this_week(&self) -> (NaiveDate, NaiveDate) {
        (self.day - chrono::Days::new(6), self.day)
    }
    fn last_week(&self) -> (NaiveDate, NaiveDate) {
        (
            self.day - chrono::Days::new(13),
            self.day - chrono::Days::new(7),
        )
    }
    fn link(&self, rule: Rule) -> String {
        format!("{}/{}", self.app_link, rule.page())
    }
    fn money(&self, amount: f64) -> String {
        format!("{amount:.2} {}", self.currency)
    }
    fn weeks(&self) -> String {
        let (a, b) = self.this_week();
        let (c, d) = self.last_week();
        format!("{a} to {b} compared with {c} to {d}")
    }
}

/// Every rule's findings for `scope.day`.
pub async fn evaluate_all(
    conn: &mut PgConnection,
    company_id: uuid::Uuid,
    settings: &AlertSettings,
    scope: &Scope<'_>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let mut findings = Vec::new();
    findings.extend(cpa_wow(conn, company_id, settings.rule(Rule::CpaWow), scope).await?);
    let funnel = settings.rule(Rule::FunnelStepDrop);
    findings.extend(funnel_step_drop(conn, company_id, funnel, scope).await?);
    let abandonment = settings.rule(Rule::CheckoutAbandonmentSpike);
    findings.extend(checkout_abandonment(conn, company_id, abandonment, scope).await?);
    let revenue = settings.rule(Rule::RevenueAnomaly);
    findings.extend(revenue_anomaly(conn, company_id, revenue, scope).await?);
    let complaints = settings.rule(Rule::EmailComplaints);
    findings.extend(email_complaints(conn, company_id, complaints, scope).await?);
    let fatigue = settings.rule(Rule::CreativeFatigue);
    findings.extend(creative_fatigue(conn, company_id, fatigue, scope).await?);
    Ok(findings)
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn signed_pct(x: f64) -> String {
    format!(
        "{}{:.1} %",
        if x >= 0.0 { "+" } else { "−" },
        x.abs() * 100.0
    )
}

/// A skipped finding: not checked, never firing (and clearing a firing one).
fn skipped(rule: Rule, subject: String, why: String, numbers: Value) -> Finding {
    Finding {
        rule,
        subject,
        met: false,
        may_start: true,
        skipped: Some(why.clone()),
        severity: Severity::Warning,
        title: format!("{rule}: not checked"),
        explanation: why,
        numbers,
    }
}

/// The largest contributor of an additive decomposition, in the direction of the total:
/// (name, share of the total). `None` when nothing moved.
fn largest_contributor(parts: &BTreeMap<String, f64>) -> Option<(String, f64)> {
    let total: f64 = parts.values().sum();
    if total == 0.0 {
        return None;
    }
    parts
        .iter()
        .filter(|(_, v)| v.signum() == total.signum())
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map(|(k, v)| (k.clone(), v / total))
}

// ---------------------------------------------------------------------------------------
// cpa_wow

/// (channel, campaign, this week?) → amount.
type Cells = BTreeMap<(String, String, bool), f64>;

/// CPA = spend ÷ conversions, this week vs last, blended and per channel with spend. The
/// change decomposes exactly: CPA₁ − CPA₀ = Σᵢ (sᵢ₁ − CPA₀·cᵢ₁) / C₁ over channels (blended)
/// or campaigns (a channel), so each part's share of the rise is (sᵢ₁ − CPA₀·cᵢ₁) / (S₁ − CPA₀·C₁).
async fn cpa_wow(
    conn: &mut PgConnection,
    company_id: uuid::Uuid,
    config: RuleConfig,
    scope: &Scope<'_>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let (from, _) = scope.last_week();
    let (week_start, to) = scope.this_week();
    let spend: Vec<(String, String, bool, f64)> = sqlx::query_as(
        "SELECT channel, campaign, day >= $4, sum(spend)::float8 FROM ad_spend
         WHERE company_id = $1 AND day BETWEEN $2 AND $3 AND currency = $5
         GROUP BY 1, 2, 3",
    )
    .bind(company_id)
    .bind(from)
    .bind(to)
    .bind(week_start)
    .bind(scope.currency)
    .fetch_all(&mut *conn)
    .await?;
    let orders: Vec<(String, String, bool, f64)> = sqlx::query_as(
        "SELECT channel, campaign, day >= $4, sum(orders)::float8 FROM rollup_revenue_daily
         WHERE company_id = $1 AND day BETWEEN $2 AND $3 AND model = $5
         GROUP BY 1, 2, 3",
    )
    .bind(company_id)
    .bind(from)
    .bind(to)
    .bind(week_start)
    .bind(MODEL)
    .fetch_all(&mut *conn)
    .await?;
    let cells = |rows: Vec<(String, String, bool, f64)>| -> Cells {
        rows.into_iter()
            .map(|(a, b, c, v)| ((a, b, c), v))
            .collect()
    };
    let (spend, orders) = (cells(spend), cells(orders));
    let mut findings = vec![cpa_finding(scope, config, None, &spend, &orders)];
    let channels: std::collections::BTreeSet<&String> = spend.keys().map(|k| &k.0).collect();
    for channel in channels {
        findings.push(cpa_finding(scope, config, Some(channel), &spend, &orders));
    }
    Ok(findings)
}

/// Sums `cells` of `channel` (all when `None`) by part (channel when blended, campaign
/// otherwise) for one week.
fn by_part(cells: &Cells, channel: Option<&String>, this_week: bool) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for ((ch, campaign, week), v) in cells {
        if *week != this_week || channel.is_some_and(|c| c != ch) {
            continue;
        }
        let part = if channel.is_some() { campaign } else { ch };
        *out.entry(part.clone()).or_insert(0.0) += v;
    }
    out
}

fn cpa_finding(
    scope: &Scope<'_>,
    config: RuleConfig,
    channel: Option<&String>,
    spend: &Cells,
    orders: &Cells,
) -> Finding {
    let rule = Rule::CpaWow;
    let subject = channel.map_or("blended".to_string(), |c| format!("channel:{c}"));
    let label = channel.map_or("blended CPA".to_string(), |c| format!("CPA on {c}"));
    let (s1, c1) = (
        by_part(spend, channel, true),
        by_part(orders, channel, true),
    );
    let (s0, c0) = (
        by_part(spend, channel, false),
        by_part(orders, channel, false),
    );
    let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
    let (spend1, conv1, spend0, conv0) = (total(&s1), total(&c1), total(&s0), total(&c0));
    let mut numbers = json!({
        "spend": spend1, "conversions": conv1, "baseline_spend": spend0,
        "baseline_conversions": conv0, "threshold": config.threshold,
        "min_conversions": config.min_volume, "min_spend": CPA_MIN_SPEND,
        "window": scope.this_week(), "baseline_window": scope.last_week(),
    });
    if spend1 < CPA_MIN_SPEND || spend0 < CPA_MIN_SPEND {
        let why = format!(
            "{label}: spend below {} in a week ({} this week, {} the week before)",
            scope.money(CPA_MIN_SPEND),
            scope.money(spend1),
            scope.money(spend0)
        );
        return skipped(rule, subject, why, numbers);
    }
    if conv1 < config.min_volume || conv0 < config.min_volume {
        let why = format!(
            "{label}: fewer than {} conversions in a week ({conv1} this week, {conv0} the week before)",
            config.min_volume
        );
        return skipped(rule, subject, why, numbers);
    }
    let (cpa1, cpa0) = (spend1 / conv1, spend0 / conv0);
    let change = cpa1 / cpa0 - 1.0;
    let parts: BTreeMap<String, f64> = s1
        .keys()
        .chain(c1.keys())
        .map(|k| {
            let s = s1.get(k).copied().unwrap_or(0.0);
            let c = c1.get(k).copied().unwrap_or(0.0);
            (k.clone(), s - cpa0 * c)
        })
        .collect();
    let driver = largest_contributor(&parts);
    let part_kind = if channel.is_some() {
        "campaign"
    } else {
        "channel"
    };
    numbers["current"] = json!(cpa1);
    numbers["baseline"] = json!(cpa0);
    numbers["change"] = json!(change);
    numbers["driver"] = json!(driver.as_ref().map(|d| &d.0));
    numbers["driver_share"] = json!(driver.as_ref().map(|d| d.1));
    let driver_text = match &driver {
        Some((name, share)) => format!(
            " Likely driver: {part_kind} {name}, {} of the change (its spend against the \
             conversions it brought, at last week's CPA).",
            pct(*share)
        ),
        None => String::new(),
    };
    let explanation = format!(
        "The {label} rose from {} to {} ({}) over {} (threshold: more than {}). Spend was {} \
         for {conv1:.0} conversions, against {} for {conv0:.0}.{driver_text} Dashboard: {}",
        scope.money(cpa0),
        scope.money(cpa1),
        signed_pct(change),
        scope.weeks(),
        signed_pct(config.threshold),
        scope.money(spend1),
        scope.money(spend0),
        scope.link(rule),
    );
    Finding {
        rule,
        subject,
        met: change > config.threshold,
        may_start: true,
        skipped: None,
        severity: Severity::Warning,
        title: format!("{} up {} week over week", capitalize(&label), pct(change)),
        explanation,
        numbers,
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// funnel_step_drop

/// Each step's conversion (sessions reaching it ÷ sessions reaching the step before), this
/// week vs last; fires when down ≥ threshold (relative) and significant (one-sided pooled
/// two-proportion test, p < 0.05). Driver: the funnel's end-to-end conversion R is the
/// product of its step rates, so ln(R₁/R₀) = Σ ln(rᵢ₁/rᵢ₀): each step's share of the
/// overall change is its log-ratio over the total's.
async fn funnel_step_drop(
    conn: &mut PgConnection,
    company_id: uuid::Uuid,
    config: RuleConfig,
    scope: &Scope<'_>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let (from, _) = scope.last_week();
    let (week_start, to) = scope.this_week();
    let rows: Vec<(String, i32, String, bool, i64)> = sqlx::query_as(
        "SELECT funnel, step, event_name, day >= $4, sum(sessions)::int8 FROM rollup_funnel_daily
         WHERE company_id = $1 AND day BETWEEN $2 AND $3
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2",
    )
    .bind(company_id)
    .bind(from)
    .bind(to)
    .bind(week_start)
    .fetch_all(&mut *conn)
    .await?;
    // funnel → step → (event, last week's sessions, this week's)
    let mut funnels: BTreeMap<String, BTreeMap<i32, (String, u64, u64)>> = BTreeMap::new();
    for (funnel, step, event, this_week, sessions) in rows {
        let cell = funnels
            .entry(funnel)
            .or_default()
            .entry(step)
            .or_insert((event, 0, 0));
        let n = u64::try_from(sessions).unwrap_or(0);
        if this_week {
            cell.2 += n;
        } else {
            cell.1 += n;
        }
    }
    let mut findings = Vec::new();
    for (funnel, steps) in &funnels {
        let steps: Vec<&(String, u64, u64)> = steps.values().collect();
        let log_ratios: BTreeMap<String, f64> = steps
            .windows(2)
            .filter(|w| w[0].1 > 0 && w[0].2 > 0 && w[1].1 > 0 && w[1].2 > 0)
            .map(|w| {
                let r0 = w[1].1 as f64 / w[0].1 as f64;
                let r1 = w[1].2 as f64 / w[0].2 as f64;
                (format!("{} → {}", w[0].0, w[1].0), (r1 / r0).ln())
            })
            .collect();
        for pair in steps.windows(2) {
            findings.push(step_finding(scope, config, funnel, pair, &log_ratios));
        }
    }
    Ok(findings)
}

fn step_finding(
    scope: &Scope<'_>,
    config: RuleConfig,
    funnel: &str,
    pair: &[&(String, u64, u64)],
    log_ratios: &BTreeMap<String, f64>,
) -> Finding {
    let rule = Rule::FunnelStepDrop;
    let (before, step) = (pair[0], pair[1]);
    let name = format!("{} → {}", before.0, step.0);
    let subject = format!("{funnel}:{}", step.0);
    let (n0, c0, n1, c1) = (before.1, step.1, before.2, step.2);
    let mut numbers = json!({
        "funnel": funnel, "step": name, "entered": n1, "converted": c1,
        "baseline_entered": n0, "baseline_converted": c0, "threshold": config.threshold,
        "min_volume": config.min_volume, "alpha": ALPHA,
        "window": scope.this_week(), "baseline_window": scope.last_week(),
    });
    if (n0 as f64) < config.min_volume || (n1 as f64) < config.min_volume {
        let why = format!(
            "{funnel} funnel, {name}: fewer than {} sessions entered the step in a week \
             ({n1} this week, {n0} the week before)",
            config.min_volume
        );
        return skipped(rule, subject, why, numbers);
    }
    let (r0, r1) = (c0 as f64 / n0 as f64, c1 as f64 / n1 as f64);
    let drop = if r0 > 0.0 { 1.0 - r1 / r0 } else { 0.0 };
    let p = two_proportion_p(c0, n0, c1, n1, Alternative::Less);
    let total: f64 = log_ratios.values().sum();
    let share = log_ratios
        .get(&name)
        .map(|l| l / total)
        .filter(|_| total < 0.0);
    numbers["current"] = json!(r1);
    numbers["baseline"] = json!(r0);
    numbers["change"] = json!(-drop);
    numbers["p_value"] = json!(p);
    numbers["driver"] = json!(name);
    numbers["driver_share"] = json!(share);
    let share_text = match share {
        Some(s) => format!(
            " This step accounts for {} of the fall in the funnel's end-to-end conversion.",
            pct(s)
        ),
        None => String::new(),
    };
    let explanation = format!(
        "In the {funnel} funnel, conversion from {} to {} fell from {} to {} ({}) over {} \
         ({c1} of {n1} sessions against {c0} of {n0}; threshold: a drop of {} or more, \
         significant at p < {ALPHA}; p = {p:.4}). Likely driver: the step {name}.{share_text} \
         Dashboard: {}",
        before.0,
        step.0,
        pct(r0),
        pct(r1),
        signed_pct(-drop),
        scope.weeks(),
        pct(config.threshold),
        scope.link(rule),
    );
    Finding {
        rule,
        subject,
        met: drop >= config.threshold && p < ALPHA,
        may_start: true,
        skipped: None,
        severity: Severity::Warning,
        title: format!("{funnel} funnel: {name} conversion down {}", pct(drop)),
        explanation,
        numbers,
    }
}

// ---------------------------------------------------------------------------------------
// checkout_abandonment_spike

/// Yesterday's share of checkouts without a purchase (1 − purchase sessions ÷ begin_checkout
/// sessions, commerce funnel) against the same weekday's over the 8 weeks before: robust
/// z = 0.6745·(x − median)/MAD ≥ threshold.
async fn checkout_abandonment(
    conn: &mut PgConnection,
    company_id: uuid::Uuid,
    config: RuleConfig,
    scope: &Scope<'_>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let rule = Rule::CheckoutAbandonmentSpike;
    let days = same_weekdays(scope.day);
    let rows: Vec<(NaiveDate, String, i64)> = sqlx::query_as(
        "SELECT day, event_name, sum(sessions)::int8 FROM rollup_funnel_daily
         WHERE company_id = $1 AND funnel = 'commerce' AND day = ANY($2)
           AND event_name IN ('begin_checkout', 'purchase')
         GROUP BY 1, 2",
    )
    .bind(company_id)
    .bind(&days)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_day: BTreeMap<NaiveDate, (f64, f64)> = BTreeMap::new();
    for (day, event, n) in rows {
        let cell = by_day.entry(day).or_insert((0.0, 0.0));
        if event == "begin_checkout" {
            cell.0 = n as f64;
        } else {
            cell.1 = n as f64;
        }
    }
    let share = |(checkouts, purchases): (f64, f64)| 1.0 - (purchases / checkouts).min(1.0);
    let (checkouts, purchases) = by_day.get(&scope.day).copied().unwrap_or((0.0, 0.0));
    let history: Vec<f64> = days[1..]
        .iter()
        .filter_map(|d| by_day.get(d).copied())
        .filter(|c| c.0 > 0.0)
        .map(share)
        .collect();
    let baseline_checkouts = crate::stats::median(
        &days[1..]
            .iter()
            .map(|d| by_day.get(d).map_or(0.0, |c| c.0))
            .collect::<Vec<_>>(),
    )
    .unwrap_or(0.0);
    let subject = "commerce:checkout".to_string();
    let mut numbers = json!({
        "checkouts": checkouts, "purchases": purchases, "history": history,
        "baseline_checkouts": baseline_checkouts,
        "threshold": config.threshold, "min_volume": config.min_volume, "day": scope.day,
    });
    if checkouts < config.min_volume {
        let why = format!(
            "checkout abandonment: {checkouts} checkouts on {} (fewer than {})",
            scope.day, config.min_volume
        );
        return Ok(vec![skipped(rule, subject, why, numbers)]);
    }
    let x = share((checkouts, purchases));
    let Some(z) = (history.len() >= MIN_HISTORY_POINTS)
        .then(|| robust_z(x, &history))
        .flatten()
    else {
        let why = format!(
            "checkout abandonment: {} same-weekday days of history with checkouts (needs {}), \
             or no variation in them",
            history.len(),
            MIN_HISTORY_POINTS
        );
        return Ok(vec![skipped(rule, subject, why, numbers)]);
    };
    numbers["current"] = json!(x);
    numbers["baseline"] = json!(z.median);
    numbers["mad"] = json!(z.mad);
    numbers["z"] = json!(z.z);
    numbers["change"] = json!(x - z.median);
    // Which count moved: checkouts well above their usual level with purchases flat point
    // to traffic reaching checkout that does not buy; otherwise purchases fell away.
    let expected_purchases = checkouts * (1.0 - z.median);
    let driver = format!(
        "the step begin_checkout → purchase: {purchases:.0} purchases where the usual \
         abandonment would give {expected_purchases:.0} ({checkouts:.0} checkouts; a usual \
         {} day has {baseline_checkouts:.0})",
        scope.day.format("%A"),
    );
    numbers["driver"] = json!("begin_checkout → purchase");
    numbers["driver_share"] = json!(1.0);
    let explanation = format!(
        "On {} {} of checkouts ended without a purchase, against a median of {} on the same \
         weekday over the previous 8 weeks (robust z = {:.1}; threshold: z ≥ {}). Likely \
         driver: {driver}. Dashboard: {}",
        scope.day,
        pct(x),
        pct(z.median),
        z.z,
        config.threshold,
        scope.link(rule),
    );
    Ok(vec![Finding {
        rule,
        subject,
        met: z.z >= config.threshold,
        may_start: true,
        skipped: None,
        severity: Severity::Warning,
        title: format!("Checkout abandonment spiked to {}", pct(x)),
        explanation,
        numbers,
    }])
}

/// `day` then the same weekday 1..=8 weeks before.
fn same_weekdays(day: NaiveDate) -> Vec<NaiveDate> {
    (0..=8).map(|k| day - chrono::Days::new(7 * k)).collect()
}

// ---------------------------------------------------------------------------------------
// revenue_anomaly

/// Yesterday's net revenue (all channels, last-touch rollup, the company's currency) against
/// the same weekday's over the 8 weeks before: |robust z| ≥ threshold, with revenue on a day
/// at least 21 days back. Driver: each channel's departure from its own same-weekday median,
/// xᶜ − medianᶜ; the largest in the direction of the total, with its share of their sum.
async fn revenue_anomaly(
    conn: &mut PgConnection,
    company_id: uuid::Uuid,
    config: RuleConfig,
    scope: &Scope<'_>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let rule = Rule::RevenueAnomaly;
    let subject = "net_revenue".to_string();
    let days = same_weekdays(scope.day);
    let first: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT min(day) FROM rollup_revenue_daily WHERE company_id = $1 AND model = $2
           AND currency = $3",
    )
    .bind(company_id)
    .bind(MODEL)
    .bind(scope.currency)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<(NaiveDate, String, f64, f64)> = sqlx::query_as(
        "SELECT day, channel, sum(net_minor)::float8 / 100, sum(orders)::float8
         FROM rollup_revenue_daily
         WHERE company_id = $1 AND model = $2 AND currency = $3 AND day = ANY($4)
         GROUP BY 1, 2",
    )
    .bind(company_id)
    .bind(MODEL)
    .bind(scope.currency)
    .bind(&days)
    .fetch_all(&mut *conn)
    .await?;
    let mut totals: BTreeMap<NaiveDate, (f64, f64)> = BTreeMap::new();
    let mut channels: BTreeMap<String, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    for (day, channel, net, orders) in &rows {
        let t = totals.entry(*day).or_insert((0.0, 0.0));
        t.0 += net;
        t.1 += orders;
        *channels
            .entry(channel.clone())
            .or_default()
            .entry(*day)
            .or_insert(0.0) += net;
    }
    // Days before the company's first revenue are not "zero revenue" days: left out.
    let history_days: Vec<NaiveDate> = days[1..]
        .iter()
        .copied()
        .filter(|d| first.is_some_and(|f| *d >= f))
        .collect();
    let value = |d: &NaiveDate| totals.get(d).copied().unwrap_or((0.0, 0.0));
    let history: Vec<f64> = history_days.iter().map(|d| value(d).0).collect();
    let orders_history: Vec<f64> = history_days.iter().map(|d| value(d).1).collect();
    let median_orders = crate::stats::median(&orders_history).unwrap_or(0.0);
    let (x, orders) = value(&scope.day);
    let mut numbers = json!({
        "net_revenue": x, "orders": orders, "history": history, "currency": scope.currency,
        "median_orders": median_orders, "threshold": config.threshold,
        "min_volume": config.min_volume, "day": scope.day,
    });
    let long_enough =
        first.is_some_and(|f| f + chrono::Days::new(REVENUE_HISTORY_DAYS) <= scope.day);
    if !long_enough || history.len() < MIN_HISTORY_POINTS {
        let why = format!(
            "revenue anomaly: less than {REVENUE_HISTORY_DAYS} days of revenue history before {}",
            scope.day
        );
        return Ok(vec![skipped(rule, subject, why, numbers)]);
    }
    if median_orders < config.min_volume {
        let why = format!(
            "revenue anomaly: a median of {median_orders} orders on the baseline days (fewer than {})",
            config.min_volume
        );
        return Ok(vec![skipped(rule, subject, why, numbers)]);
    }
    let Some(z) = robust_z(x, &history) else {
        let why = "revenue anomaly: no variation in the baseline days".to_string();
        return Ok(vec![skipped(rule, subject, why, numbers)]);
    };
    let parts: BTreeMap<String, f64> = channels
        .iter()
        .map(|(channel, by_day)| {
            let hist: Vec<f64> = history_days
                .iter()
                .map(|d| by_day.get(d).copied().unwrap_or(0.0))
                .collect();
            let now = by_day.get(&scope.day).copied().unwrap_or(0.0);
            let median = crate::stats::median(&hist).unwrap_or(0.0);
            (channel.clone(), now - median)
        })
        .collect();
    let driver = largest_contributor(&parts);
    let change = if z.median != 0.0 {
        x / z.median - 1.0
    } else {
        0.0
    };
    numbers["current"] = json!(x);
    numbers["baseline"] = json!(z.median);
    numbers["mad"] = json!(z.mad);
    numbers["z"] = json!(z.z);
    numbers["change"] = json!(change);
    numbers["driver"] = json!(driver.as_ref().map(|d| &d.0));
    numbers["driver_share"] = json!(driver.as_ref().map(|d| d.1));
    let direction = if z.z >= 0.0 { "above" } else { "below" };
    let driver_text = match &driver {
        Some((name, share)) => format!(
            " Likely driver: channel {name}, {} of the difference from the usual day.",
            pct(*share)
        ),
        None => String::new(),
    };
    let explanation = format!(
        "Net revenue on {} was {}, {direction} the median of {} on the same weekday over the \
         previous 8 weeks ({}; robust z = {:.1}; threshold: |z| ≥ {}).{driver_text} Dashboard: {}",
        scope.day,
        scope.money(x),
        scope.money(z.median),
        signed_pct(change),
        z.z,
        config.threshold,
        scope.link(rule),
    );
    let word = if z.z >= 0.0 { "spike" } else { "drop" };
    Ok(vec![Finding {
        rule,
        subject,
        met: z.z.abs() >= config.threshold,
        may_start: true,
        skipped: None,
        severity: if z.z.abs() >= 2.0 * config.threshold {
            Severity::Critical
        } else {
            Severity::Warning
        },
        title: format!("Net revenue {word} on {}: {}", scope.day, scope.money(x)),
        explanation,
        numbers,
    }])
}

// ---------------------------------------------------------------------------------------
// email_complaints

/// Complaint rate = complaints ÷ delivered over the last 7 days, for all email and for each
/// campaign: fires at ≥ threshold (0.1 %) with ≥ min_volume delivered; critical at 3× the
/// threshold (0.3 %). Driver (all email): the campaign with most complaints, with its share.
async fn email_complaints(
    conn: &mut PgConnection,
    company_id: uuid::Uuid,
    config: RuleConfig,
    scope: &Scope<'_>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let (from, to) = scope.this_week();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT campaign, sum(delivered)::int8, sum(complaints)::int8 FROM rollup_message_days
         WHERE company_id = $1 AND channel = 'email' AND day BETWEEN $2 AND $3
         GROUP BY 1 ORDER BY 1",
    )
    .bind(company_id)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let complaints: BTreeMap<String, f64> = rows
        .iter()
        .map(|(c, _, n)| (c.clone(), *n as f64))
        .collect();
    let delivered: i64 = rows.iter().map(|r| r.1).sum();
    let complained: i64 = rows.iter().map(|r| r.2).sum();
    let driver = largest_contributor(&complaints);
    let mut findings = vec![complaint_finding(
        scope,
        config,
        None,
        (delivered, complained),
        driver,
    )];
    for (campaign, d, c) in &rows {
        findings.push(complaint_finding(
            scope,
            config,
            Some(campaign),
            (*d, *c),
            None,
        ));
    }
    Ok(findings)
}

fn complaint_finding(
    scope: &Scope<'_>,
    config: RuleConfig,
    campaign: Option<&String>,
    (delivered, complaints): (i64, i64),
    driver: Option<(String, f64)>,
) -> Finding {
    let rule = Rule::EmailComplaints;
    let subject = campaign.map_or("email".to_string(), |c| format!("campaign:{c}"));
    let label = campaign.map_or("all email".to_string(), |c| format!("email campaign {c}"));
    let mut numbers = json!({
        "delivered": delivered, "complaints": complaints, "threshold": config.threshold,
        "critical": 3.0 * config.threshold, "min_volume": config.min_volume,
        "window": scope.this_week(),
    });
    if (delivered as f64) < config.min_volume {
        let why = format!(
            "complaints, {label}: {delivered} delivered in the last 7 days (fewer than {})",
            config.min_volume
        );
        return skipped(rule, subject, why, numbers);
    }
    let rate = complaints as f64 / delivered as f64;
    numbers["current"] = json!(rate);
    numbers["baseline"] = json!(config.threshold);
    numbers["change"] = json!(rate - config.threshold);
    numbers["driver"] = json!(campaign.cloned().or(driver.as_ref().map(|d| d.0.clone())));
    numbers["driver_share"] = json!(driver.as_ref().map_or(1.0, |d| d.1));
    let critical = rate >= 3.0 * config.threshold;
    let driver_text = match (&driver, campaign) {
        (Some((name, share)), None) => format!(
            " Likely driver: campaign {name}, {} of the complaints.",
            pct(*share)
        ),
        _ => String::new(),
    };
    let (a, b) = scope.this_week();
    let explanation = format!(
        "The complaint rate of {label} was {:.2} % ({complaints} complaints for {delivered} \
         delivered) from {a} to {b} (threshold: {:.2} %, critical at {:.2} %). Mailbox \
         providers start filtering a sender above about 0.3 %.{driver_text} Dashboard: {}",
        rate * 100.0,
        config.threshold * 100.0,
        3.0 * config.threshold * 100.0,
        scope.link(rule),
    );
    Finding {
        rule,
        subject,
        met: rate >= config.threshold,
        may_start: true,
        skipped: None,
        severity: if critical {
            Severity::Critical
        } else {
            Severity::Warning
        },
        title: format!("Email complaints at {:.2} % ({label})", rate * 100.0),
        explanation,
        numbers,
    }
}

// ---------------------------------------------------------------------------------------
// creative_fatigue

/// A creative whose latest verdict on or before `day` is `fatigued` (with a CTR drop ≥
/// threshold on ≥ min_volume recent impressions), starting a firing only when its previous
/// recorded verdict was not `fatigued` (it *entered* fatigue).
async fn creative_fatigue(
    conn: &mut PgConnection,
    company_id: uuid::Uuid,
    config: RuleConfig,
    scope: &Scope<'_>,
) -> Result<Vec<Finding>, sqlx::Error> {
    type Row = (
        String,
        NaiveDate,
        String,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        i64,
        i64,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT DISTINCT ON (h.creative_id) h.creative_id, h.day, h.status, h.baseline_ctr,
                h.recent_ctr, h.drop, h.p_value, h.baseline_impressions, h.recent_impressions,
                h.explanation,
                (SELECT p.status FROM creative_fatigue_history p
                 WHERE p.company_id = h.company_id AND p.creative_id = h.creative_id
                   AND p.day < h.day ORDER BY p.day DESC LIMIT 1)
         FROM creative_fatigue_history h
         WHERE h.company_id = $1 AND h.day <= $2 AND h.day > $2::date - 7
         ORDER BY h.creative_id, h.day DESC",
    )
    .bind(company_id)
    .bind(scope.day)
    .fetch_all(&mut *conn)
    .await?;
    let rule = Rule::CreativeFatigue;
    let mut findings = Vec::new();
    for (creative, day, status, base, recent, drop, p, base_imp, recent_imp, why, previous) in rows
    {
        let subject = format!("creative:{creative}");
        let numbers = json!({
            "creative_id": creative, "day": day, "status": status, "previous_status": previous,
            "baseline": base, "current": recent, "change": drop.map(|d| -d), "p_value": p,
            "baseline_impressions": base_imp, "impressions": recent_imp,
            "threshold": config.threshold, "min_volume": config.min_volume,
            "driver": creative, "driver_share": 1.0,
        });
        if (recent_imp as f64) < config.min_volume {
            let why = format!(
                "creative {creative}: {recent_imp} impressions in its last 7 days (fewer than {})",
                config.min_volume
            );
            findings.push(skipped(rule, subject, why, numbers));
            continue;
        }
        let drop = drop.unwrap_or(0.0);
        let met = status == "fatigued" && drop >= config.threshold;
        let explanation = format!(
            "Creative {creative} is {status} as of {day}: its CTR over the last 7 days is {} \
             against {} in its first 7 live days ({}; p = {}), on {recent_imp} impressions \
             (baseline week {base_imp}; threshold: a drop of {} or more). {why} Likely driver: \
             creative {creative} itself — rotate in a new variant or refresh its concept. \
             Dashboard: {}",
            recent.map_or("n/a".into(), pct),
            base.map_or("n/a".into(), pct),
            signed_pct(-drop),
            p.map_or("n/a".into(), |p| format!("{p:.4}")),
            pct(config.threshold),
            scope.link(rule),
        );
        findings.push(Finding {
            rule,
            subject,
            met,
            // Entering fatigue *on D*: a verdict of an earlier day keeps a firing alert
            // going but does not start one late.
            may_start: day == scope.day && previous.as_deref() != Some("fatigued"),
            skipped: None,
            severity: Severity::Warning,
            title: format!(
                "Creative {creative} is {status} (CTR {})",
                signed_pct(-drop)
            ),
            explanation,
            numbers,
        });
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_contributor_follows_the_direction_of_the_total() {
        let parts: BTreeMap<String, f64> =
            [("a".into(), 30.0), ("b".into(), 80.0), ("c".into(), -10.0)]
                .into_iter()
                .collect();
        let (name, share) = largest_contributor(&parts).unwrap();
        assert_eq!(name, "b");
        assert!((share - 0.8).abs() < 1e-12);
        let flat: BTreeMap<String, f64> = [("a".into(), 0.0)].into_iter().collect();
        assert!(largest_contributor(&flat).is_none());
    }

    #[test]
    fn cpa_decomposition_adds_up_to_the_change() {
        // Last week: 1000 spend / 50 conversions = CPA 20. This week: Social spends 900 for
        // 20, Search 300 for 20: CPA 30. Parts at CPA₀ = 20: Social 900 − 400 = 500,
        // Search 300 − 400 = −100; total 400 = (30 − 20)·40.
        let scope = Scope {
            day: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            currency: "EUR",
            app_link: "https://lux.test/app/x".into(),
        };
        let mut spend = Cells::new();
        let mut orders = Cells::new();
        for (ch, s0, c0, s1, c1) in [
            ("Paid Social", 500.0, 25.0, 900.0, 20.0),
            ("Paid Search", 500.0, 25.0, 300.0, 20.0),
        ] {
            spend.insert((ch.into(), "c".into(), false), s0);
            spend.insert((ch.into(), "c".into(), true), s1);
            orders.insert((ch.into(), "c".into(), false), c0);
            orders.insert((ch.into(), "c".into(), true), c1);
        }
        let f = cpa_finding(&scope, Rule::CpaWow.default_config(), None, &spend, &orders);
        assert!(f.met);
        assert_eq!(f.numbers["current"], json!(30.0));
        assert_eq!(f.numbers["driver"], json!("Paid Social"));
        assert!((f.numbers["driver_share"].as_f64().unwrap() - 1.25).abs() < 1e-12);
        assert!(
            f.explanation
                .contains("channel Paid Social, 125.0 % of the change"),
            "{}",
            f.explanation
        );
    }
}
