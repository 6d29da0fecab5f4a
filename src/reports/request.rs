//! What a report request asks for, parsed once at the edge: after [`ReportRequest::parse`] the
//! report code only sees a known report, a valid date range and the options that report takes.

use chrono::NaiveDate;

use crate::attribution::settings::Model;
use crate::experiments::ExperimentKey;

/// Longest range one request may cover, both ends included (three years and a few days: a
/// year-over-year comparison of full years fits).
pub const MAX_RANGE_DAYS: i64 = 1100;

/// The funnel reported when the request names none (SPEC §7).
pub const DEFAULT_FUNNEL: &str = "commerce";

/// The model used when the request names none.
pub const DEFAULT_MODEL: Model = Model::LastTouch;

/// The reports of `GET /api/v1/reports/{report}` (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportName {
    RevenueByChannel,
    Cac,
    Roas,
    Funnel,
    TimeToConversion,
    QualifiedSessions,
    RepeatPurchase,
    LtvRolling,
    LtvCohorts,
    Messages,
    Creatives,
    CreativeDecay,
    CreativeFatigue,
    Experiments,
    OpsVelocity,
}

impl ReportName {
    pub const ALL: [ReportName; 15] = [
        ReportName::RevenueByChannel,
        ReportName::Cac,
        ReportName::Roas,
        ReportName::Funnel,
        ReportName::TimeToConversion,
        ReportName::QualifiedSessions,
        ReportName::RepeatPurchase,
        ReportName::LtvRolling,
        ReportName::LtvCohorts,
        ReportName::Messages,
        ReportName::Creatives,
        ReportName::CreativeDecay,
        ReportName::CreativeFatigue,
        ReportName::Experiments,
        ReportName::OpsVelocity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportName::RevenueByChannel => "revenue_by_channel",
            ReportName::Cac => "cac",
            ReportName::Roas => "roas",
            ReportName::Funnel => "funnel",
            ReportName::TimeToConversion => "time_to_conversion",
            ReportName::QualifiedSessions => "qualified_sessions",
            ReportName::RepeatPurchase => "repeat_purchase",
            ReportName::LtvRolling => "ltv_rolling",
            ReportName::LtvCohorts => "ltv_cohorts",
            ReportName::Messages => "messages",
            ReportName::Creatives => "creatives",
            ReportName::CreativeDecay => "creative_decay",
            ReportName::CreativeFatigue => "creative_fatigue",
            ReportName::Experiments => "experiments",
            ReportName::OpsVelocity => "ops_velocity",
        }
    }

    pub fn parse(text: &str) -> Option<ReportName> {
        ReportName::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The query parameters this report takes besides `from` and `to`.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            ReportName::RevenueByChannel | ReportName::Cac => &["model"],
            ReportName::Roas => &["model", "by"],
            ReportName::Funnel => &["funnel"],
            ReportName::Messages => &["channel", "group"],
            ReportName::Creatives => &["model", "group"],
            ReportName::CreativeDecay => &["creative_id"],
            ReportName::Experiments => &["experiment"],
            _ => &[],
        }
    }
}

/// What ROAS is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoasKey {
    Channel,
    /// Channel and campaign (campaign names compared case-insensitively).
    Campaign,
    /// Channel, campaign and creative (the ad id of the spend, the touch's utm_content).
    Creative,
}

impl RoasKey {
    pub const ALL: [RoasKey; 3] = [RoasKey::Channel, RoasKey::Campaign, RoasKey::Creative];

    pub fn as_str(self) -> &'static str {
        match self {
            RoasKey::Channel => "channel",
            RoasKey::Campaign => "campaign",
            RoasKey::Creative => "creative",
        }
    }

    pub fn parse(text: &str) -> Option<RoasKey> {
        RoasKey::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// How many of channel, campaign, creative make the key (1 to 3).
    pub fn depth(self) -> i32 {
        match self {
            RoasKey::Channel => 1,
            RoasKey::Campaign => 2,
            RoasKey::Creative => 3,
        }
    }
}

/// A message channel, for `messages?channel=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageChannel {
    Email,
    Sms,
}

impl MessageChannel {
    pub const ALL: [MessageChannel; 2] = [MessageChannel::Email, MessageChannel::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageChannel::Email => "email",
            MessageChannel::Sms => "sms",
        }
    }

    pub fn parse(text: &str) -> Option<MessageChannel> {
        MessageChannel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// What the `messages` report's rows are: one per channel (the default), per channel and
/// campaign, or per message (one send to one recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageGroup {
    Channel,
    Campaign,
    Message,
}

