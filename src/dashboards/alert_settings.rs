//! The alert history page's notification settings: who is emailed, the quiet hours and the
//! morning hour of the company's `alert_settings`. Every user of the company sees them; only
//! its admins change them, through the page's form (`POST /app/{company}/alerts/settings`,
//! CSRF-checked). A viewer's POST is a 403 and changes nothing.
//!
//! The form edits the three fields a marketer changes; the Slack webhook (a secret URL, not
//! shown back) and the rules' thresholds are kept as they are and stay with the API
//! (`PUT /api/v1/alerts/config`) and `lux alerts configure`.

use uuid::Uuid;

use super::DashboardError;
use super::users::Role;
use crate::alerts::config::{AlertSettings, QuietHours, parse_email};

/// More addresses than this is not a team's inbox list but a mailing list.
const MAX_EMAILS: usize = 20;

/// The settings as the page shows them.
#[derive(Debug, Clone)]
pub struct AlertSettingsView {
    /// The addresses, `, `-separated (empty: nobody is emailed).
    pub emails: String,
    pub slack: bool,
    /// `22-07`, or empty for none.
    pub quiet_hours: String,
    pub morning_hour: u8,
    /// The user may change them (an admin of the company).
    pub editable: bool,
}

impl AlertSettingsView {
    pub fn new(settings: &AlertSettings, role: Role) -> AlertSettingsView {
        AlertSettingsView {
            emails: settings.emails.join(", "),
            slack: settings.slack_webhook.is_some(),
            quiet_hours: settings
                .quiet_hours
                .map(|q| q.to_string())
                .unwrap_or_default(),
            morning_hour: settings.morning_hour,
            editable: may_change(role),
        }
    }
}

/// The one thing an admin may do that a viewer may not (docs/decisions.md).
pub fn may_change(role: Role) -> bool {
    role == Role::Admin
}

/// The form's fields, as typed.
#[derive(Debug, serde::Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub emails: String,
    #[serde(default)]
    pub quiet_hours: String,
    #[serde(default)]
    pub morning_hour: String,
}

impl SettingsForm {
    /// `current` with the form's emails, quiet hours and morning hour; a field that is not
    /// valid is a 400 that names it.
    pub fn apply(&self, mut current: AlertSettings) -> Result<AlertSettings, DashboardError> {
        let bad = |e: String| DashboardError::BadRequest(e);
        let emails: Vec<String> = self
            .emails
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .map(parse_email)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("emails: {e}")))?;
        if emails.len() > MAX_EMAILS {
            return Err(bad(format!(
                "emails: at most {MAX_EMAILS} addresses, not {}",
                emails.len()
            )));
        }
        let quiet = self.quiet_hours.trim();
        let quiet_hours = if quiet.is_empty() {
            None
        } else {
            Some(QuietHours::parse(quiet).map_err(|e| bad(format!("quiet hours: {e}")))?)
        };
        let morning_hour = self
            .morning_hour
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|h| *h <= 23)
            .ok_or_else(|| {
                bad(format!(
                    "morning hour: an hour 0-23, not {:?}",
                    self.morning_hour
                ))
            })?;
        current.emails = emails;
        current.quiet_hours = quiet_hours;
        current.morning_hour = morning_hour;
        Ok(current)
    }
}

/// Loads the company's settings for the page.
pub async fn load(
    pool: &sqlx::PgPool,
    company_id: Uuid,
    role: Role,
) -> Result<AlertSettingsView, DashboardError> {
    let settings = AlertSettings::load(pool, company_id).await?;
    Ok(AlertSettingsView::new(&settings, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(emails: &str, quiet: &str, morning: &str) -> SettingsForm {
        SettingsForm {
            csrf: String::new(),
            emails: emails.into(),
            quiet_hours: quiet.into(),
            morning_hour: morning.into(),
        }
    }

    #[test]
    fn the_form_sets_emails_quiet_and_morning_hours_and_keeps_the_rest() {
        let current = AlertSettings {
            slack_webhook: Some("https://hooks.slack.com/services/T/B/x".parse().unwrap()),
            ..AlertSettings::default()
        };
        let saved = form("ops@example.com,  cmo@example.com\n", "22-07", "6")
            .apply(current.clone())
            .unwrap();
        assert_eq!(saved.emails, ["ops@example.com", "cmo@example.com"]);
        assert_eq!(saved.quiet_hours.unwrap().to_string(), "22-07");
        assert_eq!(saved.morning_hour, 6);
        assert_eq!(saved.slack_webhook, current.slack_webhook);
        let cleared = form("", "", "7").apply(saved).unwrap();
        assert!(cleared.emails.is_empty() && cleared.quiet_hours.is_none());
    }

    #[test]
    fn a_bad_field_is_named_in_the_error() {
        for (f, field) in [
            (form("not-an-address", "", "7"), "emails"),
            (form("", "25-07", "7"), "quiet hours"),
            (form("", "", "24"), "morning hour"),
            (form("", "", ""), "morning hour"),
        ] {
            let e = f.apply(AlertSettings::default()).unwrap_err().to_string();
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }

    #[test]
    fn only_an_admin_may_change_them() {
        assert!(may_change(Role::Admin));
        assert!(!may_change(Role::Viewer));
    }
}
