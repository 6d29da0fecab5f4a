//! The experiment registry (table `experiments`): what a company says it tests, from when to
//! when, and how it ended. The command line (`lux experiments`) and the API
//! (`/api/v1/experiments`) both go through [`create`], [`conclude`] and [`list`].

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::velocity::ExperimentRecord;
use super::{ExperimentKey, Variant};
use crate::ids::EventName;

/// Longest name and hypothesis (the table's checks).
pub const MAX_NAME: usize = 200;
pub const MAX_HYPOTHESIS: usize = 2000;

/// An experiment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Experiment {
    pub key: String,
    pub name: String,
    pub hypothesis: Option<String>,
    pub primary_event: String,
    pub started_on: NaiveDate,
    pub ended_on: Option<NaiveDate>,
    /// `running` or `concluded`.
    pub status: String,
    /// The winning variant of a concluded experiment; null while running or with no winner.
    pub winner: Option<String>,
}

impl Experiment {
    /// What ops velocity needs of it.
    pub fn record(&self) -> Result<ExperimentRecord, RegistryError> {
        match self.ended_on {
            None => Ok(ExperimentRecord::running(self.started_on)),
            Some(ended) => {
                let winner = self
                    .winner
                    .as_deref()
                    .map(Variant::parse)
                    .transpose()
                    .map_err(|e| RegistryError::Stored(e.to_string()))?;
                ExperimentRecord::concluded(self.started_on, ended, winner)
                    .map_err(|e| RegistryError::Stored(e.to_string()))
            }
        }
    }
}

/// A new experiment, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExperiment {
    pub key: ExperimentKey,
    pub name: String,
    pub hypothesis: Option<String>,
    pub primary_event: EventName,
    /// `None`: the company's local today.
    pub started_on: Option<NaiveDate>,
}

impl NewExperiment {
    /// Checks the raw fields; each error names the field and what it accepts.
    pub fn parse(
        key: &str,
        name: &str,
        primary_event: &str,
        hypothesis: Option<&str>,
        started_on: Option<NaiveDate>,
    ) -> Result<Self, RegistryError> {
        let key = ExperimentKey::parse(key).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(RegistryError::Invalid(format!(
                "name must be 1 to {MAX_NAME} characters"
            )));
        }
        let primary_event = EventName::parse(primary_event.trim()).ok_or_else(|| {
            RegistryError::Invalid(format!(
                "primary_event {primary_event:?} is not an event name (a letter, then letters, \
                 digits or _ . : -, at most {} characters), e.g. purchase",
                EventName::MAX_LEN
            ))
        })?;
        let hypothesis = hypothesis.map(str::trim).filter(|h| !h.is_empty());
        if hypothesis.is_some_and(|h| h.chars().count() > MAX_HYPOTHESIS) {
            return Err(RegistryError::Invalid(format!(
                "hypothesis is longer than {MAX_HYPOTHESIS} characters"
            )));
        }
        Ok(Self {
            key,
            name: name.to_owned(),
            hypothesis: hypothesis.map(str::to_owned),
            primary_event,
            started_on,
        })
    }

    /// Whether `stored` is this experiment (the same request made twice): every field given
    /// matches; a start left to the default matches any start.
    fn same_as(&self, stored: &Experiment) -> bool {
        stored.name == self.name
            && stored.hypothesis == self.hypothesis
            && stored.primary_event == self.primary_event.as_str()
            && self.started_on.is_none_or(|d| d == stored.started_on)
    }
}

/// How an experiment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Winner(Variant),
    NoWinner,
}

impl Outcome {
    fn winner(&self) -> Option<&str> {
        match self {
            Outcome::Winner(v) => Some(v.as_ref()),
            Outcome::NoWinner => None,
        }
    }
}

/// Why a registry operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("no experiment {0:?} in this company (see `lux experiments list`)")]
    Unknown(String),
    #[error("experiment {key:?} exists with other values: {stored}; pick another key")]
    Duplicate { key: String, stored: String },
    #[error(
        "experiment {key:?} was already concluded on {ended_on} with {outcome}; a conclusion is final"
    )]
    AlreadyConcluded {
        key: String,
        ended_on: NaiveDate,
        outcome: String,
    },
    #[error("ended_on {ended} is before the experiment started ({started})")]
    EndedBeforeStart {
        started: NaiveDate,
        ended: NaiveDate,
    },
    #[error("ended_on {ended} is after today ({today}) in the company's time zone")]
    EndsInFuture { ended: NaiveDate, today: NaiveDate },
    #[error("a stored experiment does not read: {0}")]
    Stored(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// The same experiment was already there (a retried request): nothing changed.
    Existing,
}

const COLUMNS: &str = "key, name, hypothesis, primary_event, started_on, ended_on, status, winner";

/// The company's local date at `now`.
async fn local_today(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    company_id: Uuid,
    now: DateTime<Utc>,
) -> Result<NaiveDate, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT ($2::timestamptz AT TIME ZONE timezone)::date FROM companies
         WHERE company_id = $1",
    )
    .bind(company_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
}

async fn find(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    company_id: Uuid,
    key: &str,
) -> Result<Option<Experiment>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM experiments WHERE company_id = $1 AND key = $2 FOR UPDATE"
    )))
    .bind(company_id)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await
}