impl MessageGroup {
    pub const ALL: [MessageGroup; 3] = [
        MessageGroup::Channel,
        MessageGroup::Campaign,
        MessageGroup::Message,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageGroup::Channel => "channel",
            MessageGroup::Campaign => "campaign",
            MessageGroup::Message => "message",
        }
    }

    pub fn parse(text: &str) -> Option<MessageGroup> {
        MessageGroup::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// What the `creatives` report's rows are: one per creative (the default), per concept or
/// per angle (from the catalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreativeGroup {
    Creative,
    Concept,
    Angle,
}

impl CreativeGroup {
    pub const ALL: [CreativeGroup; 3] = [
        CreativeGroup::Creative,
        CreativeGroup::Concept,
        CreativeGroup::Angle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CreativeGroup::Creative => "creative",
            CreativeGroup::Concept => "concept",
            CreativeGroup::Angle => "angle",
        }
    }

    pub fn parse(text: &str) -> Option<CreativeGroup> {
        CreativeGroup::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// A creative's id as the catalog allows it: 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreativeId(String);

impl CreativeId {
    pub fn parse(text: &str) -> Result<CreativeId, RequestError> {
        let count = text.chars().count();
        if count == 0 || count > 200 || text.contains('\0') {
            return Err(RequestError::InvalidCreative(text.to_string()));
        }
        Ok(CreativeId(text.to_string()))
    }
}

impl AsRef<str> for CreativeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Company-local days `from ..= to`, with `from ≤ to` and at most [`MAX_RANGE_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    from: NaiveDate,
    to: NaiveDate,
}

impl DateRange {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<DateRange, RequestError> {
        if from > to {
            return Err(RequestError::Reversed { from, to });
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_RANGE_DAYS {
            return Err(RequestError::TooLong { from, to, days });
        }
        Ok(DateRange { from, to })
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }
}

/// A funnel's name as funnels are named (`commerce`, `lead`, or a company's own: 1 to 64 of
/// a-z, 0-9 and _); whether it has data is for the database to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelName(String);

impl FunnelName {
    pub fn parse(text: &str) -> Result<FunnelName, RequestError> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(RequestError::InvalidFunnel(text.to_string()));
        }
        Ok(FunnelName(text.to_string()))
    }
}

impl AsRef<str> for FunnelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A report with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    RevenueByChannel {
        model: Model,
    },
    Cac {
        model: Model,
    },
    Roas {
        model: Model,
        by: RoasKey,
    },
    Funnel {
        funnel: FunnelName,
    },
    TimeToConversion,
    QualifiedSessions,
    RepeatPurchase,
    LtvRolling,
    LtvCohorts,
    Messages {
        channel: Option<MessageChannel>,
        group: MessageGroup,
    },
    Creatives {
        model: Model,
        group: CreativeGroup,
    },
    CreativeDecay {
        creative_id: CreativeId,
    },
    CreativeFatigue,
    /// Optionally one experiment only.
    Experiments {
        only: Option<ExperimentKey>,
    },
    OpsVelocity,
}

impl Report {
    pub fn name(&self) -> ReportName {
        match self {
            Report::RevenueByChannel { .. } => ReportName::RevenueByChannel,
            Report::Cac { .. } => ReportName::Cac,
            Report::Roas { .. } => ReportName::Roas,
            Report::Funnel { .. } => ReportName::Funnel,
            Report::TimeToConversion => ReportName::TimeToConversion,
            Report::QualifiedSessions => ReportName::QualifiedSessions,
            Report::RepeatPurchase => ReportName::RepeatPurchase,
            Report::LtvRolling => ReportName::LtvRolling,
            Report::LtvCohorts => ReportName::LtvCohorts,
            Report::Messages { .. } => ReportName::Messages,
            Report::Creatives { .. } => ReportName::Creatives,
            Report::CreativeDecay { .. } => ReportName::CreativeDecay,
            Report::CreativeFatigue => ReportName::CreativeFatigue,
            Report::Experiments { .. } => ReportName::Experiments,
            Report::OpsVelocity => ReportName::OpsVelocity,
        }
    }
}

/// A parsed `GET /api/v1/reports/{report}?...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    pub report: Report,
    pub range: DateRange,
}

/// Why a report request was refused (a 400). Each message names the bad input and what
/// would be accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown report {name:?}; known reports: {known}", name = .0, known = known_reports())]
    UnknownReport(String),
    #[error(
        "missing `{0}`: add ?from=YYYY-MM-DD&to=YYYY-MM-DD (company-local days, both included)"
    )]
    MissingDate(&'static str),
    #[error("`{param}` must be a date as YYYY-MM-DD, got {value:?}")]
    InvalidDate { param: &'static str, value: String },
    #[error("`from` ({from}) is after `to` ({to})")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("the range {from} to {to} is {days} days; at most {MAX_RANGE_DAYS} days per request")]
    TooLong {
        from: NaiveDate,
        to: NaiveDate,
        days: i64,
    },
    #[error("unknown model {name:?}; models: {known}", name = .0, known = known(Model::ALL.map(Model::as_str)))]
    UnknownModel(String),
    #[error("unknown `by` {name:?}; roas is grouped by one of: {known}", name = .0, known = known(RoasKey::ALL.map(RoasKey::as_str)))]
    UnknownBy(String),
    #[error("unknown channel {name:?}; messages are sent by: {known}", name = .0, known = known(MessageChannel::ALL.map(MessageChannel::as_str)))]
    UnknownChannel(String),
    #[error("unknown `group` {name:?}; messages are grouped by one of: {known}", name = .0, known = known(MessageGroup::ALL.map(MessageGroup::as_str)))]
    UnknownGroup(String),
    #[error("unknown `group` {name:?}; creatives are grouped by one of: {known}", name = .0, known = known(CreativeGroup::ALL.map(CreativeGroup::as_str)))]
    UnknownCreativeGroup(String),
    #[error(
        "missing `creative_id`: creative_decay is the decay of one creative (?creative_id=...)"
    )]
    MissingCreative,
    #[error("`creative_id` must be 1 to 200 characters, got {0:?}")]
    InvalidCreative(String),
    #[error("`experiment`: {0}")]
    InvalidExperiment(String),
    #[error("`funnel` must be a funnel name (1 to 64 of a-z, 0-9 and _), got {0:?}")]
    InvalidFunnel(String),
    #[error("parameter `{0}` is given more than once")]
    Repeated(String),
    #[error(
        "keys go in the header `Authorization: Bearer SECRET_KEY`, never in the URL; revoke this key"
    )]
    KeyInUrl,
    #[error("report {report} does not take `{param}`; it takes: {}", takes(.report))]
    UnknownParameter { report: &'static str, param: String },
    #[error("unknown funnel {funnel:?}; this company's funnels: {} (define one with `lux company rollups COMPANY_ID --funnel NAME=event,event,...`)", .known.join(", "))]
    UnknownFunnel { funnel: String, known: Vec<String> },
}

