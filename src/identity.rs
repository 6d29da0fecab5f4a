//! Identity: which visitors (devices) belong to one person.
//!
//! Every key that names a person (a visitor id, a user id, an email hash) points at a
//! `person_id` in `identity_keys`. When an event links keys that point at different persons
//! (a login on a second device, say), the persons are merged into the oldest one, so all of a
//! person's devices resolve to one person for attribution and customer metrics.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// One key of a person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdentityKey {
    Visitor(Uuid),
    User(String),
    /// The email's keyed hash, hex.
    Email(String),
}

impl IdentityKey {
    fn kind(&self) -> &'static str {
        match self {
            IdentityKey::Visitor(_) => "visitor",
            IdentityKey::User(_) => "user",
            IdentityKey::Email(_) => "email",
        }
    }

    fn value(&self) -> String {
        match self {
            IdentityKey::Visitor(v) => v.to_string(),
            IdentityKey::User(u) => u.clone(),
            IdentityKey::Email(e) => e.clone(),
        }
    }
}

/// Serialises identity changes of one company within the caller's transaction: merging
/// persons reads then rewrites several rows, which two writers must not interleave.
pub async fn lock_company(
    tx: &mut Transaction<'static, Postgres>,
    company_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(company_lock_key(company_id))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn company_lock_key(company_id: Uuid) -> i64 {
    // A fixed tag keeps these keys apart from the per-visitor ingest locks.
    let (hi, lo) = company_id.as_u64_pair();
    (hi ^ lo ^ 0x1D3A_7C01_0000_0001) as i64
}

/// Links `keys` to one person and returns that person. Call with the company lock held.
pub async fn link(
    tx: &mut Transaction<'static, Postgres>,
    company_id: Uuid,
    keys: &[IdentityKey],
    at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let kinds: Vec<&str> = keys.iter().map(IdentityKey::kind).collect();
    let values: Vec<String> = keys.iter().map(IdentityKey::value).collect();
    // Oldest first: person ids are UUIDv7, so the smallest is the one created first.
    let persons: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT k.person_id FROM identity_keys k
         JOIN unnest($2::text[], $3::text[]) AS n(kind, value)
           ON k.key_kind = n.kind AND k.key_value = n.value
         WHERE k.company_id = $1
         ORDER BY k.person_id",
    )
    .bind(company_id)
    .bind(&kinds)
    .bind(&values)
    .fetch_all(&mut **tx)
    .await?;
    let person = persons.first().copied().unwrap_or_else(Uuid::now_v7);
    if persons.len() > 1 {
        sqlx::query(
            "UPDATE identity_keys SET person_id = $2
             WHERE company_id = $1 AND person_id = ANY($3)",
        )
        .bind(company_id)
        .bind(person)
        .bind(&persons[1..])
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO identity_keys (company_id, key_kind, key_value, person_id, first_seen_at)
         SELECT $1, n.kind, n.value, $4, $5 FROM unnest($2::text[], $3::text[]) AS n(kind, value)
         ON CONFLICT (company_id, key_kind, key_value) DO NOTHING",
    )
    .bind(company_id)
    .bind(&kinds)
    .bind(&values)
    .bind(person)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(person)
}

/// The person a visitor belongs to, if it was ever linked.
pub async fn person_of_visitor(
    tx: &mut Transaction<'static, Postgres>,
    company_id: Uuid,
    visitor_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT person_id FROM identity_keys
         WHERE company_id = $1 AND key_kind = 'visitor' AND key_value = $2",
    )
    .bind(company_id)
    .bind(visitor_id.to_string())
    .fetch_optional(&mut **tx)
    .await
}
