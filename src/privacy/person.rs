//! A person, through the identity graph: everything linked to them exported as one JSON
//! document, or erased through the one audited path (`lux_erase_person`, as `lux_eraser`).
//!
//! Export runs as the service (`lux_app`, row-level security). Erasure runs as the erasure
//! role in one transaction: the database function deletes and unlinks, adds the suppressions,
//! notes the days the rollups must recompute and appends the ledger row; the caller then
//! recomputes attribution and rollups for those days (a failure there leaves the change notes,
//! which the next scheduled rollups run picks up).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::requests::{self, RequestKind, Subject};

/// Every key of a person: the subject's own and those its person has in the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub visitors: Vec<Uuid>,
    pub users: Vec<String>,
    /// Keyed email hashes (32 bytes each).
    pub emails: Vec<Vec<u8>>,
}

impl Person {
    fn add(&mut self, kind: &str, value: &str) {
        match kind {
            "visitor" => {
                if let Ok(v) = value.parse()
                    && !self.visitors.contains(&v)
                {
                    self.visitors.push(v);
                }
            }
            "user" if !self.users.iter().any(|u| u == value) => self.users.push(value.into()),
            "email" => {
                if let Ok(hash) = hex::decode(value)
                    && !self.emails.contains(&hash)
                {
                    self.emails.push(hash);
                }
            }
            _ => {}
        }
    }

    /// The request/suppression key of each of the person's keys.
    fn subject_keys(&self, company_key: &[u8]) -> Vec<String> {
        let visitors = self.visitor_text().into_iter().map(|v| ("visitor", v));
        let users = self.users.iter().map(|u| ("user", u.clone()));
        let emails = self.email_hex().into_iter().map(|e| ("email", e));
        visitors
            .chain(users)
            .chain(emails)
            .map(|(kind, value)| super::suppression_key(company_key, kind, &value))
            .collect()
    }

    fn email_hex(&self) -> Vec<String> {
        self.emails.iter().map(hex::encode).collect()
    }

    fn visitor_text(&self) -> Vec<String> {
        self.visitors.iter().map(Uuid::to_string).collect()
    }
}

/// The subject's person: its own key plus every key sharing its `person_id`.
pub async fn resolve(
    conn: &mut PgConnection,
    company_id: Uuid,
    subject: &Subject,
) -> Result<Person, sqlx::Error> {
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT k.key_kind, k.key_value FROM identity_keys k
         WHERE k.company_id = $1
           AND k.person_id IN (SELECT s.person_id FROM identity_keys s
                               WHERE s.company_id = $1 AND s.key_kind = $2 AND s.key_value = $3)
         ORDER BY k.first_seen_at, k.key_kind, k.key_value",
    )
    .bind(company_id)
    .bind(subject.kind())
    .bind(subject.value())
    .fetch_all(&mut *conn)
    .await?;
    let mut person = Person::default();
    person.add(subject.kind(), &subject.value());
    for (kind, value) in keys {
        person.add(&kind, &value);
    }
    Ok(person)
}