fn known<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

fn known_reports() -> String {
    known(ReportName::ALL.map(ReportName::as_str))
}

fn takes(report: &str) -> String {
    let name = ReportName::parse(report).expect("a known report");
    ["from", "to"]
        .iter()
        .chain(name.options())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_date(param: &'static str, value: Option<String>) -> Result<NaiveDate, RequestError> {
    let value = value.ok_or(RequestError::MissingDate(param))?;
    // Exactly YYYY-MM-DD: chrono alone would also take "2026-1-5".
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped
        .then(|| NaiveDate::parse_from_str(&value, "%Y-%m-%d").ok())
        .flatten()
        .ok_or(RequestError::InvalidDate { param, value })
}

impl ReportRequest {
    /// Parses the `{report}` path segment and the raw query string.
    ///
    /// Checked in this order: the report, the parameters' names (a key in the URL, a
    /// parameter this report does not take, a repeated one), the dates, then the options.
    pub fn parse(report: &str, query: Option<&str>) -> Result<ReportRequest, RequestError> {
        let name =
            ReportName::parse(report).ok_or_else(|| RequestError::UnknownReport(report.into()))?;
        let mut params: Vec<(String, String)> = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if key == "key" {
                return Err(RequestError::KeyInUrl);
            }
            if key != "from" && key != "to" && !name.options().contains(&key.as_ref()) {
                return Err(RequestError::UnknownParameter {
                    report: name.as_str(),
                    param: key.into_owned(),
                });
            }
            if params.iter().any(|(k, _)| *k == key) {
                return Err(RequestError::Repeated(key.into_owned()));
            }
            params.push((key.into_owned(), value.into_owned()));
        }
        let mut take = |param: &str| {
            params
                .iter()
                .position(|(k, _)| k == param)
                .map(|i| params.swap_remove(i).1)
        };
        let from = parse_date("from", take("from"))?;
        let to = parse_date("to", take("to"))?;
        let range = DateRange::new(from, to)?;
        let model = match take("model") {
            None => DEFAULT_MODEL,
            Some(text) => Model::parse(&text).ok_or(RequestError::UnknownModel(text))?,
        };
        let report = match name {
            ReportName::RevenueByChannel => Report::RevenueByChannel { model },
            ReportName::Cac => Report::Cac { model },
            ReportName::Roas => {
                let by = match take("by") {
                    None => RoasKey::Channel,
                    Some(text) => RoasKey::parse(&text).ok_or(RequestError::UnknownBy(text))?,
                };
                Report::Roas { model, by }
            }
            ReportName::Funnel => Report::Funnel {
                funnel: FunnelName::parse(&take("funnel").unwrap_or(DEFAULT_FUNNEL.into()))?,
            },
            ReportName::TimeToConversion => Report::TimeToConversion,
            ReportName::QualifiedSessions => Report::QualifiedSessions,
            ReportName::RepeatPurchase => Report::RepeatPurchase,
            ReportName::LtvRolling => Report::LtvRolling,
            ReportName::LtvCohorts => Report::LtvCohorts,
            ReportName::Messages => Report::Messages {
                channel: take("channel")
                    .map(|text| {
                        MessageChannel::parse(&text).ok_or(RequestError::UnknownChannel(text))
                    })
                    .transpose()?,
                group: match take("group") {
                    None => MessageGroup::Channel,
                    Some(text) => {
                        MessageGroup::parse(&text).ok_or(RequestError::UnknownGroup(text))?
                    }
                },
            },
            ReportName::Creatives => Report::Creatives {
                model,
                group: match take("group") {
                    None => CreativeGroup::Creative,
                    Some(text) => CreativeGroup::parse(&text)
                        .ok_or(RequestError::UnknownCreativeGroup(text))?,
                },
            },
            ReportName::CreativeDecay => Report::CreativeDecay {
                creative_id: CreativeId::parse(
                    &take("creative_id").ok_or(RequestError::MissingCreative)?,
                )?,
            },
            ReportName::CreativeFatigue => Report::CreativeFatigue,
            ReportName::Experiments => Report::Experiments {
                only: take("experiment")
                    .map(|text| {
                        ExperimentKey::parse(&text)
                            .map_err(|e| RequestError::InvalidExperiment(e.to_string()))
                    })
                    .transpose()?,
            },
            ReportName::OpsVelocity => Report::OpsVelocity,
        };
        Ok(ReportRequest { report, range })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(report: &str, query: &str) -> Result<ReportRequest, RequestError> {
        ReportRequest::parse(report, Some(query))
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn options_take_their_defaults() {
        let request = parse("roas", "from=2026-01-01&to=2026-01-31").unwrap();
        assert_eq!(
            request.report,
            Report::Roas {
                model: Model::LastTouch,
                by: RoasKey::Channel
            }
        );
        assert_eq!(request.range.from(), day("2026-01-01"));
        let funnel = parse("funnel", "from=2026-01-01&to=2026-01-01").unwrap();
        assert_eq!(
            funnel.report,
            Report::Funnel {
                funnel: FunnelName("commerce".into())
            }
        );
        let messages = parse("messages", "from=2026-01-01&to=2026-01-31").unwrap();
        assert_eq!(
            messages.report,
            Report::Messages {
                channel: None,
                group: MessageGroup::Channel
            }
        );
        let sms = parse(
            "messages",
            "from=2026-01-01&to=2026-01-31&channel=sms&group=message",
        );
        assert_eq!(
            sms.unwrap().report,
            Report::Messages {
                channel: Some(MessageChannel::Sms),
                group: MessageGroup::Message
            }
        );
        let linear = parse("cac", "to=2026-01-02&model=linear&from=2026-01-01").unwrap();
        assert_eq!(
            linear.report,
            Report::Cac {
                model: Model::Linear
            }
        );
    }

    #[test]
    fn every_bad_input_is_named() {
        let cases: &[(&str, &str, RequestError)] = &[
            ("nope", "", RequestError::UnknownReport("nope".into())),
            ("cac", "to=2026-01-01", RequestError::MissingDate("from")),
            ("cac", "from=2026-01-01", RequestError::MissingDate("to")),
            (
                "cac",
                "from=2026-1-01&to=2026-01-02",
                RequestError::InvalidDate {
                    param: "from",
                    value: "2026-1-01".into(),
                },
            ),
            (
                "cac",
                "from=2026-01-01&to=2026-02-30",
                RequestError::InvalidDate {
                    param: "to",
                    value: "2026-02-30".into(),
                },
            ),
            (
                "cac",
                "from=2026-01-02&to=2026-01-01",
                RequestError::Reversed {
                    from: day("2026-01-02"),
                    to: day("2026-01-01"),
                },
            ),
            (
                "cac",
                "from=2023-01-01&to=2026-01-05",
                RequestError::TooLong {
                    from: day("2023-01-01"),
                    to: day("2026-01-05"),
                    days: 1101,
                },
            ),
            (
                "cac",
                "from=2026-01-01&to=2026-01-01&model=u_shaped",
                RequestError::UnknownModel("u_shaped".into()),
            ),
            (
                "roas",
                "from=2026-01-01&to=2026-01-01&by=ad",
                RequestError::UnknownBy("ad".into()),
            ),
            (
                "funnel",
                "from=2026-01-01&to=2026-01-01&funnel=",
                RequestError::InvalidFunnel("".into()),
            ),
            (
                "funnel",
                "from=2026-01-01&to=2026-01-01&funnel=%00",
                RequestError::InvalidFunnel("\0".into()),
            ),
            (
                "funnel",
                "from=2026-01-01&to=2026-01-01&model=linear",
                RequestError::UnknownParameter {
                    report: "funnel",
                    param: "model".into(),
                },
            ),
            (
                "cac",
                "from=2026-01-01&from=2026-01-02&to=2026-01-03",
                RequestError::Repeated("from".into()),
            ),
            ("cac", "key=lux_sk_x", RequestError::KeyInUrl),
            (
                "messages",
                "from=2026-01-01&to=2026-01-01&channel=push",
                RequestError::UnknownChannel("push".into()),
            ),
            (
                "messages",
                "from=2026-01-01&to=2026-01-01&group=day",
                RequestError::UnknownGroup("day".into()),
            ),
            (
                "creatives",
                "from=2026-01-01&to=2026-01-01&group=format",
                RequestError::UnknownCreativeGroup("format".into()),
            ),
            (
                "creative_decay",
                "from=2026-01-01&to=2026-01-01",
                RequestError::MissingCreative,
            ),
            (
                "creative_decay",
                "from=2026-01-01&to=2026-01-01&creative_id=",
                RequestError::InvalidCreative("".into()),
            ),
            (
                "creative_fatigue",
                "from=2026-01-01&to=2026-01-01&model=linear",
                RequestError::UnknownParameter {
                    report: "creative_fatigue",
                    param: "model".into(),
                },
            ),
            (
                "messages",
                "from=2026-01-01&to=2026-01-01&model=linear",
                RequestError::UnknownParameter {
                    report: "messages",
                    param: "model".into(),
                },
            ),
        ];
        for (report, query, expected) in cases {
            assert_eq!(
                parse(report, query).as_ref(),
                Err(expected),
                "{report}?{query}"
            );
        }
    }

    #[test]
    fn a_range_of_exactly_the_limit_is_accepted() {
        // 2023-01-01 ..= 2026-01-04 is 1100 days.
        assert!(parse("cac", "from=2023-01-01&to=2026-01-04").is_ok());
    }

    #[test]
    fn messages_list_what_is_accepted() {
        let unknown = RequestError::UnknownReport("x".into()).to_string();
        assert!(
            unknown.contains("revenue_by_channel, cac, roas, funnel"),
            "{unknown}"
        );
        let model = RequestError::UnknownModel("x".into()).to_string();
        assert!(model.contains("first_touch, last_touch, linear"), "{model}");
        let param = RequestError::UnknownParameter {
            report: "roas",
            param: "funnel".into(),
        }
        .to_string();
        assert!(param.ends_with("it takes: from, to, model, by"), "{param}");
    }
}
