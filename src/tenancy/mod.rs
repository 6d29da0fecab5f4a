//! Companies and their keys: creating them (CLI), and resolving a request's key to its
//! company and settings on the hot path (cached).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::ids::CompanyId;

/// Which kind of key authenticated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// Public, per site, used by the snippet. Can only send browser events.
    Write,
    /// Server-side. May set trusted fields (ip, user agent) and backfill history.
    Secret,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Write => "write",
            KeyKind::Secret => "secret",
        }
    }
}

const WRITE_KEY_PREFIX: &str = "lux_wk_";
const SECRET_KEY_PREFIX: &str = "lux_sk_";

fn new_key(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::rng().random();
    format!("{prefix}{}", hex::encode(bytes))
}

fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// What `lux company create` prints. The secret key is shown here once and never again.
#[derive(Debug, Serialize)]
pub struct CreatedCompany {
    pub company_id: CompanyId,
    pub name: String,
    pub timezone: String,
    pub currency: String,
    pub write_key: String,
    pub secret_key: String,
}

/// Why a company, key or login was not created or changed. The messages name the command
/// line's flags: these operations are the command line's.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("--name must be 1 to 200 characters")]
    Name,
    #[error("--timezone {0:?} is not an IANA time zone (e.g. Europe/Paris)")]
    Timezone(String),
    #[error("--currency {0:?} is not an ISO 4217 code (e.g. USD)")]
    Currency(String),
    #[error("--origin {0:?} is not a URL origin")]
    NotAnOrigin(String),
    #[error("--origin {0:?} must be an origin like https://shop.example")]
    NotBareOrigin(String),
    #[error("no company {0} (see `lux company list`)")]
    NoCompany(CompanyId),
    #[error("no active key {key_id} for company {company_id} (see `lux company keys`)")]
    NoActiveKey { company_id: CompanyId, key_id: Uuid },
    #[error("--login {0:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit, pg_ or lux_")]
    Login(String),
    #[error("--password: at least 12 characters")]
    Password,
    #[error("creating the login {login:?}: {error}")]
    CreateLogin {
        login: String,
        #[source]
        error: sqlx::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A validated request to create a company.
pub struct NewCompany {
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub currency: String,
    pub allowed_origins: Vec<String>,
}

impl NewCompany {
    pub fn parse(
        name: &str,
        timezone: &str,
        currency: &str,
        allowed_origins: Vec<String>,
    ) -> Result<Self, TenancyError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(TenancyError::Name);
        }
        let timezone: chrono_tz::Tz = timezone
            .parse()
            .map_err(|_| TenancyError::Timezone(timezone.to_string()))?;
        let currency = currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(TenancyError::Currency(currency));
        }
        for origin in &allowed_origins {
            let parsed =
                url::Url::parse(origin).map_err(|_| TenancyError::NotAnOrigin(origin.clone()))?;
            if parsed.origin().ascii_serialization() != origin.trim_end_matches('/') {
                return Err(TenancyError::NotBareOrigin(origin.clone()));
            }
        }
        Ok(NewCompany {
            name: name.to_string(),
            timezone,
            currency,
            allowed_origins: allowed_origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_string())
                .collect(),
        })
    }
}

