//! The messages: an email (subject with the company's name, a text part and an HTML part)
//! and a Slack text (mrkdwn), for one alert or a digest of several that changed in one
//! evaluation, and the test message of `lux alerts test`. Rendered when enqueued, so what is
//! sent is what the outbox row says.

use chrono::NaiveDate;
use serde::Serialize;
use uuid::Uuid;

use super::Company;
use crate::html::escape;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Fired,
    Resolved,
}

/// One alert as a notification tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub alert_id: Uuid,
    pub rule: String,
    pub subject: String,
    pub severity: String,
    pub title: String,
    pub explanation: String,
    pub link: String,
}

/// A rendered message, ready for the outbox.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub slack: String,
    pub alert_ids: Vec<Uuid>,
}

/// Escapes text for Slack's mrkdwn (its three control characters), so a campaign named
/// `<!channel>` stays text.
fn escape_slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A header value on one line: control characters (a CR/LF from an imported campaign name)
/// become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn heading(change: Change, notice: &Notice) -> String {
    match change {
        Change::Fired => format!("[{}] {}", notice.severity.to_uppercase(), notice.title),
        Change::Resolved => format!("[RESOLVED] {}", notice.title),
    }
}

/// The message for the alerts that changed in one evaluation of `day`: the alert itself when
/// one changed, a digest when several did.
pub fn alert_message(
    company: &Company,
    app_link: &str,
    day: NaiveDate,
    changes: &[(Change, Notice)],
) -> Message {
    let subject = match changes {
        [(change, notice)] => format!("[{}] {}", company.name, heading(*change, notice)),
        _ => {
            let fired = changes.iter().filter(|c| c.0 == Change::Fired).count();
            let resolved = changes.len() - fired;
            format!(
                "[{}] {} alerts for {day}: {fired} firing, {resolved} resolved",
                company.name,
                changes.len()
            )
        }
    };
    let mut text = format!("LUX Analytics alerts for {} — {day}\n\n", company.name);
    let mut html = format!(
        "<html><body style=\"font-family: sans-serif\"><h2>LUX Analytics alerts for {} — {day}</h2>",
        escape(&company.name)
    );
    let mut slack = format!(
        "*LUX Analytics alerts for {}* — {day}\n",
        escape_slack(&company.name)
    );
    for (change, notice) in changes {
        let head = heading(*change, notice);
        text.push_str(&format!(
            "{head}\n{}\n{}\n\n",
            notice.explanation, notice.link
        ));
        html.push_str(&format!(
            "<h3>{}</h3><p>{}</p><p><a href=\"{}\">Open the dashboard</a></p>",
            escape(&head),
            escape(&notice.explanation),
            escape(&notice.link)
        ));
        slack.push_str(&format!(
            "\n*{}*\n{}\n<{}|Open the dashboard>\n",
            escape_slack(&head),
            escape_slack(&notice.explanation),
            notice.link
        ));
    }
    text.push_str(&format!("All alerts: {app_link}/alerts\n"));
    html.push_str(&format!(
        "<p><a href=\"{}/alerts\">All alerts</a></p></body></html>",
        escape(app_link)
    ));
    Message {
        kind: "alert",
        subject: one_line(&subject),
        text,
        html,
        slack,
        alert_ids: changes.iter().map(|c| c.1.alert_id).collect(),
    }
}

/// The message of `lux alerts test`.
pub fn test_message(company: &Company, app_link: &str) -> Message {
    let body = format!(
        "This is a test message from LUX Analytics for {}. Alerts for this company will \
         arrive at this address. All alerts: {app_link}/alerts",
        company.name
    );
    Message {
        kind: "test",
        subject: one_line(&format!("[{}] LUX Analytics test alert", company.name)),
        text: body.clone(),
        html: format!("<html><body><p>{}</p></body></html>", escape(&body)),
        slack: format!("*LUX Analytics test alert*\n{}", escape_slack(&body)),
        alert_ids: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_text_and_subjects_cannot_be_hijacked_by_names_in_the_data() {
        assert_eq!(escape_slack("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        assert_eq!(one_line("Spring\r\nBcc: x@y.z"), "Spring  Bcc: x@y.z");
    }
}
