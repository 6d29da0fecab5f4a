//! Privacy at ingest: keyed hashing of IPs (daily salts, destroyed after the day) and emails,
//! placeholder ids that must never link anyone, and suppression of people and companies.
//! Privacy operations (SPEC §9): the consent ledger ([`consent`]), requests and their
//! deadlines ([`requests`]), export and erasure of a person ([`person`]), raw-event retention
//! ([`retention`]) and `POST /api/v1/privacy/requests` ([`api`]).

pub mod api;
pub mod consent;
pub mod person;
pub mod requests;
pub mod retention;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::RwLock;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Hashes IPs with HMAC-SHA256 under the salt of the current UTC day.
///
/// The salt is shared by every node through the `ip_salts` table (so hashes agree across
/// nodes), cached here, and when the day changes the rows of earlier days are deleted: once a
/// salt is gone, a stored hash cannot be matched to an address even by trying all 2^32 IPv4
/// addresses. The company id is part of the message, so two companies never share a hash.
pub struct IpHasher {
    pool: PgPool,
    today: RwLock<Option<(NaiveDate, [u8; 32])>>,
}

/// Today's salt, fetched once per request and applied to each event's IP.
#[derive(Clone, Copy)]
pub struct DailySalt([u8; 32]);

impl DailySalt {
    pub fn hash_ip(&self, company_id: Uuid, ip: &std::net::IpAddr) -> Vec<u8> {
        hmac(&self.0, &[company_id.as_bytes(), ip.to_string().as_bytes()]).to_vec()
    }
}

impl IpHasher {
    pub fn new(pool: PgPool) -> Self {
        IpHasher {
            pool,
            today: RwLock::new(None),
        }
    }

    /// The salt of `now`'s UTC day (made, and older ones destroyed, by the first caller).
    pub async fn salt(&self, now: DateTime<Utc>) -> Result<DailySalt, sqlx::Error> {
        let day = now.date_naive();
        if let Some((cached_day, salt)) = *self.today.read().await
            && cached_day == day
        {
            return Ok(DailySalt(salt));
        }
        let mut guard = self.today.write().await;
        if let Some((cached_day, salt)) = *guard
            && cached_day == day
        {
            return Ok(DailySalt(salt));
        }
        let salt = rotate(&self.pool, day).await?;
        *guard = Some((day, salt));
        Ok(DailySalt(salt))
    }
}

/// Makes sure `day` has a salt (the first node to ask creates it), destroys older salts, and
/// returns the day's salt.
async fn rotate(pool: &PgPool, day: NaiveDate) -> Result<[u8; 32], sqlx::Error> {
    let candidate: [u8; 32] = rand::rng().random();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO ip_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
        .bind(day)
        .bind(candidate.as_slice())
        .execute(&mut *tx)
        .await?;
    let salt: Vec<u8> = sqlx::query_scalar("SELECT salt FROM ip_salts WHERE day = $1")
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM ip_salts WHERE day < $1")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&salt);
    Ok(out)
}

/// An email address as it is hashed: trimmed and lowercased. `None` when the text is not an
/// email address (no `@`, an empty side, a second `@`, longer than 320 bytes).
pub fn normalise_email(email: &str) -> Option<String> {
    let normalised = email.trim().to_lowercase();
    let (local, domain) = normalised.split_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') || normalised.len() > 320 {
        return None;
    }
    Some(normalised)
}

/// The keyed hash of every personal identifier we keep (emails here, E.164 phone numbers in
/// the messages domain's recipients): HMAC-SHA256 of the already normalised text under the
/// company's key, so the same identifier hashes differently in two companies.
pub fn keyed_hash(company_key: &[u8], normalised: &str) -> [u8; 32] {
    hmac(company_key, &[normalised.as_bytes()])
}

/// A keyed hash of a normalised email address. The address itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailHash([u8; 32]);