/// Creates a company with one write key and one secret key. Runs as the owner (CLI).
pub async fn create_company(
    owner: &PgPool,
    new: NewCompany,
) -> Result<CreatedCompany, TenancyError> {
    let company_id = Uuid::now_v7();
    let write_key = new_key(WRITE_KEY_PREFIX);
    let secret_key = new_key(SECRET_KEY_PREFIX);
    let hash_key: [u8; 32] = rand::rng().random();
    let mut tx = owner.begin().await?;
    sqlx::query(
        "INSERT INTO companies (company_id, name, timezone, currency, allowed_origins, hash_key)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(company_id)
    .bind(&new.name)
    .bind(new.timezone.name())
    .bind(&new.currency)
    .bind(&new.allowed_origins)
    .bind(hash_key.as_slice())
    .execute(&mut *tx)
    .await?;
    for (kind, key) in [(KeyKind::Write, &write_key), (KeyKind::Secret, &secret_key)] {
        insert_key(&mut *tx, company_id, kind, key).await?;
    }
    tx.commit().await?;
    Ok(CreatedCompany {
        company_id: CompanyId::from_uuid(company_id),
        name: new.name,
        timezone: new.timezone.name().to_string(),
        currency: new.currency,
        write_key,
        secret_key,
    })
}

fn hash_key_bytes(key: &str) -> Vec<u8> {
    hash_key(key).to_vec()
}

async fn insert_key(
    executor: impl sqlx::PgExecutor<'_>,
    company_id: Uuid,
    kind: KeyKind,
    key: &str,
) -> Result<Uuid, sqlx::Error> {
    let key_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO api_keys (company_id, key_id, kind, key_hash, key_prefix)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(company_id)
    .bind(key_id)
    .bind(kind.as_str())
    .bind(hash_key_bytes(key))
    .bind(&key[..11])
    .execute(executor)
    .await?;
    Ok(key_id)
}

/// A new key for a company (rotation: create the new one, deploy it, revoke the old one).
/// Returns the key, shown once, and its id.
pub async fn create_key(
    owner: &PgPool,
    company_id: CompanyId,
    kind: KeyKind,
) -> Result<(Uuid, String), TenancyError> {
    require_company(owner, company_id).await?;
    let key = new_key(match kind {
        KeyKind::Write => WRITE_KEY_PREFIX,
        KeyKind::Secret => SECRET_KEY_PREFIX,
    });
    let key_id = insert_key(owner, company_id.uuid(), kind, &key).await?;
    Ok((key_id, key))
}

/// Revokes a key; it stops working once the service's key cache expires (30 s by default).
pub async fn revoke_key(
    owner: &PgPool,
    company_id: CompanyId,
    key_id: Uuid,
) -> Result<(), TenancyError> {
    let revoked = sqlx::query(
        "UPDATE api_keys SET revoked_at = now()
         WHERE company_id = $1 AND key_id = $2 AND revoked_at IS NULL",
    )
    .bind(company_id)
    .bind(key_id)
    .execute(owner)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(TenancyError::NoActiveKey { company_id, key_id });
    }
    Ok(())
}

/// A row of `lux company keys`: never the key itself, which is not stored.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct KeyListing {
    pub key_id: Uuid,
    pub kind: String,
    pub key_prefix: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn list_keys(
    owner: &PgPool,
    company_id: CompanyId,
) -> Result<Vec<KeyListing>, TenancyError> {
    require_company(owner, company_id).await?;
    Ok(sqlx::query_as(
        "SELECT key_id, kind, key_prefix, created_at, revoked_at FROM api_keys
         WHERE company_id = $1 ORDER BY created_at",
    )
    .bind(company_id)
    .fetch_all(owner)
    .await?)
}

/// One company's settings as ingestion needs them.
#[derive(Debug, Clone)]
pub struct CompanySettings {
    pub company_id: Uuid,
    pub allowed_origins: Vec<String>,
    pub tracking_enabled: bool,
    pub default_analytics_consent: bool,
    pub hash_key: Vec<u8>,
}

impl CompanySettings {
    /// Whether a browser at `origin` may send events. No list means any origin.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty() || self.allowed_origins.iter().any(|o| o == origin)
    }
}

/// A key resolved to its company.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub kind: KeyKind,
    pub settings: Arc<CompanySettings>,
}

/// Resolves keys to companies, with a short cache so `/e` does not query per request.
/// Unknown keys are cached too, so a flood of bad keys does not reach the database.
pub struct Tenancy {
    pool: PgPool,
    ttl: Duration,
    cache: Mutex<HashMap<KeyHash, CachedTenant>>,
}

type KeyHash = [u8; 32];
/// When a key was resolved, and to what (`None`: unknown key).
type CachedTenant = (Instant, Option<Tenant>);

/// Bound on cached keys; past it the cache is simply cleared.
const MAX_CACHED_KEYS: usize = 100_000;

impl Tenancy {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Tenancy {
            pool,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn resolve(&self, key: &str) -> Result<Option<Tenant>, sqlx::Error> {
        let hash = hash_key(key);
        if let Some((at, tenant)) = self.cache.lock().expect("cache lock").get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(tenant.clone());
        }
        let tenant = self.load(&hash).await?;
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), tenant.clone()));
        Ok(tenant)
    }

    async fn load(&self, hash: &[u8; 32]) -> Result<Option<Tenant>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(Uuid, String)> =
            sqlx::query_as("SELECT company_id, kind FROM lux_resolve_key($1)")
                .bind(hash.as_slice())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((company_id, kind)) = found else {
            return Ok(None);
        };
        crate::db::set_company(&mut tx, company_id).await?;
        let row: Option<(Vec<String>, bool, bool, Vec<u8>)> = sqlx::query_as(
            "SELECT allowed_origins, tracking_enabled, default_analytics_consent, hash_key
             FROM companies WHERE company_id = $1",
        )
        .bind(company_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some((allowed_origins, tracking_enabled, default_analytics_consent, hash_key)) = row
        else {
            return Ok(None);
        };
        Ok(Some(Tenant {
            kind: if kind == "secret" {
                KeyKind::Secret
            } else {
                KeyKind::Write
            },
            settings: Arc::new(CompanySettings {
                company_id,
                allowed_origins,
                tracking_enabled,
                default_analytics_consent,
                hash_key,
            }),
        }))
    }
}

