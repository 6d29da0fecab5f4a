//! The six rules, their defaults, and a company's alert settings (`alert_settings`): who is
//! told (email addresses, a Slack incoming webhook), when not (quiet hours in the company's
//! zone), when the scheduler evaluates (the morning hour), and per-rule overrides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::AlertError;

/// A rule of SPEC §8.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    CpaWow,
    FunnelStepDrop,
    CheckoutAbandonmentSpike,
    RevenueAnomaly,
    EmailComplaints,
    CreativeFatigue,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::CpaWow,
        Rule::FunnelStepDrop,
        Rule::CheckoutAbandonmentSpike,
        Rule::RevenueAnomaly,
        Rule::EmailComplaints,
        Rule::CreativeFatigue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::CpaWow => "cpa_wow",
            Rule::FunnelStepDrop => "funnel_step_drop",
            Rule::CheckoutAbandonmentSpike => "checkout_abandonment_spike",
            Rule::RevenueAnomaly => "revenue_anomaly",
            Rule::EmailComplaints => "email_complaints",
            Rule::CreativeFatigue => "creative_fatigue",
        }
    }

    pub fn parse(text: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The default threshold and minimum volume (docs/alerts.md says why each).
    pub fn default_config(self) -> RuleConfig {
        let (threshold, min_volume) = match self {
            // CPA up more than 20 %, with ≥ 5 conversions in each week.
            Rule::CpaWow => (0.20, 5.0),
            // A step's conversion down ≥ 20 % (relative), ≥ 100 sessions entering it each week.
            Rule::FunnelStepDrop => (0.20, 100.0),
            // Robust z ≥ 3, with ≥ 20 checkouts yesterday.
            Rule::CheckoutAbandonmentSpike => (3.0, 20.0),
            // Robust z ≥ 3.5 either way, with a median of ≥ 10 orders on the baseline days.
            Rule::RevenueAnomaly => (3.5, 10.0),
            // Complaint rate ≥ 0.1 % with ≥ 1,000 delivered.
            Rule::EmailComplaints => (0.001, 1000.0),
            // A creative entering `fatigued` with a CTR drop ≥ 20 % on ≥ 10,000 recent impressions.
            Rule::CreativeFatigue => (0.20, 10_000.0),
        };
        RuleConfig {
            threshold,
            min_volume,
        }
    }

    /// The dashboard page an alert of this rule links to.
    pub fn page(self) -> &'static str {
        match self {
            Rule::CpaWow => "acquisition",
            Rule::FunnelStepDrop | Rule::CheckoutAbandonmentSpike => "funnel",
            Rule::RevenueAnomaly => "executive",
            Rule::EmailComplaints => "messages",
            Rule::CreativeFatigue => "creatives",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's threshold and minimum volume. Both finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleConfig {
    pub threshold: f64,
    pub min_volume: f64,
}

impl RuleConfig {
    pub fn parse(threshold: f64, min_volume: f64) -> Result<RuleConfig, String> {
        if !threshold.is_finite() || threshold <= 0.0 {
            return Err(format!(
                "threshold must be a positive number, not {threshold}"
            ));
        }
        if !min_volume.is_finite() || min_volume < 0.0 {
            return Err(format!("min_volume must be 0 or more, not {min_volume}"));
        }
        Ok(RuleConfig {
            threshold,
            min_volume,
        })
    }
}

/// Local hours `[start, end)` when nothing is delivered; `22-07` wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: u8,
    end: u8,
}

impl QuietHours {
    /// `HH-HH`, each hour 0..=23, start ≠ end.
    pub fn parse(text: &str) -> Result<QuietHours, String> {
        let bad = || format!("quiet hours must look like 22-07 (local hours 0-23), not {text:?}");
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let start: u8 = a.trim().parse().map_err(|_| bad())?;
        let end: u8 = b.trim().parse().map_err(|_| bad())?;
        if start > 23 || end > 23 || start == end {
            return Err(bad());
        }
        Ok(QuietHours { start, end })
    }

    pub fn contains(self, hour: u8) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&hour)
        } else {
            hour >= self.start || hour < self.end
        }
    }

    pub fn end(self) -> u8 {
        self.end
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}-{:02}", self.start, self.end)
    }
}

/// A company's alert settings; the defaults when it configured nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    pub emails: Vec<String>,
    pub slack_webhook: Option<url::Url>,
    pub quiet_hours: Option<QuietHours>,
    pub morning_hour: u8,
    /// Overrides only; [`AlertSettings::rule`] falls back to the defaults.
    pub rules: BTreeMap<Rule, RuleConfig>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            emails: Vec::new(),
            slack_webhook: None,
            quiet_hours: None,
            morning_hour: 7,
            rules: BTreeMap::new(),
        }
    }
}

/// An email address as configured: trimmed, one `@`, no spaces or angle brackets (it goes
/// into a `To:` header).
pub fn parse_email(text: &str) -> Result<String, String> {
    let t = text.trim();
    let ok = t.len() <= 254
        && t.split('@').count() == 2
        && t.split('@').all(|part| !part.is_empty())
        && !t.chars().any(|c| c.is_whitespace() || "<>,;\"".contains(c));
    if ok {
        Ok(t.to_string())
    } else {
        Err(format!("{text:?} is not an email address"))
    }
}

/// A Slack incoming webhook URL: http(s) with a host.
pub fn parse_webhook(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|_| format!("{text:?} is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!(
            "the Slack webhook must be an https URL, not {text:?}"
        ));
    }
    Ok(url)
}

