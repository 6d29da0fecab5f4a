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
    tx: &mut Transaction<'_, Postgres>,
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
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    keys: &[IdentityKey],
    at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let kinds: Vec<&str> = keys.iter().map(IdentityKey::kind).collect();
    let values: Vec<String> = keys.iter().map(IdentityKey::value).collect();
    // Each person the keys point at, with the user ids it already has. Oldest first: person
    // ids are UUIDv7, so the smallest is the one created first.
    let persons: Vec<(Uuid, Vec<String>)> = sqlx::query_as(
        "SELECT p.person_id,
                coalesce(array_agg(u.key_value) FILTER (WHERE u.key_value IS NOT NULL), '{}')
         FROM (SELECT DISTINCT k.person_id FROM identity_keys k
               JOIN unnest($2::text[], $3::text[]) AS n(kind, value)
                 ON k.key_kind = n.kind AND k.key_value = n.value
               WHERE k.company_id = $1) p
         LEFT JOIN identity_keys u ON u.company_id = $1 AND u.person_id = p.person_id
                                  AND u.key_kind = 'user'
         GROUP BY p.person_id ORDER BY p.person_id",
    )
    .bind(company_id)
    .bind(&kinds)
    .bind(&values)
    .fetch_all(&mut **tx)
    .await?;
    let plan = plan_link(keys, &persons);
    if !plan.merge.is_empty() {
        sqlx::query(
            "UPDATE identity_keys SET person_id = $2, linked_at = now()
             WHERE company_id = $1 AND person_id = ANY($3)",
        )
        .bind(company_id)
        .bind(plan.person)
        .bind(&plan.merge)
        .execute(&mut **tx)
        .await?;
    }
    if plan.move_visitor {
        // A shared device: the device now belongs to this person, the other person (who has
        // another user id) keeps everything else. Every key of the person losing the device
        // is marked as relinked too: its orders lose that device's sessions, and attribution
        // finds the orders to redo by the keys relinked since its last run.
        sqlx::query(
            "WITH old AS (SELECT person_id FROM identity_keys
                          WHERE company_id = $1 AND key_kind = $3 AND key_value = $4)
             UPDATE identity_keys k SET linked_at = now(),
                 person_id = CASE WHEN k.key_kind = $3 AND k.key_value = $4
                                  THEN $2 ELSE k.person_id END
             FROM old WHERE k.company_id = $1 AND k.person_id = old.person_id",
        )
        .bind(company_id)
        .bind(plan.person)
        .bind(kinds[0])
        .bind(&values[0])
        .execute(&mut **tx)
        .await?;
    }
    let person = plan.person;
    let added = sqlx::query(
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
    .await?
    .rows_affected();
    if added > 0 || !plan.merge.is_empty() || plan.move_visitor {
        // The person's keys changed: the order worker gives the orders of its visitors the
        // customer they now resolve to (a guest order becomes the identified customer's).
        // A repeated identify changes nothing and notes nothing.
        sqlx::query("INSERT INTO customer_relinks (company_id, person_id) VALUES ($1, $2)")
            .bind(company_id)
            .bind(person)
            .execute(&mut **tx)
            .await?;
    }
    Ok(person)
}

/// What linking some keys does to the persons they point at.
#[derive(Debug, PartialEq, Eq)]
struct LinkPlan {
    /// The person the keys end up with.
    person: Uuid,
    /// Persons merged into it.
    merge: Vec<Uuid>,
    /// Whether the visitor key (always the first key) moves over on its own.
    move_visitor: bool,
}

/// Persons merge unless that would join two different user ids: two people who log in on
/// one shared device stay two people, and the device goes to the one who logged in last.
fn plan_link(keys: &[IdentityKey], persons: &[(Uuid, Vec<String>)]) -> LinkPlan {
    let user = keys.iter().find_map(|k| match k {
        IdentityKey::User(u) => Some(u.clone()),
        _ => None,
    });
    // The target: the person already holding this user id, else the oldest without a
    // conflicting user id, else a new person.
    let target = persons
        .iter()
        .find(|(_, users)| user.as_ref().is_some_and(|u| users.contains(u)))
        .or_else(|| {
            persons.iter().find(|(_, users)| {
                users.is_empty() || user.as_ref().is_none_or(|u| users.contains(u))
            })
        });
    let Some((person, target_users)) = target else {
        // Every existing person has another user id: a new person, and the device moves.
        return LinkPlan {
            person: Uuid::now_v7(),
            merge: Vec::new(),
            move_visitor: !persons.is_empty(),
        };
    };
    let mut allowed: Vec<&String> = target_users.iter().collect();
    allowed.extend(user.as_ref());
    let (mut merge, mut conflicting) = (Vec::new(), false);
    for (other, users) in persons {
        if other == person {
            continue;
        }
        if users.iter().all(|u| allowed.contains(&u)) {
            merge.push(*other);
        } else {
            conflicting = true;
        }
    }
    LinkPlan {
        person: *person,
        merge,
        move_visitor: conflicting,
    }
}

/// The person a visitor belongs to, if it was ever linked.
pub async fn person_of_visitor(
    tx: &mut Transaction<'_, Postgres>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u128, users: &[&str]) -> (Uuid, Vec<String>) {
        (
            Uuid::from_u128(n),
            users.iter().map(|u| u.to_string()).collect(),
        )
    }

    #[test]
    fn anonymous_and_email_only_persons_merge_into_the_user() {
        let keys = [
            IdentityKey::Visitor(Uuid::from_u128(9)),
            IdentityKey::User("a".into()),
        ];
        let plan = plan_link(&keys, &[p(1, &[]), p(2, &["a"])]);
        assert_eq!(plan.person, Uuid::from_u128(2));
        assert_eq!(plan.merge, vec![Uuid::from_u128(1)]);
        assert!(!plan.move_visitor);
    }

    #[test]
    fn two_users_on_one_device_stay_two_people() {
        // The device was linked to user a (person 1); now user b logs in on it.
        let keys = [
            IdentityKey::Visitor(Uuid::from_u128(9)),
            IdentityKey::User("b".into()),
        ];
        let plan = plan_link(&keys, &[p(1, &["a"]), p(2, &["b"])]);
        assert_eq!(plan.person, Uuid::from_u128(2));
        assert!(plan.merge.is_empty());
        assert!(plan.move_visitor);
        // b's first login anywhere: a new person takes the device.
        let plan = plan_link(&keys, &[p(1, &["a"])]);
        assert!(plan.move_visitor && plan.merge.is_empty());
        assert_ne!(plan.person, Uuid::from_u128(1));
    }
}
