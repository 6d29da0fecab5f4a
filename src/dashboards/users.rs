//! Dashboard users and their grants (`lux user create`, `lux user grant`): staff logins with
//! an argon2id password, each granted one or more companies as a viewer or an admin.
//!
//! A user's email is a staff login, not a visitor's personal data: it is stored as typed
//! (trimmed, lower case) so a person can find their login, and never logged.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngExt as _;
use sqlx::PgPool;
use uuid::Uuid;

use crate::ids::CompanyId;

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why a user command failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0:?} is not an email address")]
    Email(String),
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    ShortPassword,
    #[error("a user with email {0} exists already")]
    Exists(String),
    #[error("no user with email {0} (create it with `lux user create --email ...`)")]
    NoUser(String),
    #[error("no company {0} (see `lux company list`)")]
    NoCompany(Uuid),
    #[error("{0:?} is not a role: viewer or admin")]
    Role(String),
    #[error("hashing the password")]
    Hash,
    #[error("database")]
    Database(#[from] sqlx::Error),
}

/// A login email: trimmed, lower case, one `@` with text on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Email, UserError> {
        let normal = text.trim().to_lowercase();
        let valid = normal.len() <= 320
            && !normal.chars().any(char::is_whitespace)
            && matches!(normal.split_once('@'), Some((user, domain))
                if !user.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if valid {
            Ok(Email(normal))
        } else {
            Err(UserError::Email(text.trim().chars().take(80).collect()))
        }
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A new password: at least [`MIN_PASSWORD_CHARS`] characters. Not `Debug`, so it cannot
/// end up in a log line by accident.
pub struct Password(String);

impl Password {
    pub fn parse(text: &str) -> Result<Password, UserError> {
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(UserError::ShortPassword);
        }
        Ok(Password(text.to_string()))
    }

    /// A random password for a demo login (24 letters and digits).
    pub fn generate() -> Password {
        const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::rng();
        let text = (0..24)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        Password(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What a user may do in a company. Both see every dashboard; only an admin changes the
/// company's alert settings on the alerts page ([`super::alert_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Result<Role, UserError> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "admin" => Ok(Role::Admin),
            other => Err(UserError::Role(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// An argon2id PHC string of `password` (the crate's default parameters: 19 MiB, 2
/// passes, OWASP's minimum). CPU-heavy: call it off the async runtime.
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| UserError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| UserError::Hash)
}

/// Whether `password` matches the PHC string `hash`. CPU-heavy, like [`hash_password`].
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Creates a user (`owner`: the owner's pool). A second user with the same email is refused.
pub async fn create_user(
    owner: &PgPool,
    email: &Email,
    password: &Password,
) -> Result<Uuid, UserError> {
    let hash = hash_blocking(password).await?;
    let user_id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO users (user_id, email, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(user_id)
    .bind(email.as_ref())
    .bind(hash)
    .execute(owner)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(UserError::Exists(email.as_ref().to_string()));
    }
    Ok(user_id)
}

/// Creates the user, or sets the password of the existing one (the demo's login, made again
/// by each `lux demo`).
pub async fn upsert_user(
    owner: &PgPool,
    email: &Email,
    password: &Password,
) -> Result<Uuid, UserError> {
    let hash = hash_blocking(password).await?;
    let user_id: Uuid = sqlx::query_scalar(
        "INSERT INTO users (user_id, email, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash
         RETURNING user_id",
    )
    .bind(Uuid::now_v7())
    .bind(email.as_ref())
    .bind(hash)
    .fetch_one(owner)
    .await?;
    Ok(user_id)
}

/// Grants `email`'s user `company` with `role` (a second grant changes the role).
pub async fn grant(
    owner: &PgPool,
    email: &Email,
    company: CompanyId,
    role: Role,
) -> Result<(), UserError> {
    let user_id: Option<Uuid> = sqlx::query_scalar("SELECT user_id FROM users WHERE email = $1")
        .bind(email.as_ref())
        .fetch_optional(owner)
        .await?;
    let user_id = user_id.ok_or_else(|| UserError::NoUser(email.as_ref().to_string()))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM companies WHERE company_id = $1)")
            .bind(company.uuid())
            .fetch_one(owner)
            .await?;
    if !exists {
        return Err(UserError::NoCompany(company.uuid()));
    }
    sqlx::query(
        "INSERT INTO user_grants (company_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (company_id, user_id) DO UPDATE SET role = EXCLUDED.role",
    )
    .bind(company.uuid())
    .bind(user_id)
    .bind(role.as_str())
    .execute(owner)
    .await?;
    Ok(())
}

async fn hash_blocking(password: &Password) -> Result<String, UserError> {
    let text = password.0.clone();
    tokio::task::spawn_blocking(move || hash_password(&text))
        .await
        .map_err(|_| UserError::Hash)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased_and_need_one_at_sign() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_ref(),
            "ann@example.com"
        );
        for bad in ["", "ann", "@example.com", "ann@", "a@b@c", "a n@b.c"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_password_hash_is_argon2id_and_verifies_only_its_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterx"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert!(Password::parse("short").is_err());
        assert_eq!(Password::generate().expose().len(), 24);
    }
}
