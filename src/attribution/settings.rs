//! Per-company attribution settings, stored under `companies.settings -> 'attribution'`.
//! Every field is optional there; what is absent takes the spec's value (SPEC §6).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Bumped whenever the rules themselves change (not the settings): every order computed under
/// an older version is attributed again by the next run.
pub const RULES_VERSION: u32 = 1;

/// The credit models of the credit table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    FirstTouch,
    LastTouch,
    Linear,
    TimeDecay,
    PositionBased,
    LastNonDirect,
}

impl Model {
    pub const ALL: [Model; 6] = [
        Model::FirstTouch,
        Model::LastTouch,
        Model::Linear,
        Model::TimeDecay,
        Model::PositionBased,
        Model::LastNonDirect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Model::FirstTouch => "first_touch",
            Model::LastTouch => "last_touch",
            Model::Linear => "linear",
            Model::TimeDecay => "time_decay",
            Model::PositionBased => "position_based",
            Model::LastNonDirect => "last_non_direct",
        }
    }

    pub fn parse(text: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// Every model's name, comma-separated (for messages).
    pub fn names() -> String {
        let all: Vec<&str> = Model::ALL.iter().map(|m| m.as_str()).collect();
        all.join(", ")
    }
}

/// Attribution settings of one company, validated: every value here is usable as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionSettings {
    /// Sessions that started this many days before the purchase (or less) are touches.
    pub lookback_days: u32,
    /// The last touch must have started this many hours before the purchase (or less).
    pub last_touch_hours: u32,
    /// Time decay: a touch this many hours older than another earns half its credit.
    pub half_life_hours: u32,
    /// Position based: percent of the credit to the first and to the last touch; the middle
    /// touches share the rest.
    pub position_first_percent: u32,
    pub position_last_percent: u32,
    /// The models written to the credit table. First and last touch are always stored on
    /// the order itself.
    pub models: BTreeSet<Model>,
    /// Channels whose sessions do not count as touches (e.g. "Unassigned").
    pub excluded_channels: BTreeSet<String>,
}

impl Default for AttributionSettings {
    fn default() -> Self {
        AttributionSettings {
            lookback_days: 30,
            last_touch_hours: 72,
            half_life_hours: 7 * 24,
            position_first_percent: 40,
            position_last_percent: 40,
            models: Model::ALL.into_iter().collect(),
            excluded_channels: BTreeSet::new(),
        }
    }
}

