//! Signing in to the dashboards: sessions in a cookie, CSRF tokens, throttled logins.
//!
//! - The session cookie (`lux_session`) holds 32 random bytes; `user_sessions` keeps their
//!   SHA-256 only, so a database dump signs nobody in. HttpOnly, SameSite=Lax, Secure when
//!   the service's public URL is https.
//! - Every form carries a CSRF token. Signed in, it is derived from the session token (a
//!   keyed hash: nothing to store, different per session). The login form, before any
//!   session, uses a double-submit cookie (`lux_csrf`) the form must repeat.
//! - Failed logins are counted per email and hashed client address; after
//!   [`MAX_FAILURES`] in [`THROTTLE_WINDOW`], that pair gets 429 until the oldest ages out.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header;
use chrono::{DateTime, Duration, Utc};
use rand::RngExt as _;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::users::{Email, verify_password};

pub const SESSION_COOKIE: &str = "lux_session";
pub const LOGIN_CSRF_COOKIE: &str = "lux_csrf";
/// How long a sign-in lasts.
pub const SESSION_LIFETIME: Duration = Duration::days(7);
/// Failed logins allowed per email and client address within [`THROTTLE_WINDOW`].
pub const MAX_FAILURES: i64 = 10;
pub const THROTTLE_WINDOW: Duration = Duration::minutes(15);

/// A random token for a cookie (43 characters of base64url).
pub fn new_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The CSRF token of a signed-in session: a hash of its token under a fixed label.
pub fn session_csrf(session_token: &str) -> String {
    hex::encode(&sha256(&[b"lux dashboards csrf", session_token.as_bytes()])[..16])
}

/// Whether the submitted token equals the expected one, in constant time.
pub fn tokens_match(expected: &str, submitted: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value with the flags every cookie of the app has.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/app; Max-Age={max_age_seconds}; HttpOnly; SameSite=Lax{secure}")
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: Uuid,
    pub email: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub token_hash: [u8; 32],
}

/// The user of the request's session cookie, if it names a live session.
pub async fn signed_in(
    pool: &PgPool,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Option<SignedIn>, sqlx::Error> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let token_hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let row: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT u.user_id, u.email FROM user_sessions s JOIN users u USING (user_id)
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(token_hash.as_slice())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(user_id, email)| SignedIn {
        user_id,
        email,
        csrf: session_csrf(token),
        token_hash,
    }))
}

/// Starts a session for `user_id`; returns the cookie's token. Expired sessions of every
/// user are cleared on the way (a sign-in is rare enough to pay for it).
pub async fn start_session(
    pool: &PgPool,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<String, sqlx::Error> {
    let token = new_token();
    let token_hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    sqlx::query("DELETE FROM user_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO user_sessions (token_hash, user_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash.as_slice())
    .bind(user_id)
    .bind(now)
    .bind(now + SESSION_LIFETIME)
    .execute(pool)
    .await?;
    Ok(token)
}

pub async fn end_session(pool: &PgPool, token_hash: &[u8; 32]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_sessions WHERE token_hash = $1")
        .bind(token_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(())
}

/// What a login attempt came to.
pub enum Attempt {
    SignedIn(Uuid),
    WrongPassword,
    /// Too many failures: retry after this many seconds.
    Throttled(i64),
}

/// The throttle's key: the email with the client address hashed under today's salt.
pub fn throttle_key(email: &str, ip_hash: &[u8]) -> [u8; 32] {
    sha256(&[b"lux login throttle", email.as_bytes(), ip_hash])
}

/// Checks the throttle, then the password; records a failure or clears the key's failures.
pub async fn attempt_login(
    pool: &PgPool,
    email: Option<&Email>,
    password: String,
    key: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Attempt, sqlx::Error> {
    let (failures, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(failed_at) FROM login_failures
         WHERE throttle_key = $1 AND failed_at > $2",
    )
    .bind(key.as_slice())
    .bind(now - THROTTLE_WINDOW)
    .fetch_one(pool)
    .await?;
    if failures >= MAX_FAILURES {
        let until = oldest.unwrap_or(now) + THROTTLE_WINDOW;
        return Ok(Attempt::Throttled((until - now).num_seconds().max(1)));
    }
    let user: Option<(Uuid, String)> = match email {
        Some(email) => {
            sqlx::query_as("SELECT user_id, password_hash FROM users WHERE email = $1")
                .bind(email.as_ref())
                .fetch_optional(pool)
                .await?
        }
        None => None,
    };
    // An unknown email costs the same hashing as a known one, so timing does not tell
    // which emails have logins.
    let (user_id, hash) = match user {
        Some((id, hash)) => (Some(id), hash),
        None => (None, DUMMY_HASH.to_string()),
    };
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    match (user_id, matches) {
        (Some(user_id), true) => {
            sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
                .bind(key.as_slice())
                .execute(pool)
                .await?;
            Ok(Attempt::SignedIn(user_id))
        }
        _ => {
            sqlx::query(
                "WITH gone AS (DELETE FROM login_failures WHERE throttle_key = $1 AND failed_at <= $3)
                 INSERT INTO login_failures (throttle_key, failed_at) VALUES ($1, $2)",
            )
            .bind(key.as_slice())
            .bind(now)
            .bind(now - THROTTLE_WINDOW)
            .execute(pool)
            .await?;
            Ok(Attempt::WrongPassword)
        }
    }
}

/// An argon2id hash of a random password nobody knows, verified against when the email has
/// no user.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| super::users::hash_password(&new_token()).unwrap_or_default());

/// The client address hashed for the throttle: never stored or logged as such.
pub fn hash_ip(salt: &crate::privacy::DailySalt, ip: &IpAddr) -> Vec<u8> {
    salt.hash_ip(Uuid::nil(), ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_and_set_with_every_flag() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; lux_session=abc; b=".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), None);
        let set = set_cookie(SESSION_COOKIE, "abc", 60, true);
        for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/app"] {
            assert!(set.contains(flag), "{set}");
        }
        assert!(!set_cookie("x", "y", 1, false).contains("Secure"));
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(session_csrf(&a), session_csrf(&b));
        assert!(tokens_match(&session_csrf(&a), &session_csrf(&a)));
        assert!(!tokens_match(&session_csrf(&a), ""));
        assert!(!tokens_match("", ""));
    }
}