impl EmailHash {
    /// Normalises (trim, lowercase) and hashes with the company's key. `None` when the text
    /// is not an email address.
    pub fn of(company_key: &[u8], email: &str) -> Option<EmailHash> {
        let normalised = normalise_email(email)?;
        Some(EmailHash(keyed_hash(company_key, &normalised)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A hash read back from storage.
    pub fn from_bytes(bytes: &[u8]) -> Option<EmailHash> {
        Some(EmailHash(bytes.try_into().ok()?))
    }

    /// The form used as a key in identity and suppression tables.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Replaces email addresses in free text with `[email]`: `jane@x.com` and the URL-encoded
/// `jane%40x.com` alike. Emails reach analytics by accident (a `?email=` on a landing page,
/// a form field copied into properties); only their keyed hash may be stored.
pub fn redact_emails(text: &str) -> std::borrow::Cow<'_, str> {
    // Runs on every string of every event: no allocation unless there is something to do.
    let bytes = text.as_bytes();
    let encoded_at = |i: usize| bytes[i..].starts_with(b"%40");
    if !text.contains('@') && !(0..bytes.len()).any(encoded_at) {
        return std::borrow::Cow::Borrowed(text);
    }
    let is_local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let is_domain = |b: u8| b.is_ascii_alphanumeric() || b".-".contains(&b);
    let (mut out, mut last, mut i) = (String::with_capacity(text.len()), 0, 0);
    while i < bytes.len() {
        let at = if bytes[i] == b'@' {
            1
        } else if encoded_at(i) {
            3
        } else {
            0
        };
        if at == 0 {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > last && is_local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = i + at;
        while end < bytes.len() && is_domain(bytes[end]) {
            end += 1;
        }
        while end > i + at && bytes[end - 1] == b'.' {
            end -= 1;
        }
        let domain = &text[i + at..end];
        if start < i && domain.contains('.') && !domain.starts_with('.') {
            out.push_str(&text[last..start]);
            out.push_str("[email]");
            last = end;
            i = end;
        } else {
            i += at;
        }
    }
    out.push_str(&text[last..]);
    std::borrow::Cow::Owned(out)
}

/// [`redact_emails`] on the part of a URL after its host (path, query, fragment), so the
/// URL stays parseable.
pub fn redact_url_emails(url: &str) -> std::borrow::Cow<'_, str> {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = url[after_scheme..]
        .find(['/', '?', '#'])
        .map(|i| after_scheme + i)
        .unwrap_or(url.len());
    match redact_emails(&url[path_start..]) {
        std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(url),
        std::borrow::Cow::Owned(rest) => {
            std::borrow::Cow::Owned(format!("{}{rest}", &url[..path_start]))
        }
    }
}

/// [`redact_emails`] on every string inside a JSON value.
pub fn redact_json_emails(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = redact_emails(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json_emails),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json_emails),
        _ => {}
    }
}

/// Values that clients send when they have no id ("undefined", "null", "0", ...). Linking on
/// them would merge every anonymous user into one person, so they are treated as absent.
pub fn is_placeholder_id(id: &str) -> bool {
    const PLACEHOLDERS: &[&str] = &[
        "",
        "null",
        "undefined",
        "nil",
        "none",
        "nan",
        "anonymous",
        "anon",
        "guest",
        "unknown",
        "0",
        "-1",
        "false",
        "true",
        "[object object]",
        "n/a",
        "na",
        "-",
        "user",
        "test",
        "00000000-0000-0000-0000-000000000000",
    ];
    let id = id.trim().to_ascii_lowercase();
    PLACEHOLDERS.contains(&id.as_str())
}

/// Who to suppress.
#[derive(Debug, Clone)]
pub enum SuppressionTarget {
    User(String),
    Visitor(Uuid),
    Email(String),
    /// The whole company: tracking is turned off.
    Company,
}

/// Why a suppression was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("--email is not an email address")]
    NotAnEmail,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The form a suppressed identifier is stored in (`suppressions.value`): SHA-256 of the
/// company's hash key, the kind and the identifier (for an email, its keyed hash in hex), in
/// hex — the same as SQL `lux_suppression_key`. The list of people who asked not to be
/// tracked holds none of their identifiers.
pub fn suppression_key(company_key: &[u8], kind: &str, value: &str) -> String {
    use sha2::Digest;
    let mut digest = Sha256::new();
    digest.update(company_key);
    digest.update(kind.as_bytes());
    digest.update(b":");
    digest.update(value.as_bytes());
    hex::encode(digest.finalize())
}

/// The company's key for hashing emails and suppression keys.
pub async fn company_hash_key(
    conn: &mut sqlx::PgConnection,
    company_id: Uuid,
) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query_scalar("SELECT hash_key FROM companies WHERE company_id = $1")
        .bind(company_id)
        .fetch_one(conn)
        .await
}