impl AttributionSettings {
    /// Reads the settings from a company's `settings` JSON (its `attribution` member), with
    /// the defaults for what is absent.
    pub fn from_company_settings(settings: &serde_json::Value) -> Result<Self, SettingsError> {
        let parsed = match settings.get("attribution") {
            None | Some(serde_json::Value::Null) => AttributionSettings::default(),
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
        let out_of_range = |rule| Err(SettingsError::OutOfRange(rule));
        if !(1..=365).contains(&self.lookback_days) {
            return out_of_range("lookback_days must be 1 to 365");
        }
        if self.last_touch_hours == 0 || self.last_touch_hours > self.lookback_days * 24 {
            return out_of_range("last_touch_hours must be 1 to the lookback window");
        }
        if self.half_life_hours == 0 {
            return out_of_range("half_life_hours must be at least 1");
        }
        if self.position_first_percent > 100
            || self.position_last_percent > 100
            || self.position_first_percent + self.position_last_percent > 100
        {
            return out_of_range(
                "position_first_percent + position_last_percent must not exceed 100",
            );
        }
        Ok(())
    }

    /// The rules in words, stored on every order so each number can be traced to the rules
    /// that made it, and an order computed under other rules is redone.
    pub fn rules(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for AttributionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models: Vec<&str> = self.models.iter().map(|m| m.as_str()).collect();
        let excluded: Vec<&str> = self.excluded_channels.iter().map(String::as_str).collect();
        write!(
            f,
            "v{RULES_VERSION} lookback={}d last_touch={}h half_life={}h position={}/{} models={} excluded=[{}]",
            self.lookback_days,
            self.last_touch_hours,
            self.half_life_hours,
            self.position_first_percent,
            self.position_last_percent,
            models.join(","),
            excluded.join(","),
        )
    }
}

/// Changes to a company's attribution settings: only the fields given change. Also the
/// options of `lux company attribution` (the field docs are its help).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct SettingsChange {
    /// Sessions that started this many days before a purchase count as touches (default 30).
    #[arg(long)]
    pub lookback_days: Option<u32>,
    /// The last touch must have started this many hours before the purchase (default 72).
    #[arg(long)]
    pub last_touch_hours: Option<u32>,
    /// Time decay: a touch this many hours older earns half the credit (default 168).
    #[arg(long)]
    pub half_life_hours: Option<u32>,
    /// Position based: percent of the credit to the first touch (default 40).
    #[arg(long)]
    pub position_first_percent: Option<u32>,
    /// Position based: percent of the credit to the last touch (default 40).
    #[arg(long)]
    pub position_last_percent: Option<u32>,
    /// Credit models to compute, comma-separated (default: all six).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// A channel whose sessions do not count as touches (repeatable).
    #[arg(long = "exclude-channel")]
    pub exclude_channels: Vec<String>,
    /// A channel to count again (repeatable).
    #[arg(long = "include-channel")]
    pub include_channels: Vec<String>,
    /// Back to the defaults for everything (then apply the other options, if any).
    #[arg(long)]
    pub reset: bool,
}

impl SettingsChange {
    pub fn is_empty(&self) -> bool {
        !self.reset
            && self.lookback_days.is_none()
            && self.last_touch_hours.is_none()
            && self.half_life_hours.is_none()
            && self.position_first_percent.is_none()
            && self.position_last_percent.is_none()
            && self.models.is_none()
            && self.exclude_channels.is_empty()
            && self.include_channels.is_empty()
    }

