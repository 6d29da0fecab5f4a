//! The daily fatigue job (SPEC §8.2): for each creative, [`fatigue::assess`] as of each local
//! day from its daily impressions and clicks in `rollup_creative_days`, one row per creative
//! and day in `creative_fatigue_history`.
//!
//! The history, not only the latest status, is kept: the `creative_fatigue` alert fires on
//! the day a creative enters `fatigued`, and the report reads the status as of any day.
//! Rerunning a day replaces that day's row (a row whose verdict did not change keeps its
//! `computed_at`). A creative is assessed from its first live day (with impressions) to
//! [`fatigue::WINDOW_DAYS`] days after its last one: by then its recent window is empty, its
//! status `insufficient_data` ("not served"), and later days would only repeat that.
//!
//! Days are assessed only once complete: up to the company's yesterday.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeDelta};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::fatigue::{self, Assessment, DailySeries, DailyStats, Status};

/// Bumped whenever the rules below change: every day is then recomputed.
pub const RULES_VERSION: u32 = 1;

/// The rules in words, with their version: a run under other rules recomputes every day.
pub fn rules() -> String {
    format!(
        "v{RULES_VERSION} live_days={} impressions={} window={} fatigued={}/{} watch={}/{} \
         alpha={}",
        fatigue::MIN_LIVE_DAYS,
        fatigue::MIN_IMPRESSIONS,
        fatigue::WINDOW_DAYS,
        fatigue::FATIGUE_RATIO.0,
        fatigue::FATIGUE_RATIO.1,
        fatigue::WATCH_RATIO.0,
        fatigue::WATCH_RATIO.1,
        fatigue::ALPHA
    )
}

/// Rows per insert statement.
const ROWS_PER_STATEMENT: usize = 5_000;

/// Which days a run assesses (never after `last`, the company's last complete day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every day of every creative.
    All,
    /// Every day from this one on.
    From(NaiveDate),
    /// These days, both included.
    Days { from: NaiveDate, to: NaiveDate },
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The days assessed (first, last), if any.
    pub days: Option<(NaiveDate, NaiveDate)>,
    /// Creative days read from the rollups.
    pub examined: u64,
    /// Rows written with a new or changed verdict, and rows removed.
    pub changed: u64,
}

/// One verdict to store.
struct Verdict {
    creative_id: String,
    day: NaiveDate,
    assessment: Assessment,
}

/// Assesses the days of `scope` up to `last` (the company's last complete local day) and
/// stores them, in one transaction.
pub async fn run(
    pool: &PgPool,
    company_id: Uuid,
    scope: Scope,
    last: NaiveDate,
) -> Result<Outcome, sqlx::Error> {
    let (from, to) = match scope {
        Scope::All => (NaiveDate::MIN, last),
        Scope::From(from) => (from, last),
        Scope::Days { from, to } => (from, to.min(last)),
    };
    if from > to {
        return Ok(Outcome::default());
    }
    let mut tx = crate::db::begin_for_company(pool, company_id).await?;
    let (series, examined) = read_series(&mut tx, company_id, (from, to)).await?;
    let mut verdicts = Vec::new();
    for (creative_id, days) in series {
        verdicts.extend(assess_creative(&creative_id, days, (from, to)));
    }
    let mut changed = remove_stale(&mut tx, company_id, (from, to), &verdicts).await?;
    for chunk in verdicts.chunks(ROWS_PER_STATEMENT) {
        changed += store(&mut tx, company_id, chunk).await?;
    }
    tx.commit().await?;
    // The days judged: none when there was nothing to judge or remove.
    let first = if verdicts.is_empty() && changed == 0 {
        None
    } else if from == NaiveDate::MIN {
        verdicts.iter().map(|v| v.day).min()
    } else {
        Some(from)
    };
    let days = first.map(|first| (first, to));
    Ok(Outcome {
        days,
        examined,
        changed,
    })
}