/// Registers `new` (starting today, in the company's time zone, unless it says when).
/// Creating the same experiment again is a no-op; the same key with other values is refused.
pub async fn create(
    pool: &PgPool,
    company_id: Uuid,
    new: &NewExperiment,
    now: DateTime<Utc>,
) -> Result<(Created, Experiment), RegistryError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let started_on = match new.started_on {
        Some(day) => day,
        None => local_today(&mut tx, company_id, now).await?,
    };
    let inserted: Option<Experiment> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO experiments (company_id, key, name, hypothesis, primary_event, started_on,
             status)
         VALUES ($1, $2, $3, $4, $5, $6, 'running')
         ON CONFLICT (company_id, key) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(company_id)
    .bind(new.key.as_ref())
    .bind(&new.name)
    .bind(&new.hypothesis)
    .bind(new.primary_event.as_str())
    .bind(started_on)
    .fetch_optional(&mut *tx)
    .await?;
    let answer = match inserted {
        Some(experiment) => (Created::New, experiment),
        None => {
            let stored = find(&mut tx, company_id, new.key.as_ref())
                .await?
                .ok_or_else(|| RegistryError::Unknown(new.key.to_string()))?;
            if !new.same_as(&stored) {
                return Err(RegistryError::Duplicate {
                    key: stored.key.clone(),
                    stored: describe(&stored),
                });
            }
            (Created::Existing, stored)
        }
    };
    tx.commit().await?;
    Ok(answer)
}

fn describe(e: &Experiment) -> String {
    format!(
        "name {:?}, primary_event {:?}, started_on {}",
        e.name, e.primary_event, e.started_on
    )
}

fn outcome_text(winner: Option<&str>) -> String {
    match winner {
        Some(w) => format!("winner {w:?}"),
        None => "no winner".into(),
    }
}

/// Concludes the experiment `key` on `ended_on` (default: the company's today) with
/// `outcome`. The winner may be any variant name: the registry does not wait for the
/// exposures to be rolled up (docs/decisions.md). Concluding again with the same outcome and
/// day is a no-op; with another, refused.
pub async fn conclude(
    pool: &PgPool,
    company_id: Uuid,
    key: &str,
    outcome: &Outcome,
    ended_on: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<Experiment, RegistryError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let stored = find(&mut tx, company_id, key)
        .await?
        .ok_or_else(|| RegistryError::Unknown(key.to_owned()))?;
    let today = local_today(&mut tx, company_id, now).await?;
    let ended = ended_on.unwrap_or(today);
    if let Some(done) = stored.ended_on {
        if stored.winner.as_deref() == outcome.winner() && ended_on.is_none_or(|d| d == done) {
            return Ok(stored);
        }
        return Err(RegistryError::AlreadyConcluded {
            key: stored.key,
            ended_on: done,
            outcome: outcome_text(stored.winner.as_deref()),
        });
    }
    if ended < stored.started_on {
        return Err(RegistryError::EndedBeforeStart {
            started: stored.started_on,
            ended,
        });
    }
    if ended > today {
        return Err(RegistryError::EndsInFuture { ended, today });
    }
    let concluded: Experiment = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE experiments
         SET status = 'concluded', ended_on = $3, winner = $4, updated_at = now()
         WHERE company_id = $1 AND key = $2
         RETURNING {COLUMNS}"
    )))
    .bind(company_id)
    .bind(key)
    .bind(ended)
    .bind(outcome.winner())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(concluded)
}

/// Every experiment of the company, by start day then key.
pub async fn list(pool: &PgPool, company_id: Uuid) -> Result<Vec<Experiment>, RegistryError> {
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM experiments WHERE company_id = $1 ORDER BY started_on, key"
    )))
    .bind(company_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_experiments_are_checked_field_by_field() {
        let ok = NewExperiment::parse("hero", " Hero copy ", "purchase", Some("  "), None).unwrap();
        assert_eq!(ok.name, "Hero copy");
        assert_eq!(ok.hypothesis, None, "a blank hypothesis is none");
        for (key, name, event, says) in [
            ("", "n", "purchase", "key"),
            ("he ro", "n", "purchase", "key"),
            ("hero", " ", "purchase", "name"),
            ("hero", "n", "1purchase", "primary_event"),
        ] {
            let error = NewExperiment::parse(key, name, event, None, None).unwrap_err();
            assert!(error.to_string().contains(says), "{error}");
        }
    }

    #[test]
    fn a_repeated_create_matches_on_the_fields_it_gives() {
        let new = NewExperiment::parse("hero", "Hero", "purchase", None, None).unwrap();
        let stored = Experiment {
            key: "hero".into(),
            name: "Hero".into(),
            hypothesis: None,
            primary_event: "purchase".into(),
            started_on: "2026-11-01".parse().unwrap(),
            ended_on: None,
            status: "running".into(),
            winner: None,
        };
        assert!(new.same_as(&stored));
        let dated = NewExperiment {
            started_on: Some("2026-11-02".parse().unwrap()),
            ..new.clone()
        };
        assert!(!dated.same_as(&stored));
        let renamed = NewExperiment {
            name: "Other".into(),
            ..new
        };
        assert!(!renamed.same_as(&stored));
    }
}