/// emails, slack_webhook, quiet_start, quiet_end, morning_hour, rules.
type SettingsRow = (
    Vec<String>,
    Option<String>,
    Option<i16>,
    Option<i16>,
    i16,
    Value,
);

impl AlertSettings {
    pub fn rule(&self, rule: Rule) -> RuleConfig {
        self.rules
            .get(&rule)
            .copied()
            .unwrap_or_else(|| rule.default_config())
    }

    pub async fn load(pool: &PgPool, company_id: Uuid) -> Result<AlertSettings, AlertError> {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        let row: Option<SettingsRow> = sqlx::query_as(
            "SELECT emails, slack_webhook, quiet_start, quiet_end, morning_hour, rules
                 FROM alert_settings WHERE company_id = $1",
        )
        .bind(company_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some((emails, slack, quiet_start, quiet_end, morning_hour, rules)) = row else {
            return Ok(AlertSettings::default());
        };
        let quiet_hours = match (quiet_start, quiet_end) {
            (Some(s), Some(e)) => Some(QuietHours::parse(&format!("{s}-{e}"))?),
            _ => None,
        };
        Ok(AlertSettings {
            emails,
            slack_webhook: slack.as_deref().map(parse_webhook).transpose()?,
            quiet_hours,
            morning_hour: u8::try_from(morning_hour).map_err(|e| e.to_string())?,
            rules: rules_from_json(&rules)?,
        })
    }

    pub async fn save(&self, pool: &PgPool, company_id: Uuid) -> Result<(), AlertError> {
        let mut tx = crate::db::begin_for_company(pool, company_id).await?;
        sqlx::query(
            "INSERT INTO alert_settings (company_id, emails, slack_webhook, quiet_start, quiet_end,
                 morning_hour, rules, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             ON CONFLICT (company_id) DO UPDATE SET emails = $2, slack_webhook = $3,
                 quiet_start = $4, quiet_end = $5, morning_hour = $6, rules = $7, updated_at = now()",
        )
        .bind(company_id)
        .bind(&self.emails)
        .bind(self.slack_webhook.as_ref().map(url::Url::as_str))
        .bind(self.quiet_hours.map(|q| i16::from(q.start)))
        .bind(self.quiet_hours.map(|q| i16::from(q.end)))
        .bind(i16::from(self.morning_hour))
        .bind(serde_json::to_value(&self.rules).expect("rules serialize"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The settings as JSON (the API's and `lux alerts configure`'s answer), every rule with
    /// its effective threshold and minimum volume.
    pub fn to_json(&self) -> Value {
        let rules: serde_json::Map<String, Value> = Rule::ALL
            .iter()
            .map(|r| {
                let c = self.rule(*r);
                (
                    r.as_str().to_string(),
                    serde_json::json!({"threshold": c.threshold, "min_volume": c.min_volume,
                                       "default": !self.rules.contains_key(r)}),
                )
            })
            .collect();
        serde_json::json!({
            "emails": self.emails,
            "slack_webhook": self.slack_webhook.as_ref().map(url::Url::as_str),
            "quiet_hours": self.quiet_hours.map(|q| q.to_string()),
            "morning_hour": self.morning_hour,
            "rules": rules,
        })
    }
}

impl From<String> for AlertError {
    fn from(text: String) -> Self {
        AlertError::Settings(text)
    }
}

/// `{"rule": {"threshold": x, "min_volume": n}}`, every rule known and every number valid.
pub fn rules_from_json(value: &Value) -> Result<BTreeMap<Rule, RuleConfig>, String> {
    let Some(map) = value.as_object() else {
        return Err("rules must be an object keyed by rule name".into());
    };
    let mut rules = BTreeMap::new();
    for (name, config) in map {
        let rule = Rule::parse(name).ok_or_else(|| {
            format!(
                "unknown rule {name:?}; rules: {}",
                Rule::ALL.map(Rule::as_str).join(", ")
            )
        })?;
        let number = |field: &str| {
            config
                .get(field)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("rules.{name}.{field} must be a number"))
        };
        rules.insert(
            rule,
            RuleConfig::parse(number("threshold")?, number("min_volume")?)?,
        );
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_parse_and_wrap_past_midnight() {
        let q = QuietHours::parse("22-07").unwrap();
        assert!(q.contains(23) && q.contains(0) && q.contains(6));
        assert!(!q.contains(7) && !q.contains(21));
        let day = QuietHours::parse("9-17").unwrap();
        assert!(day.contains(9) && !day.contains(17));
        for bad in ["", "22", "25-07", "7-7", "a-b"] {
            assert!(QuietHours::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rule_overrides_are_validated() {
        let ok = serde_json::json!({"cpa_wow": {"threshold": 0.3, "min_volume": 10}});
        assert_eq!(rules_from_json(&ok).unwrap()[&Rule::CpaWow].threshold, 0.3);
        for bad in [
            serde_json::json!({"nope": {"threshold": 1, "min_volume": 1}}),
            serde_json::json!({"cpa_wow": {"threshold": -1, "min_volume": 1}}),
            serde_json::json!({"cpa_wow": {"threshold": 1}}),
            serde_json::json!([]),
        ] {
            assert!(rules_from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_and_webhooks_are_validated() {
        assert_eq!(
            parse_email(" ops@shop.example ").unwrap(),
            "ops@shop.example"
        );
        for bad in ["", "ops", "a@b@c", "a b@c.d", "<a@b.c>"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
        assert!(parse_webhook("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(parse_webhook("ftp://x").is_err());
    }
}
