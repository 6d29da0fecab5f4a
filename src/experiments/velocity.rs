//! Ops velocity: how many experiments a company launches and concludes each month, how long
//! they take, and how often they win (SPEC §8.3, the ops-velocity dashboard).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Serialize, Serializer};

use super::Variant;

/// A calendar month, shown as `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: i32,
    month: u32,
}

impl YearMonth {
    pub fn of(day: NaiveDate) -> Self {
        Self {
            year: day.year(),
            month: day.month(),
        }
    }

    pub fn next(self) -> Self {
        match self.month {
            12 => Self {
                year: self.year + 1,
                month: 1,
            },
            m => Self {
                year: self.year,
                month: m + 1,
            },
        }
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for YearMonth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What ops velocity needs to know of one experiment in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentRecord {
    started: NaiveDate,
    conclusion: Option<Conclusion>,
}

/// How a concluded experiment ended: the day and the winning variant, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conclusion {
    ended: NaiveDate,
    winner: Option<Variant>,
}

/// An experiment cannot end before it started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("experiment ended on {ended}, before it started on {started}")]
pub struct EndedBeforeStart {
    pub started: NaiveDate,
    pub ended: NaiveDate,
}

impl ExperimentRecord {
    pub fn running(started: NaiveDate) -> Self {
        Self {
            started,
            conclusion: None,
        }
    }

    /// `winner` is `None` for `--no-winner`.
    pub fn concluded(
        started: NaiveDate,
        ended: NaiveDate,
        winner: Option<Variant>,
    ) -> Result<Self, EndedBeforeStart> {
        if ended < started {
            return Err(EndedBeforeStart { started, ended });
        }
        let conclusion = Some(Conclusion { ended, winner });
        Ok(Self {
            started,
            conclusion,
        })
    }
}

/// One month of ops velocity. `win_rate` and `median_days` are `None` in a month that
/// concluded nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthVelocity {
    pub month: YearMonth,
    /// Experiments started this month.
    pub launched: u64,
    /// Experiments ended this month.
    pub concluded: u64,
    /// Of those, ended with a winning variant.
    pub won: u64,
    /// `won / concluded`.
    pub win_rate: Option<f64>,
    /// Median of `ended - started` in days over the experiments concluded this month.
    pub median_days: Option<f64>,
}

/// Every month from the earliest start to the latest start or end, months without activity
/// included (with zeros), so a chart's time axis has no holes. An experiment is launched in
/// the month it started and concluded in the month it ended.
pub fn ops_velocity(records: &[ExperimentRecord]) -> Vec<MonthVelocity> {
    let mut launched: BTreeMap<YearMonth, u64> = BTreeMap::new();
    let mut ended: BTreeMap<YearMonth, Vec<&ExperimentRecord>> = BTreeMap::new();
    for r in records {
        *launched.entry(YearMonth::of(r.started)).or_default() += 1;
        if let Some(c) = &r.conclusion {
            ended.entry(YearMonth::of(c.ended)).or_default().push(r);
        }
    }
    let months = launched.keys().chain(ended.keys());
    let (Some(first), Some(last)) = (months.clone().min(), months.max()) else {
        return Vec::new();
    };
    std::iter::successors(Some(*first), |m| Some(m.next()))
        .take_while(|m| m <= last)
        .map(|m| month_velocity(m, launched.get(&m).copied().unwrap_or(0), ended.get(&m)))
        .collect()
}

fn month_velocity(
    month: YearMonth,
    launched: u64,
    ended: Option<&Vec<&ExperimentRecord>>,
) -> MonthVelocity {
    let ended = ended.map(Vec::as_slice).unwrap_or_default();
    let conclusions = ended
        .iter()
        .filter_map(|r| r.conclusion.as_ref().map(|c| (r, c)));
    let won = conclusions
        .clone()
        .filter(|(_, c)| c.winner.is_some())
        .count() as u64;
    let days: Vec<i64> = conclusions
        .map(|(r, c)| (c.ended - r.started).num_days())
        .collect();
    let concluded = days.len() as u64;
    MonthVelocity {
        month,
        launched,
        concluded,
        won,
        win_rate: (concluded > 0).then(|| won as f64 / concluded as f64),
        median_days: median(days),
    }
}

/// The middle value, or the mean of the two middle values of an even count.
fn median(mut values: Vec<i64>) -> Option<f64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2] as f64),
        _ => Some((values[n / 2 - 1] + values[n / 2]) as f64 / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn won(started: &str, ended: &str) -> ExperimentRecord {
        let winner = Some(Variant::parse("b").unwrap());
        ExperimentRecord::concluded(day(started), day(ended), winner).unwrap()
    }

    fn lost(started: &str, ended: &str) -> ExperimentRecord {
        ExperimentRecord::concluded(day(started), day(ended), None).unwrap()
    }

    #[test]
    fn ops_velocity_counts_launches_conclusions_win_rate_and_median_days_per_month() {
        let records = [
            won("2026-09-01", "2026-09-15"),  // 14 days, concluded in September
            lost("2026-09-10", "2026-10-01"), // 21 days, October
            won("2026-09-20", "2026-10-20"),  // 30 days, October
            lost("2026-10-05", "2026-10-10"), // 5 days, October
            ExperimentRecord::running(day("2026-12-03")),
        ];
        let months = ops_velocity(&records);
        let names: Vec<String> = months.iter().map(|m| m.month.to_string()).collect();
        assert_eq!(
            names,
            ["2026-09", "2026-10", "2026-11", "2026-12"],
            "November kept"
        );

        let sep = &months[0];
        assert_eq!((sep.launched, sep.concluded, sep.won), (3, 1, 1));
        assert_eq!((sep.win_rate, sep.median_days), (Some(1.0), Some(14.0)));

        // October: days 21, 30, 5 → sorted 5, 21, 30 → median 21; 1 won of 3.
        let oct = &months[1];
        assert_eq!((oct.launched, oct.concluded, oct.won), (1, 3, 1));
        assert_eq!(oct.win_rate, Some(1.0 / 3.0));
        assert_eq!(oct.median_days, Some(21.0));

        let nov = &months[2];
        assert_eq!((nov.launched, nov.concluded), (0, 0));
        assert_eq!(
            (nov.win_rate, nov.median_days),
            (None, None),
            "nulls, not NaN"
        );
        assert_eq!(months[3].launched, 1);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_two_middle_values() {
        assert_eq!(median(vec![30, 10, 20, 5]), Some(15.0));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn an_experiment_cannot_end_before_it_started() {
        let err = ExperimentRecord::concluded(day("2026-10-02"), day("2026-10-01"), None);
        assert_eq!(
            err,
            Err(EndedBeforeStart {
                started: day("2026-10-02"),
                ended: day("2026-10-01")
            })
        );
        assert!(ops_velocity(&[]).is_empty());
    }

    #[test]
    fn year_months_roll_over_december() {
        let dec = YearMonth::of(day("2026-12-31"));
        assert_eq!(dec.next().to_string(), "2027-01");
    }
}