/// Fails with a message naming the id when no such company exists (CLI commands).
pub async fn require_company(owner: &PgPool, company_id: CompanyId) -> Result<(), TenancyError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM companies WHERE company_id = $1)")
            .bind(company_id)
            .fetch_one(owner)
            .await?;
    if !exists {
        return Err(TenancyError::NoCompany(company_id));
    }
    Ok(())
}

/// Creates a database login that reads one company's rollups and nothing else (for
/// Metabase or another dashboard tool): a member of `lux_reader`, listed in `reader_logins`,
/// so row-level security shows it that company's rows whatever `lux.company_id` it sets.
/// Needs an owner that may create roles.
pub async fn create_reader_login(
    owner: &PgPool,
    company_id: CompanyId,
    login: &str,
    password: &str,
) -> Result<(), TenancyError> {
    let valid_login = login.len() <= 63
        && login
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
        && login
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_login || login.starts_with("pg_") || login.starts_with("lux_") {
        return Err(TenancyError::Login(login.to_string()));
    }
    if password.chars().count() < 12 {
        return Err(TenancyError::Password);
    }
    require_company(owner, company_id).await?;
    let mut tx = owner.begin().await?;
    // PostgreSQL quotes the name and the password itself (%I, %L).
    let create: String = sqlx::query_scalar(
        "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE lux_reader', $1::text, $2::text)",
    )
    .bind(login)
    .bind(password)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut *tx)
        .await
        .map_err(|error| TenancyError::CreateLogin {
            login: login.to_string(),
            error,
        })?;
    sqlx::query("INSERT INTO reader_logins (login, company_id) VALUES ($1, $2)")
        .bind(login)
        .bind(company_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A row of `lux company list`.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct CompanyListing {
    pub company_id: Uuid,
    pub name: String,
    pub timezone: String,
    pub currency: String,
    pub tracking_enabled: bool,
}

pub async fn list_companies(owner: &PgPool) -> Result<Vec<CompanyListing>, TenancyError> {
    Ok(sqlx::query_as(
        "SELECT company_id, name, timezone, currency::text AS currency, tracking_enabled
         FROM companies ORDER BY created_at",
    )
    .fetch_all(owner)
    .await?)
}

/// The tenant of a request's secret key, for the endpoints that servers and scripts call
/// (reports, sends, links): only the secret key, only in the `Authorization` header; a public
/// write key is refused (403). `needs` names the endpoint in the 403's message ("reports
/// need").
pub async fn secret_key_tenant(
    tenancy: &Tenancy,
    headers: &axum::http::HeaderMap,
    needs: &str,
) -> Result<Tenant, crate::http::ApiError> {
    let Some(key) = crate::http::key::bearer_key(headers)? else {
        return Err(crate::http::ApiError::Unauthorized(
            "missing key: send the header `Authorization: Bearer SECRET_KEY` with the company's \
             secret key"
                .into(),
        ));
    };
    let tenant = tenancy.resolve(&key).await?.ok_or_else(|| {
        crate::http::ApiError::Unauthorized(
            "unknown or revoked key: send `Authorization: Bearer SECRET_KEY` with a current \
             secret key (`lux company keys`)"
                .into(),
        )
    })?;
    if tenant.kind != KeyKind::Secret {
        return Err(crate::http::ApiError::Forbidden(format!(
            "this is a write key (public, for the snippet); {needs} the company's secret key: \
             `Authorization: Bearer SECRET_KEY`"
        )));
    }
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_input_is_validated() {
        assert!(NewCompany::parse("Shop", "Europe/Paris", "eur", vec![]).is_ok());
        assert!(NewCompany::parse("", "UTC", "USD", vec![]).is_err());
        assert!(NewCompany::parse("Shop", "Mars/Olympus", "USD", vec![]).is_err());
        assert!(NewCompany::parse("Shop", "UTC", "US", vec![]).is_err());
        assert!(
            NewCompany::parse("Shop", "UTC", "USD", vec!["https://a.test/path".into()]).is_err()
        );
        let ok = NewCompany::parse("Shop", "UTC", "USD", vec!["https://a.test/".into()]).unwrap();
        assert_eq!(ok.allowed_origins, vec!["https://a.test".to_string()]);
    }

    #[test]
    fn keys_are_distinct_and_prefixed() {
        let (w, s) = (new_key(WRITE_KEY_PREFIX), new_key(SECRET_KEY_PREFIX));
        assert!(w.starts_with("lux_wk_") && s.starts_with("lux_sk_"));
        assert_eq!(w.len(), 7 + 48);
        assert_ne!(hash_key(&w), hash_key(&s));
    }
}