/// The daily impressions and clicks up to `to`, by creative, of the creatives that can have a
/// verdict from `from` on: live on some day from a week before it (a creative whose last live
/// day is older is judged no more; [`assess_creative`]).
async fn read_series(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<(BTreeMap<String, Vec<(NaiveDate, i64, i64)>>, u64), sqlx::Error> {
    let since =
        (from != NaiveDate::MIN).then(|| from - TimeDelta::days(fatigue::WINDOW_DAYS as i64));
    let rows: Vec<(String, NaiveDate, i64, i64)> = sqlx::query_as(
        "SELECT creative_id, day, impressions, clicks FROM rollup_creative_days
         WHERE company_id = $1 AND day <= $2 AND impressions > 0
           AND ($3::date IS NULL OR creative_id IN (
                   SELECT creative_id FROM rollup_creative_days
                   WHERE company_id = $1 AND day >= $3 AND day <= $2 AND impressions > 0))
         ORDER BY creative_id, day",
    )
    .bind(company_id)
    .bind(to)
    .bind(since)
    .fetch_all(&mut **tx)
    .await?;
    let examined = rows.len() as u64;
    let mut series: BTreeMap<String, Vec<(NaiveDate, i64, i64)>> = BTreeMap::new();
    for (creative_id, day, impressions, clicks) in rows {
        series
            .entry(creative_id)
            .or_default()
            .push((day, impressions, clicks));
    }
    Ok((series, examined))
}

/// The verdicts of one creative for the days of `(from, to)` between its first live day and
/// [`fatigue::WINDOW_DAYS`] after its last. A day whose spend rows have more clicks than
/// impressions cannot be a series: every day from then on is `insufficient_data`, saying so.
fn assess_creative(
    creative_id: &str,
    days: Vec<(NaiveDate, i64, i64)>,
    (from, to): (NaiveDate, NaiveDate),
) -> Vec<Verdict> {
    let (Some(first), Some(last_live)) = (days.first().map(|d| d.0), days.last().map(|d| d.0))
    else {
        return Vec::new();
    };
    let start = first.max(from);
    let end = (last_live + TimeDelta::days(fatigue::WINDOW_DAYS as i64)).min(to);
    let stats: Result<Vec<DailyStats>, _> = days
        .iter()
        .map(|&(day, i, c)| DailyStats::new(day, i.max(0) as u64, c.max(0) as u64))
        .collect();
    let series = stats.and_then(DailySeries::new);
    start
        .iter_days()
        .take_while(|d| *d <= end)
        .map(|day| Verdict {
            creative_id: creative_id.to_owned(),
            day,
            assessment: match &series {
                Ok(series) => fatigue::assess(series, day),
                Err(error) => unreadable(error),
            },
        })
        .collect()
}

/// The verdict for a series the rollups cannot make (clicks above impressions on a day).
fn unreadable(error: &fatigue::SeriesError) -> Assessment {
    Assessment {
        status: Status::InsufficientData,
        baseline: None,
        recent: None,
        baseline_ctr: None,
        recent_ctr: None,
        drop: None,
        p_value: None,
        explanation: format!("Not judged: the spend rows do not add up ({error})."),
    }
}

/// Deletes the rows of `(from, to)` that this run does not write (a creative whose days
/// moved or vanished). Returns how many.
async fn remove_stale(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    (from, to): (NaiveDate, NaiveDate),
    verdicts: &[Verdict],
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM creative_fatigue_history h
         WHERE h.company_id = $1 AND ($2::date IS NULL OR h.day >= $2) AND h.day <= $3
           AND NOT EXISTS (SELECT 1 FROM unnest($4::text[], $5::date[]) AS k(creative_id, day)
                           WHERE k.creative_id = h.creative_id AND k.day = h.day)",
    )
    .bind(company_id)
    // Every day (NaiveDate::MIN is no PostgreSQL date).
    .bind((from != NaiveDate::MIN).then_some(from))
    .bind(to)
    .bind(
        verdicts
            .iter()
            .map(|v| v.creative_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(verdicts.iter().map(|v| v.day).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Upserts verdicts; a row with the same verdict is left alone. Returns the rows written.
async fn store(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    verdicts: &[Verdict],
) -> Result<u64, sqlx::Error> {
    let float = |f: fn(&Assessment) -> Option<f64>| -> Vec<Option<f64>> {
        verdicts.iter().map(|v| f(&v.assessment)).collect()
    };
    let impressions = |w: fn(&Assessment) -> Option<fatigue::Window>| -> Vec<i64> {
        verdicts
            .iter()
            .map(|v| w(&v.assessment).map_or(0, |w| w.impressions as i64))
            .collect()
    };
    Ok(sqlx::query(
        "INSERT INTO creative_fatigue_history AS h (company_id, creative_id, day, status,
             baseline_ctr, recent_ctr, drop, p_value, baseline_impressions, recent_impressions,
             explanation)
         SELECT $1, * FROM unnest($2::text[], $3::date[], $4::text[], $5::float8[],
             $6::float8[], $7::float8[], $8::float8[], $9::int8[], $10::int8[], $11::text[])
         ON CONFLICT (company_id, creative_id, day) DO UPDATE
            SET status = EXCLUDED.status, baseline_ctr = EXCLUDED.baseline_ctr,
                recent_ctr = EXCLUDED.recent_ctr, drop = EXCLUDED.drop,
                p_value = EXCLUDED.p_value,
                baseline_impressions = EXCLUDED.baseline_impressions,
                recent_impressions = EXCLUDED.recent_impressions,
                explanation = EXCLUDED.explanation, computed_at = now()
          WHERE (h.status, h.baseline_ctr, h.recent_ctr, h.drop, h.p_value,
                 h.baseline_impressions, h.recent_impressions, h.explanation)
                IS DISTINCT FROM
                (EXCLUDED.status, EXCLUDED.baseline_ctr, EXCLUDED.recent_ctr, EXCLUDED.drop,
                 EXCLUDED.p_value, EXCLUDED.baseline_impressions, EXCLUDED.recent_impressions,
                 EXCLUDED.explanation)",
    )
    .bind(company_id)
    .bind(
        verdicts
            .iter()
            .map(|v| v.creative_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(verdicts.iter().map(|v| v.day).collect::<Vec<_>>())
    .bind(
        verdicts
            .iter()
            .map(|v| v.assessment.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(float(|a| a.baseline_ctr))
    .bind(float(|a| a.recent_ctr))
    .bind(float(|a| a.drop))
    .bind(float(|a| a.p_value))
    .bind(impressions(|a| a.baseline))
    .bind(impressions(|a| a.recent))
    .bind(
        verdicts
            .iter()
            .map(|v| v.assessment.explanation.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_creative_is_assessed_from_its_first_live_day_to_a_week_after_its_last() {
        let days: Vec<(NaiveDate, i64, i64)> = day("2026-11-01")
            .iter_days()
            .take(10)
            .map(|d| (d, 2_000, 40))
            .collect();
        let verdicts = assess_creative("c1", days.clone(), (NaiveDate::MIN, day("2026-12-31")));
        assert_eq!(verdicts.first().map(|v| v.day), Some(day("2026-11-01")));
        // Last live day 11-10, then 7 more days.
        assert_eq!(verdicts.last().map(|v| v.day), Some(day("2026-11-17")));
        assert_eq!(verdicts[0].assessment.status, Status::InsufficientData);
        assert_eq!(verdicts[9].assessment.status, Status::Fresh);
        assert_eq!(verdicts[16].assessment.status, Status::InsufficientData);
        let some = assess_creative("c1", days, (day("2026-11-09"), day("2026-11-09")));
        assert_eq!(some.len(), 1);
    }

    #[test]
    fn clicks_above_impressions_are_not_judged_and_say_why() {
        let verdicts = assess_creative(
            "c1",
            vec![(day("2026-11-01"), 10, 11)],
            (NaiveDate::MIN, day("2026-11-01")),
        );
        assert_eq!(verdicts[0].assessment.status, Status::InsufficientData);
        assert!(
            verdicts[0].assessment.explanation.contains("11 clicks"),
            "{}",
            verdicts[0].assessment.explanation
        );
    }

    #[test]
    fn the_rules_name_their_version_and_thresholds() {
        assert!(
            rules().starts_with("v1 live_days=7 impressions=10000"),
            "{}",
            rules()
        );
    }
}