    /// Applies the change to the stored `attribution` object (fields not set there keep
    /// following the defaults) and returns the new object, checked.
    pub fn apply(
        &self,
        stored: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, SettingsError> {
        let mut object = match stored {
            Some(serde_json::Value::Object(o)) if !self.reset => o.clone(),
            _ => serde_json::Map::new(),
        };
        let mut set = |key: &str, value: Option<u32>| {
            if let Some(v) = value {
                object.insert(key.to_string(), v.into());
            }
        };
        set("lookback_days", self.lookback_days);
        set("last_touch_hours", self.last_touch_hours);
        set("half_life_hours", self.half_life_hours);
        set("position_first_percent", self.position_first_percent);
        set("position_last_percent", self.position_last_percent);
        if let Some(models) = &self.models {
            for name in models {
                Model::parse(name).ok_or_else(|| SettingsError::NoModel(name.clone()))?;
            }
            object.insert("models".into(), models.clone().into());
        }
        if !self.exclude_channels.is_empty() || !self.include_channels.is_empty() {
            let mut excluded: BTreeSet<String> = object
                .get("excluded_channels")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            excluded.extend(self.exclude_channels.iter().cloned());
            for channel in &self.include_channels {
                excluded.remove(channel);
            }
            object.insert(
                "excluded_channels".into(),
                serde_json::to_value(excluded).expect("strings"),
            );
        }
        let value = serde_json::Value::Object(object);
        AttributionSettings::from_company_settings(&serde_json::json!({"attribution": value}))?;
        Ok(value)
    }
}

/// Why a company's attribution settings could not be read or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("attribution settings: {path}: {problem}")]
    Unreadable { path: String, problem: String },
    #[error("attribution settings: {0}")]
    OutOfRange(&'static str),
    #[error("no model {0:?}: use {models}", models = Model::names())]
    NoModel(String),
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

/// Changes a company's attribution settings (as the owner) and returns the settings now in
/// force. The next attribution run redoes every order under them.
pub async fn change(
    owner: &sqlx::PgPool,
    company_id: crate::ids::CompanyId,
    change: &SettingsChange,
) -> Result<AttributionSettings, ChangeError> {
    let mut tx = owner.begin().await?;
    let settings: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT settings FROM companies WHERE company_id = $1 FOR UPDATE")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(settings) = settings else {
        return Err(ChangeError::NoCompany(company_id));
    };
    if !change.is_empty() {
        let attribution = change.apply(settings.get("attribution"))?;
        sqlx::query(
            "UPDATE companies SET settings = jsonb_set(settings, '{attribution}', $2)
             WHERE company_id = $1",
        )
        .bind(company_id)
        .bind(&attribution)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(AttributionSettings::from_company_settings(
            &serde_json::json!({ "attribution": attribution }),
        )?);
    }
    tx.commit().await?;
    Ok(AttributionSettings::from_company_settings(&settings)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_settings_are_the_specs_values() {
        let s = AttributionSettings::from_company_settings(&json!({})).unwrap();
        assert_eq!(s, AttributionSettings::default());
        assert_eq!(
            s.rules(),
            "v1 lookback=30d last_touch=72h half_life=168h position=40/40 \
             models=first_touch,last_touch,linear,time_decay,position_based,last_non_direct excluded=[]"
        );
    }

    #[test]
    fn partial_settings_keep_the_other_defaults_and_bad_ones_say_why() {
        let s = AttributionSettings::from_company_settings(
            &json!({"attribution": {"lookback_days": 7, "excluded_channels": ["Direct"]}}),
        )
        .unwrap();
        assert_eq!(s.lookback_days, 7);
        assert_eq!(s.last_touch_hours, 72);
        assert!(s.excluded_channels.contains("Direct"));

        let err = AttributionSettings::from_company_settings(
            &json!({"attribution": {"lookback_dayz": 7}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("lookback_dayz"), "{err}");
        let err = AttributionSettings::from_company_settings(
            &json!({"attribution": {"lookback_days": 1, "last_touch_hours": 72}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("last_touch_hours"), "{err}");
        let err = AttributionSettings::from_company_settings(
            &json!({"attribution": {"models": ["linear", "u_shaped"]}}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("models"), "{err}");
    }
}

#[cfg(test)]
mod change_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_touch_only_what_is_given_and_bad_ones_are_refused() {
        let stored = json!({"lookback_days": 14, "excluded_channels": ["Direct"]});
        let change = SettingsChange {
            last_touch_hours: Some(24),
            exclude_channels: vec!["Unassigned".into()],
            include_channels: vec!["Direct".into()],
            ..SettingsChange::default()
        };
        assert_eq!(
            change.apply(Some(&stored)).unwrap(),
            json!({"lookback_days": 14, "last_touch_hours": 24,
                   "excluded_channels": ["Unassigned"]})
        );
        let reset = SettingsChange {
            reset: true,
            ..SettingsChange::default()
        };
        assert_eq!(reset.apply(Some(&stored)).unwrap(), json!({}));
        let bad = SettingsChange {
            models: Some(vec!["linear".into(), "w_shaped".into()]),
            ..SettingsChange::default()
        };
        assert!(
            bad.apply(None)
                .unwrap_err()
                .to_string()
                .contains("w_shaped")
        );
        let huge = SettingsChange {
            position_first_percent: Some(u32::MAX),
            position_last_percent: Some(1),
            ..SettingsChange::default()
        };
        assert!(
            huge.apply(None)
                .unwrap_err()
                .to_string()
                .contains("position")
        );
        let too_short = SettingsChange {
            lookback_days: Some(2),
            ..SettingsChange::default()
        };
        assert!(
            too_short
                .apply(None)
                .unwrap_err()
                .to_string()
                .contains("last_touch_hours")
        );
    }
}