/// The sections of an export, each a query returning one JSON array. `$1` company, `$2`
/// visitor ids, `$3` user ids, `$4` email hashes, `$5` visitor ids as text, `$6` email hashes
/// as hex. Documented in docs/privacy.md.
const SECTIONS: [(&str, &str); 8] = [
    (
        "identity_links",
        "SELECT coalesce(jsonb_agg(jsonb_build_object('kind', k.key_kind, 'value', k.key_value,
                    'person_id', k.person_id, 'first_seen_at', k.first_seen_at,
                    'linked_at', k.linked_at) ORDER BY k.first_seen_at), '[]')
         FROM identity_keys k WHERE k.company_id = $1
           AND ((k.key_kind = 'visitor' AND k.key_value = ANY($5))
             OR (k.key_kind = 'user' AND k.key_value = ANY($3))
             OR (k.key_kind = 'email' AND k.key_value = ANY($6)))",
    ),
    (
        "events",
        "SELECT coalesce(jsonb_agg(to_jsonb(r) - 'company_id' ORDER BY r.occurred_at, r.event_id), '[]')
         FROM raw_events r WHERE r.company_id = $1
           AND (r.visitor_id = ANY($2) OR r.user_id = ANY($3) OR r.email_hash = ANY($4))",
    ),
    (
        "sessions",
        "SELECT coalesce(jsonb_agg(to_jsonb(s) - 'company_id' ORDER BY s.started_at), '[]')
         FROM sessions s WHERE s.company_id = $1 AND s.visitor_id = ANY($2)",
    ),
    (
        "orders",
        "SELECT coalesce(jsonb_agg(to_jsonb(o) - 'company_id' - 'attribution_digest'
                                   ORDER BY o.placed_at), '[]')
         FROM orders o WHERE o.company_id = $1
           AND (o.email_hash = ANY($4) OR o.user_id = ANY($3) OR o.visitor_id = ANY($2)
                OR o.customer_id IN (SELECT c.customer_id FROM customers c
                                     WHERE c.company_id = $1
                                       AND (c.email_hash = ANY($4) OR c.user_id = ANY($3)
                                            OR c.visitor_id = ANY($2))))",
    ),
    (
        "message_sends",
        "SELECT coalesce(jsonb_agg(to_jsonb(m) - 'company_id' ORDER BY m.created_at), '[]')
         FROM message_sends m WHERE m.company_id = $1 AND m.recipient_hash = ANY($4)",
    ),
    (
        "message_events",
        "SELECT coalesce(jsonb_agg(to_jsonb(e) - 'company_id' - 'delivery_id' - 'item_index'
                                   ORDER BY e.occurred_at), '[]')
         FROM message_events e WHERE e.company_id = $1
           AND (e.recipient_hash = ANY($4)
                OR e.message_id IN (SELECT m.message_id FROM message_sends m
                                    WHERE m.company_id = $1 AND m.recipient_hash = ANY($4)))",
    ),
    (
        "consent_events",
        "SELECT coalesce(jsonb_agg(to_jsonb(c) - 'company_id' ORDER BY c.recorded_at), '[]')
         FROM consent_events c WHERE c.company_id = $1
           AND ((c.subject_kind = 'visitor' AND c.subject = ANY($5))
             OR (c.subject_kind = 'user' AND c.subject = ANY($3))
             OR (c.subject_kind = 'email' AND c.subject = ANY($6)))",
    ),
    (
        "consent_current",
        "SELECT coalesce(jsonb_agg(to_jsonb(c) - 'company_id' ORDER BY c.purpose, c.subject), '[]')
         FROM consent_current c WHERE c.company_id = $1
           AND ((c.subject_kind = 'visitor' AND c.subject = ANY($5))
             OR (c.subject_kind = 'user' AND c.subject = ANY($3))
             OR (c.subject_kind = 'email' AND c.subject = ANY($6)))",
    ),
];

/// Everything linked to the subject, as one JSON document (keys in docs/privacy.md). Runs in
/// the caller's transaction, scoped to the company.
pub async fn export(
    conn: &mut PgConnection,
    company_id: Uuid,
    subject: &Subject,
    now: DateTime<Utc>,
) -> Result<Value, sqlx::Error> {
    let person = resolve(conn, company_id, subject).await?;
    let mut doc = serde_json::Map::new();
    doc.insert("format".into(), "lux-privacy-export/1".into());
    doc.insert("company_id".into(), company_id.to_string().into());
    doc.insert("generated_at".into(), now.to_rfc3339().into());
    doc.insert(
        "subject".into(),
        serde_json::json!({"kind": subject.kind(), "value": subject.value()}),
    );
    doc.insert(
        "keys".into(),
        serde_json::json!({
            "visitor_ids": person.visitors,
            "user_ids": person.users,
            "email_hashes": person.email_hex(),
        }),
    );
    for (name, sql) in SECTIONS {
        let section: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(company_id)
            .bind(&person.visitors)
            .bind(&person.users)
            .bind(&person.emails)
            .bind(person.visitor_text())
            .bind(person.email_hex())
            .fetch_one(&mut *conn)
            .await?;
        doc.insert(name.into(), section);
    }
    Ok(Value::Object(doc))
}