/// Stops collection for a person (or a whole company) from now on. Runs as the owner (CLI).
pub async fn suppress(
    owner: &PgPool,
    company_id: crate::ids::CompanyId,
    target: &SuppressionTarget,
) -> Result<(), SuppressError> {
    let (kind, value) = match target {
        SuppressionTarget::Company => {
            sqlx::query("UPDATE companies SET tracking_enabled = false WHERE company_id = $1")
                .bind(company_id)
                .execute(owner)
                .await?;
            return Ok(());
        }
        SuppressionTarget::User(user) => ("user", user.clone()),
        SuppressionTarget::Visitor(visitor) => ("visitor", visitor.to_string()),
        SuppressionTarget::Email(email) => ("email", email.clone()),
    };
    let mut conn = owner.acquire().await?;
    let key = company_hash_key(&mut conn, company_id.uuid()).await?;
    let value = if kind == "email" {
        EmailHash::of(&key, &value)
            .ok_or(SuppressError::NotAnEmail)?
            .to_hex()
    } else {
        value
    };
    sqlx::query(
        "INSERT INTO suppressions (company_id, kind, value) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(company_id)
    .bind(kind)
    .bind(suppression_key(&key, kind, &value))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_hash_normalises_and_is_keyed() {
        let a = EmailHash::of(b"key-a", " Jane@Example.COM ").unwrap();
        assert_eq!(a, EmailHash::of(b"key-a", "jane@example.com").unwrap());
        assert_ne!(a, EmailHash::of(b"key-b", "jane@example.com").unwrap());
        assert!(EmailHash::of(b"k", "not-an-email").is_none());
        assert!(EmailHash::of(b"k", "@example.com").is_none());
    }

    #[test]
    fn emails_are_redacted_from_text_urls_and_json() {
        assert_eq!(
            redact_emails("contact Jane.Doe+x@Example.co.uk now"),
            "contact [email] now"
        );
        assert_eq!(redact_emails("no email here: a@b"), "no email here: a@b");
        assert_eq!(
            redact_url_emails("https://s.test/welcome?email=jane%40example.com&x=1"),
            "https://s.test/welcome?email=[email]&x=1"
        );
        assert_eq!(
            redact_url_emails("https://s.test/plain"),
            "https://s.test/plain"
        );
        let mut v = serde_json::json!({"a": ["x jane@example.com"], "b": {"c": "ok"}});
        redact_json_emails(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x [email]"], "b": {"c": "ok"}}));
    }

    #[test]
    fn suppression_keys_are_keyed_and_hide_the_identifier() {
        let a = suppression_key(b"key-a", "user", "u-1");
        assert_eq!(a.len(), 64);
        assert!(!a.contains("u-1"));
        assert_ne!(a, suppression_key(b"key-b", "user", "u-1"));
        assert_ne!(a, suppression_key(b"key-a", "visitor", "u-1"));
    }

    #[test]
    fn placeholders_never_count_as_ids() {
        for id in ["null", "undefined", "Anonymous", "0", " ", "NaN"] {
            assert!(is_placeholder_id(id), "{id:?}");
        }
        assert!(!is_placeholder_id("user-42"));
    }

    #[test]
    fn ip_hash_depends_on_company_and_salt() {
        let ip: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let s1 = DailySalt([1; 32]);
        let s2 = DailySalt([2; 32]);
        assert_ne!(s1.hash_ip(a, &ip), s1.hash_ip(b, &ip));
        assert_ne!(s1.hash_ip(a, &ip), s2.hash_ip(a, &ip));
        assert_eq!(s1.hash_ip(a, &ip), s1.hash_ip(a, &ip));
    }
}
