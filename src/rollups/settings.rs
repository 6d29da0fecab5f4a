//! Per-company rollup settings, stored under `companies.settings -> 'rollups'`: what makes a
//! session engaged (SPEC §7, GA4's definition by default) and the company's own funnels.
//! Every field is optional there; what is absent takes the spec's value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Bumped whenever the rollup rules themselves change: every day is then recomputed (3: the
/// creative rollups, and a touch's creative is its session's `creative_id` before
/// `utm_content`; 4: the attribution paths rollup of the dashboards).
pub const RULES_VERSION: u32 = 4;

/// The funnels every company has. A company's own funnels cannot take these names.
pub const BUILT_IN_FUNNELS: [(&str, &[&str]); 2] = [
    (
        "commerce",
        &["page_view", "add_to_cart", "begin_checkout", "purchase"],
    ),
    ("lead", &["page_view", "lead_submit"]),
];

/// The key events of GA4's engaged-session definition, as SPEC §7 lists them.
const DEFAULT_KEY_EVENTS: [&str; 5] = [
    "add_to_cart",
    "begin_checkout",
    "purchase",
    "lead_submit",
    "signup",
];

/// Rollup settings of one company, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollupSettings {
    /// A session engaged this many seconds (or more) is engaged.
    pub engaged_seconds: u32,
    /// A session with this many page views (or more) is engaged.
    pub engaged_page_views: u32,
    /// A session with one of these events is engaged.
    pub key_events: BTreeSet<String>,
    /// The company's own funnels: name → event names of the steps, in order.
    pub funnels: BTreeMap<String, Vec<String>>,
}

impl Default for RollupSettings {
    fn default() -> Self {
        RollupSettings {
            engaged_seconds: 10,
            engaged_page_views: 2,
            key_events: DEFAULT_KEY_EVENTS.iter().map(|e| e.to_string()).collect(),
            funnels: BTreeMap::new(),
        }
    }
}

/// A funnel: a name and the events of its steps, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funnel {
    pub name: String,
    pub steps: Vec<String>,
}

impl RollupSettings {
    pub fn from_company_settings(settings: &serde_json::Value) -> Result<Self, SettingsError> {
        let parsed = match settings.get("rollups") {
            None | Some(serde_json::Value::Null) => RollupSettings::default(),
            Some(value) => {
                serde_path_to_error::deserialize(value).map_err(|e| SettingsError::Unreadable {
                    path: e.path().to_string(),
                    problem: e.inner().to_string(),
                })?
            }
        };
        parsed.validate()?;
        Ok(parsed)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(1..=3600).contains(&self.engaged_seconds) {
            return Err(SettingsError::OutOfRange(
                "engaged_seconds must be 1 to 3600",
            ));
        }
        if !(1..=100).contains(&self.engaged_page_views) {
            return Err(SettingsError::OutOfRange(
                "engaged_page_views must be 1 to 100",
            ));
        }
        for event in &self.key_events {
            check_event_name(event)?;
        }
        for (name, steps) in &self.funnels {
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid_name {
                return Err(SettingsError::FunnelName(name.clone()));
            }
            if BUILT_IN_FUNNELS
                .iter()
                .any(|(built_in, _)| built_in == name)
            {
                return Err(SettingsError::BuiltInFunnel(name.clone()));
            }
            if !(2..=10).contains(&steps.len()) {
                return Err(SettingsError::FunnelSteps(name.clone()));
            }
            for event in steps {
                check_event_name(event)?;
            }
        }
        Ok(())
    }

    /// The built-in funnels, then the company's own, by name.
    pub fn funnels(&self) -> Vec<Funnel> {
        let built_in = BUILT_IN_FUNNELS.iter().map(|(name, steps)| Funnel {
            name: name.to_string(),
            steps: steps.iter().map(|s| s.to_string()).collect(),
        });
        let own = self.funnels.iter().map(|(name, steps)| Funnel {
            name: name.clone(),
            steps: steps.clone(),
        });
        built_in.chain(own).collect()
    }

    /// Every event name a rollup looks at: funnel steps and key events.
    pub fn event_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.key_events.clone();
        for funnel in self.funnels() {
            names.extend(funnel.steps);
        }
        names.into_iter().collect()
    }

    /// The rules and settings in words, recorded with every run: a run under other
    /// parameters than the last one recomputes every day.
    pub fn parameters(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RollupSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.key_events.iter().map(String::as_str).collect();
        let funnels: Vec<String> = self
            .funnels()
            .iter()
            .map(|f| format!("{}:{}", f.name, f.steps.join(">")))
            .collect();
        write!(
            f,
            "v{RULES_VERSION} engaged={}s/{}pv key=[{}] funnels=[{}]",
            self.engaged_seconds,
            self.engaged_page_views,
            keys.join(","),
            funnels.join(";")
        )
    }
}

/// Event names as ingestion accepts them (a funnel of names no event can have is a typo).
fn check_event_name(name: &str) -> Result<(), SettingsError> {
    if crate::ids::EventName::is_valid(name) {
        Ok(())
    } else {
        Err(SettingsError::EventName(name.to_string()))
    }
}

/// Why a company's rollup settings could not be read or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("rollup settings: {path}: {problem}")]
    Unreadable { path: String, problem: String },
    #[error("rollup settings: {0}")]
    OutOfRange(&'static str),
    #[error("rollup settings: funnel name {0:?} must be 1 to 64 of a-z, 0-9 and _")]
    FunnelName(String),
    #[error("rollup settings: {0:?} is a built-in funnel; choose another name")]
    BuiltInFunnel(String),
    #[error("rollup settings: funnel {0:?} needs 2 to 10 steps")]
    FunnelSteps(String),
    #[error(
        "rollup settings: {0:?} is not an event name (a letter, then letters, digits, _ . : or -)"
    )]
    EventName(String),
    #[error("--funnel {0:?}: write NAME=event,event,...")]
    FunnelSyntax(String),
    #[error("the company has no funnel {0:?}")]
    NoFunnel(String),
}