/// Why an erasure did not happen.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("privacy request {0} does not exist for this company")]
    NoSuchRequest(Uuid),
    #[error("privacy request {0} is of kind {1}; erasure needs a deletion request")]
    NotADeletion(Uuid, String),
    #[error("privacy request {0} is about someone else than the person named")]
    OtherSubject(Uuid),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What an erasure did (printed as JSON by `lux privacy erase`).
#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    pub request_id: Uuid,
    /// Rows per table (the ledger row's counts).
    pub removed: Value,
    /// The local days whose rollups change, first and last.
    pub days: Option<(NaiveDate, NaiveDate)>,
    /// The placement days of the orders to attribute again, first and last.
    pub order_days: Option<(NaiveDate, NaiveDate)>,
}

/// Erases the subject's person in one transaction as `lux_eraser`, under deletion request
/// `request` (filed now, via the command line, when `None`). `owner` is a pool of the
/// owner's login, which may switch to the erasure role. Safe to rerun: a second run finds
/// nothing left and records zeros.
pub async fn erase(
    owner: &PgPool,
    company_id: Uuid,
    subject: &Subject,
    request: Option<Uuid>,
    (actor, now): (&str, DateTime<Utc>),
) -> Result<Erasure, EraseError> {
    let mut tx = owner.begin().await?;
    sqlx::query("SET LOCAL ROLE lux_eraser")
        .execute(&mut *tx)
        .await?;
    crate::db::set_company(&mut tx, company_id).await?;
    let person = resolve(&mut tx, company_id, subject).await?;
    let request_id = match request {
        Some(id) => {
            check_request(&mut tx, company_id, id, &person).await?;
            id
        }
        None => {
            let via = ("cli", now);
            requests::file(
                &mut tx,
                company_id,
                RequestKind::Deletion,
                Some(subject),
                via,
            )
            .await?
            .request_id
        }
    };
    let done: Value = sqlx::query_scalar("SELECT lux_erase_person($1, $2, $3, $4, $5, $6)")
        .bind(request_id)
        .bind(actor)
        .bind(now)
        .bind(&person.visitors)
        .bind(&person.users)
        .bind(&person.emails)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Erasure {
        request_id,
        removed: done["removed"].clone(),
        days: day_pair(&done["days"]),
        order_days: day_pair(&done["order_days"]),
    })
}

fn day_pair(value: &Value) -> Option<(NaiveDate, NaiveDate)> {
    let day = |i: usize| value.get(i)?.as_str()?.parse().ok();
    Some((day(0)?, day(1)?))
}

async fn check_request(
    conn: &mut PgConnection,
    company_id: Uuid,
    request_id: Uuid,
    person: &Person,
) -> Result<(), EraseError> {
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT kind, subject_key FROM privacy_requests WHERE company_id = $1 AND request_id = $2",
    )
    .bind(company_id)
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (kind, key) = row.ok_or(EraseError::NoSuchRequest(request_id))?;
    if kind != RequestKind::Deletion.as_str() {
        return Err(EraseError::NotADeletion(request_id, kind));
    }
    let company_key = super::company_hash_key(conn, company_id).await?;
    // The request may name the person by any of their keys (an email; the erasure by user id).
    if let Some(key) = key
        && !person.subject_keys(&company_key).contains(&key)
    {
        return Err(EraseError::OtherSubject(request_id));
    }
    Ok(())
}
