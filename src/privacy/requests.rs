//! Privacy requests (CCPA): access, deletion and opt-out, with the dates they must be
//! acknowledged by (10 business days) and answered by (45 calendar days), their state and
//! outcome. The person is kept as a suppression-style key, never as an identifier: a request
//! outlives the erasure it asks for.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{EmailHash, suppression_key};

/// What a person asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Access,
    Deletion,
    OptOut,
    /// Filed by the retention job for its own erasures (not a person's request).
    Retention,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Deletion => "deletion",
            RequestKind::OptOut => "opt_out",
            RequestKind::Retention => "retention",
        }
    }

    /// The kinds a person may file.
    pub fn parse(text: &str) -> Option<RequestKind> {
        [
            RequestKind::Access,
            RequestKind::Deletion,
            RequestKind::OptOut,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// Who a request (an export, an erasure) is about: one of their keys in the identity graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Email(EmailHash),
    User(String),
    Visitor(Uuid),
}

impl Subject {
    /// From exactly one of an email address, a user id or a visitor id.
    pub fn from_one(
        company_key: &[u8],
        email: Option<&str>,
        user_id: Option<&str>,
        visitor_id: Option<Uuid>,
    ) -> Result<Subject, SubjectError> {
        match (email, user_id, visitor_id) {
            (Some(email), None, None) => EmailHash::of(company_key, email)
                .map(Subject::Email)
                .ok_or(SubjectError::NotAnEmail),
            (None, Some(user), None) if !user.trim().is_empty() => {
                Ok(Subject::User(user.to_string()))
            }
            (None, None, Some(visitor)) => Ok(Subject::Visitor(visitor)),
            _ => Err(SubjectError::NotExactlyOne),
        }
    }

    /// The identity graph's kind ('email', 'user', 'visitor').
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Email(_) => "email",
            Subject::User(_) => "user",
            Subject::Visitor(_) => "visitor",
        }
    }

    /// The identity graph's value (an email as its keyed hash in hex).
    pub fn value(&self) -> String {
        match self {
            Subject::Email(hash) => hash.to_hex(),
            Subject::User(user) => user.clone(),
            Subject::Visitor(visitor) => visitor.to_string(),
        }
    }

    /// The key a request or suppression keeps instead of the identifier.
    pub fn key(&self, company_key: &[u8]) -> String {
        suppression_key(company_key, self.kind(), &self.value())
    }
}

/// Why the person named is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubjectError {
    #[error("name the person with exactly one of email, user_id or visitor_id")]
    NotExactlyOne,
    #[error("email: not an email address")]
    NotAnEmail,
}

/// The day a request received on `received` must be acknowledged by: 10 business days later
/// (Monday to Friday; public holidays are not known here and count as business days, which
/// only makes the date earlier).
pub fn acknowledge_by(received: NaiveDate) -> NaiveDate {
    let mut day = received;
    let mut left = 10;
    while left > 0 {
        day += TimeDelta::days(1);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    day
}

/// The day a request received on `received` must be answered by: 45 calendar days later.
pub fn due_by(received: NaiveDate) -> NaiveDate {
    received + TimeDelta::days(45)
}

/// A request as listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Request {
    pub request_id: Uuid,
    pub kind: String,
    pub subject_kind: Option<String>,
    pub received_at: DateTime<Utc>,
    pub acknowledge_by: NaiveDate,
    pub due_by: NaiveDate,
    pub state: String,
    pub outcome: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub filed_via: String,
    /// Open and past its due date (computed when listed).
    #[sqlx(default)]
    pub overdue: bool,
}

/// Files a request in the caller's transaction (company set). An opt-out about a named
/// person also appends the withdrawal of sale/sharing consent to the consent ledger.
pub async fn file(
    conn: &mut PgConnection,
    company_id: Uuid,
    kind: RequestKind,
    subject: Option<&Subject>,
    (via, received_at): (&str, DateTime<Utc>),
) -> Result<Request, sqlx::Error> {
    let key = super::company_hash_key(conn, company_id).await?;
    let received = received_at.date_naive();
    let request: Request = sqlx::query_as(
        "INSERT INTO privacy_requests (company_id, request_id, kind, subject_kind, subject_key,
             received_at, acknowledge_by, due_by, filed_via)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING request_id, kind, subject_kind, received_at, acknowledge_by, due_by, state,
                   outcome, completed_at, filed_via",
    )
    .bind(company_id)
    .bind(Uuid::now_v7())
    .bind(kind.as_str())
    .bind(subject.map(Subject::kind))
    .bind(subject.map(|s| s.key(&key)))
    .bind(received_at)
    .bind(acknowledge_by(received))
    .bind(due_by(received))
    .bind(via)
    .fetch_one(&mut *conn)
    .await?;
    if let (RequestKind::OptOut, Some(subject)) = (kind, subject) {
        sqlx::query(
            "INSERT INTO consent_events (company_id, consent_id, subject_kind, subject, purpose,
                 granted, source, recorded_at)
             VALUES ($1, $2, $3, $4, 'sale_sharing', false, 'request', $5)",
        )
        .bind(company_id)
        .bind(Uuid::now_v7())
        .bind(subject.kind())
        .bind(subject.value())
        .bind(received_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(request)
}

/// The company's requests, newest first, with whether each is overdue on `today`.
pub async fn list(
    conn: &mut PgConnection,
    company_id: Uuid,
    today: NaiveDate,
) -> Result<Vec<Request>, sqlx::Error> {
    let mut requests: Vec<Request> = sqlx::query_as(
        "SELECT request_id, kind, subject_kind, received_at, acknowledge_by, due_by, state,
                outcome, completed_at, filed_via
         FROM privacy_requests WHERE company_id = $1 AND kind <> 'retention'
         ORDER BY received_at DESC, request_id DESC",
    )
    .bind(company_id)
    .fetch_all(conn)
    .await?;
    for request in &mut requests {
        request.overdue = is_open(&request.state) && request.due_by < today;
    }
    Ok(requests)
}

fn is_open(state: &str) -> bool {
    matches!(state, "received" | "acknowledged")
}

/// Open requests past their due date, across companies (a count only, for `/metrics`).
pub async fn overdue_count(pool: &sqlx::PgPool, today: NaiveDate) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT lux_overdue_privacy_requests($1)")
        .bind(today)
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn ten_business_days_skip_weekends() {
        // Thursday 2026-12-03 + 10 business days = Thursday 2026-12-17.
        assert_eq!(acknowledge_by(day("2026-12-03")), day("2026-12-17"));
        // From a Saturday: the next Monday is the first business day.
        assert_eq!(acknowledge_by(day("2026-12-05")), day("2026-12-18"));
        assert_eq!(due_by(day("2026-12-03")), day("2027-01-17"));
    }

    #[test]
    fn a_subject_is_exactly_one_key() {
        let key = b"k";
        assert_eq!(
            Subject::from_one(key, None, None, None),
            Err(SubjectError::NotExactlyOne)
        );
        assert_eq!(
            Subject::from_one(key, Some("a@b.c"), Some("u"), None),
            Err(SubjectError::NotExactlyOne)
        );
        assert_eq!(
            Subject::from_one(key, Some("nope"), None, None),
            Err(SubjectError::NotAnEmail)
        );
        let user = Subject::from_one(key, None, Some("u-1"), None).unwrap();
        assert_eq!((user.kind(), user.value()), ("user", "u-1".to_string()));
        assert_eq!(user.key(key), suppression_key(key, "user", "u-1"));
        assert!(RequestKind::parse("retention").is_none());
        assert_eq!(RequestKind::parse("opt_out"), Some(RequestKind::OptOut));
    }
}