/// Why a change to a company's settings was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no company {0} (see `lux company list`)")]
    NoCompany(crate::ids::CompanyId),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A change to a company's rollup settings, from the command line: only what is given
/// changes.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct SettingsChange {
    /// Seconds of engagement that make a session engaged.
    #[arg(long)]
    pub engaged_seconds: Option<u32>,
    /// Page views that make a session engaged.
    #[arg(long)]
    pub engaged_page_views: Option<u32>,
    /// The key events that make a session engaged (comma-separated; replaces the list).
    #[arg(long, value_delimiter = ',')]
    pub key_events: Option<Vec<String>>,
    /// Adds or replaces a funnel: NAME=event,event,... (repeatable).
    #[arg(long = "funnel")]
    pub funnels: Vec<String>,
    /// Removes a funnel of the company (repeatable).
    #[arg(long = "remove-funnel")]
    pub remove_funnels: Vec<String>,
    /// Back to the defaults (then applies the other options).
    #[arg(long)]
    pub reset: bool,
}

impl SettingsChange {
    fn is_empty(&self) -> bool {
        !self.reset
            && self.engaged_seconds.is_none()
            && self.engaged_page_views.is_none()
            && self.key_events.is_none()
            && self.funnels.is_empty()
            && self.remove_funnels.is_empty()
    }

    /// The stored settings with this change applied, validated.
    pub fn apply(&self, stored: &serde_json::Value) -> Result<RollupSettings, SettingsError> {
        let mut settings = if self.reset {
            RollupSettings::default()
        } else {
            RollupSettings::from_company_settings(stored)?
        };
        if let Some(seconds) = self.engaged_seconds {
            settings.engaged_seconds = seconds;
        }
        if let Some(views) = self.engaged_page_views {
            settings.engaged_page_views = views;
        }
        if let Some(events) = &self.key_events {
            settings.key_events = events.iter().map(|e| e.trim().to_string()).collect();
        }
        for funnel in &self.funnels {
            let (name, steps) = funnel
                .split_once('=')
                .ok_or_else(|| SettingsError::FunnelSyntax(funnel.clone()))?;
            let steps = steps.split(',').map(|s| s.trim().to_string()).collect();
            settings.funnels.insert(name.trim().to_string(), steps);
        }
        for name in &self.remove_funnels {
            if settings.funnels.remove(name).is_none() {
                return Err(SettingsError::NoFunnel(name.clone()));
            }
        }
        settings.validate()?;
        Ok(settings)
    }
}

/// Applies `change` to a company's stored rollup settings (as the owner) and returns them.
pub async fn change(
    owner: &sqlx::PgPool,
    company_id: crate::ids::CompanyId,
    change: &SettingsChange,
) -> Result<RollupSettings, ChangeError> {
    let mut tx = owner.begin().await?;
    let stored: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT settings FROM companies WHERE company_id = $1 FOR UPDATE")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(stored) = stored else {
        return Err(ChangeError::NoCompany(company_id));
    };
    if change.is_empty() {
        tx.commit().await?;
        return Ok(RollupSettings::from_company_settings(&stored)?);
    }
    let settings = change.apply(&stored)?;
    sqlx::query(
        "UPDATE companies SET settings = jsonb_set(settings, '{rollups}', $2)
         WHERE company_id = $1",
    )
    .bind(company_id)
    .bind(serde_json::to_value(&settings).expect("settings serialise"))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_settings_are_the_specs_values() {
        let s = RollupSettings::from_company_settings(&json!({})).unwrap();
        assert_eq!(s.engaged_seconds, 10);
        assert_eq!(s.engaged_page_views, 2);
        assert!(s.key_events.contains("lead_submit"));
        let names: Vec<String> = s.funnels().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["commerce", "lead"]);
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_validates() {
        let stored = json!({"rollups": {"engaged_seconds": 30}});
        let change = SettingsChange {
            funnels: vec!["trial=page_view,signup,purchase".into()],
            ..SettingsChange::default()
        };
        let s = change.apply(&stored).unwrap();
        assert_eq!(s.engaged_seconds, 30);
        assert_eq!(s.funnels["trial"], ["page_view", "signup", "purchase"]);
        assert!(s.parameters().contains("trial:page_view>signup>purchase"));

        let bad = |c: SettingsChange| c.apply(&stored).unwrap_err();
        assert!(
            bad(SettingsChange {
                funnels: vec!["commerce=a,b".into()],
                ..SettingsChange::default()
            })
            .to_string()
            .contains("built-in")
        );
        assert!(
            bad(SettingsChange {
                funnels: vec!["x=page_view".into()],
                ..SettingsChange::default()
            })
            .to_string()
            .contains("2 to 10 steps")
        );
        assert!(
            bad(SettingsChange {
                key_events: Some(vec!["add to cart".into()]),
                ..SettingsChange::default()
            })
            .to_string()
            .contains("not an event name")
        );
        assert!(
            bad(SettingsChange {
                engaged_seconds: Some(0),
                ..SettingsChange::default()
            })
            .to_string()
            .contains("engaged_seconds")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            RollupSettings::from_company_settings(&json!({"rollups": {"engaged": 3}})).unwrap_err();
        assert!(err.to_string().contains("engaged"), "{err}");
    }
}
