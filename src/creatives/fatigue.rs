//! Creative fatigue (SPEC §8.2): has an ad's click-through rate worn out while it keeps being
//! shown? The brief's definition is "CTR drop with rising impressions"; [`assess`] turns it into
//! one rule over a creative's daily series:
//!
//! 1. **Eligibility.** At least [`MIN_LIVE_DAYS`] live days (days with impressions) and
//!    [`MIN_IMPRESSIONS`] impressions up to the day assessed, and at least one day after the
//!    baseline week to compare with; otherwise `insufficient_data`.
//! 2. **Windows.** The baseline is the first [`WINDOW_DAYS`] live days; the recent window is the
//!    last [`WINDOW_DAYS`] calendar days up to the day assessed, cut so that it never overlaps
//!    the baseline (a test on shared days would compare a sample with itself).
//! 3. **Test.** A one-sided two-proportion z-test (pooled) that the recent CTR is below the
//!    baseline's ([`one_sided_drop_p_value`]).
//! 4. **Verdict.** `fatigued` when the recent CTR is ≤ 80 % of the baseline's, p < 0.05 and the
//!    recent window's impressions per day are ≥ the baseline week's; `watch` when it is ≤ 85 %
//!    (including a large drop that is not significant yet or that came with falling
//!    impressions); `fresh` otherwise.
//!
//! The ratio thresholds are compared on integers (`5·rc·bi ≤ 4·bc·ri`), so a drop of exactly
//! 20 % is 20 % and not 19.999… in floating point. `docs/metrics.md` argues each threshold.

use std::fmt;

use chrono::{NaiveDate, TimeDelta};

/// Live days needed before a creative can be judged: the baseline is one full week, so every
/// weekday is in it once (CTR varies by weekday).
pub const MIN_LIVE_DAYS: usize = 7;
/// Impressions needed before a creative can be judged: below this, a baseline CTR of 1–2 %
/// rests on a hundred clicks or so and a 20 % drop cannot be told from noise.
pub const MIN_IMPRESSIONS: u64 = 10_000;
/// Length of the baseline and recent windows, in days: one week each, for the weekday reason.
pub const WINDOW_DAYS: usize = 7;
/// `fatigued` needs the recent CTR at or below 4/5 (80 %) of the baseline's.
pub const FATIGUE_RATIO: (u64, u64) = (4, 5);
/// `watch` starts at or below 17/20 (85 %) of the baseline's CTR.
pub const WATCH_RATIO: (u64, u64) = (17, 20);
/// Significance level of the one-sided test.
pub const ALPHA: f64 = 0.05;

/// One day of a creative: impressions and clicks, with clicks never above impressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyStats {
    day: NaiveDate,
    impressions: u64,
    clicks: u64,
}

/// Why a day or a series was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("{day}: {clicks} clicks exceed {impressions} impressions")]
    ClicksExceedImpressions {
        day: NaiveDate,
        clicks: u64,
        impressions: u64,
    },
    #[error("{0}: the day appears twice in the series")]
    DuplicateDay(NaiveDate),
}

impl DailyStats {
    pub fn new(day: NaiveDate, impressions: u64, clicks: u64) -> Result<Self, SeriesError> {
        if clicks > impressions {
            return Err(SeriesError::ClicksExceedImpressions {
                day,
                clicks,
                impressions,
            });
        }
        Ok(Self {
            day,
            impressions,
            clicks,
        })
    }

    pub fn day(&self) -> NaiveDate {
        self.day
    }

    pub fn impressions(&self) -> u64 {
        self.impressions
    }

    pub fn clicks(&self) -> u64 {
        self.clicks
    }
}

/// A creative's days in order, each at most once. Missing days are days without impressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySeries(Vec<DailyStats>);

impl DailySeries {
    pub fn new(mut days: Vec<DailyStats>) -> Result<Self, SeriesError> {
        days.sort_by_key(DailyStats::day);
        if let Some(pair) = days.windows(2).find(|w| w[0].day == w[1].day) {
            return Err(SeriesError::DuplicateDay(pair[0].day));
        }
        Ok(Self(days))
    }

    pub fn days(&self) -> &[DailyStats] {
        &self.0
    }
}

/// The four statuses of SPEC §8.2, named as in the `creative_fatigue` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Fresh,
    Watch,
    Fatigued,
    InsufficientData,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Watch => "watch",
            Self::Fatigued => "fatigued",
            Self::InsufficientData => "insufficient_data",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Totals of one window: the baseline week or the recent days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Days the window spans: live days for the baseline, calendar days for the recent window.
    pub days: u64,
    pub impressions: u64,
    pub clicks: u64,
}

impl Window {
    /// Clicks ÷ impressions; `None` without impressions.
    pub fn ctr(&self) -> Option<f64> {
        (self.impressions > 0).then(|| self.clicks as f64 / self.impressions as f64)
    }
}

/// The verdict with its inputs (SPEC §8.2: "every status carries its inputs ... and a
/// sentence"); the fields of a `creative_fatigue` row (SPEC §11).
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub status: Status,
    /// The first live week, once there is one.
    pub baseline: Option<Window>,
    /// The recent days compared with it, once there are any.
    pub recent: Option<Window>,
    pub baseline_ctr: Option<f64>,
    pub recent_ctr: Option<f64>,
    /// Relative drop, 1 − recent CTR ÷ baseline CTR (0.25 = a quarter lower; negative = a
    /// rise); `None` when either CTR is undefined or the baseline CTR is 0.
    pub drop: Option<f64>,
    /// One-sided p-value that the recent CTR is below the baseline's.
    pub p_value: Option<f64>,
    pub explanation: String,
}

/// The creative's status as of `as_of` (the last complete local day), from its days up to and
/// including `as_of`; later days are ignored, so a past day's status can be recomputed.
pub fn assess(series: &DailySeries, as_of: NaiveDate) -> Assessment {
    let days: Vec<&DailyStats> = series.days().iter().filter(|d| d.day <= as_of).collect();
    let live: Vec<&DailyStats> = days.iter().copied().filter(|d| d.impressions > 0).collect();
    let total: u64 = live.iter().map(|d| d.impressions).sum();
    if live.len() < MIN_LIVE_DAYS || total < MIN_IMPRESSIONS {
        return insufficient(None, None, not_eligible(live.len(), total));
    }
    let baseline = totals(&live[..WINDOW_DAYS], WINDOW_DAYS as u64);
    let start = (as_of - TimeDelta::days(WINDOW_DAYS as i64 - 1))
        .max(baseline.last_day + TimeDelta::days(1));
    if start > as_of {
        let why =
            format!("the baseline week ends on {as_of}; there is no later day to compare with yet");
        return insufficient(Some(baseline), None, why);
    }
    let span = (as_of - start).num_days() as u64 + 1;
    let in_recent: Vec<&DailyStats> = days.into_iter().filter(|d| d.day >= start).collect();
    let recent = Window {
        first_day: start,
        last_day: as_of,
        ..totals(&in_recent, span)
    };
    if recent.impressions == 0 {
        let why = format!("no impressions in the last {span} days: not served, so not judged");
        return insufficient(Some(baseline), Some(recent), why);
    }
    compare(baseline, recent)
}

fn insufficient(baseline: Option<Window>, recent: Option<Window>, why: String) -> Assessment {
    Assessment {
        status: Status::InsufficientData,
        baseline,
        recent,
        baseline_ctr: baseline.and_then(|w| w.ctr()),
        recent_ctr: recent.and_then(|w| w.ctr()),
        drop: None,
        p_value: None,
        explanation: format!("Not enough data yet: {why}."),
    }
}

fn not_eligible(live_days: usize, impressions: u64) -> String {
    let mut missing = Vec::new();
    if live_days < MIN_LIVE_DAYS {
        missing.push(format!(
            "{live_days} live days of the {MIN_LIVE_DAYS} needed"
        ));
    }
    if impressions < MIN_IMPRESSIONS {
        missing.push(format!(
            "{} impressions of the {} needed",
            thousands(impressions),
            thousands(MIN_IMPRESSIONS)
        ));
    }
    missing.join(" and ")
}

/// Totals of `days` (in order, at least one), spanning `span` days.
fn totals(days: &[&DailyStats], span: u64) -> Window {
    Window {
        first_day: days.first().map_or(NaiveDate::MIN, |d| d.day),
        last_day: days.last().map_or(NaiveDate::MIN, |d| d.day),
        days: span,
        impressions: days.iter().map(|d| d.impressions).sum(),
        clicks: days.iter().map(|d| d.clicks).sum(),
    }
}

/// Both windows have impressions: the verdict proper.
fn compare(baseline: Window, recent: Window) -> Assessment {
    let p_value = one_sided_drop_p_value(
        baseline.clicks,
        baseline.impressions,
        recent.clicks,
        recent.impressions,
    );
    let (baseline_ctr, recent_ctr) = (baseline.ctr(), recent.ctr());
    let drop = match (baseline_ctr, recent_ctr) {
        (Some(b), Some(r)) if b > 0.0 => Some(1.0 - r / b),
        _ => None,
    };
    let at_most = |ratio| baseline.clicks > 0 && ctr_at_most(recent, baseline, ratio);
    let significant = p_value < ALPHA;
    // Per day, because the recent window is shorter than a week while it is 8–13 days old.
    let not_falling = u128::from(recent.impressions) * u128::from(baseline.days)
        >= u128::from(baseline.impressions) * u128::from(recent.days);
    let status = if at_most(FATIGUE_RATIO) && significant && not_falling {
        Status::Fatigued
    } else if at_most(WATCH_RATIO) {
        Status::Watch
    } else {
        Status::Fresh
    };
    let explanation = explain(status, &baseline, &recent, p_value, at_most(FATIGUE_RATIO));
    Assessment {
        status,
        baseline: Some(baseline),
        recent: Some(recent),
        baseline_ctr,
        recent_ctr,
        drop,
        p_value: Some(p_value),
        explanation,
    }
}

/// recent CTR ≤ num/den × baseline CTR, exactly: rc/ri ≤ (num/den)·bc/bi ⟺ den·rc·bi ≤ num·bc·ri.
fn ctr_at_most(recent: Window, baseline: Window, (num, den): (u64, u64)) -> bool {
    let lhs = u128::from(den) * u128::from(recent.clicks) * u128::from(baseline.impressions);
    let rhs = u128::from(num) * u128::from(baseline.clicks) * u128::from(recent.impressions);
    lhs <= rhs
}

fn explain(
    status: Status,
    baseline: &Window,
    recent: &Window,
    p: f64,
    past_fatigue_line: bool,
) -> String {
    let p_text = crate::stats::p_equation(p);
    let ctrs = format!(
        "CTR {} in the first week, {} in the last {} days",
        percent(baseline.ctr()),
        percent(recent.ctr()),
        recent.days
    );
    let impressions = format!(
        "impressions {} over {} days, then {} over {}",
        thousands(baseline.impressions),
        baseline.days,
        thousands(recent.impressions),
        recent.days
    );
    match status {
        Status::Fatigued => format!(
            "Fatigued: {ctrs}, a significant drop ({p_text}) while {impressions}: the same \
             audience is clicking less."
        ),
        Status::Watch if !past_fatigue_line => format!(
            "Watch: {ctrs}, at or below 85 % of the first week but above the 80 % fatigue line \
             ({p_text})."
        ),
        Status::Watch if p >= ALPHA => format!(
            "Watch: {ctrs}, at or below 80 % of the first week but not yet significant \
             ({p_text} ≥ 0.05)."
        ),
        Status::Watch => format!(
            "Watch: {ctrs}, a significant drop ({p_text}), but {impressions}: delivery fell \
             too, so the drop may come from a changed audience rather than fatigue."
        ),
        Status::Fresh if baseline.clicks == 0 => {
            format!("Fresh: no clicks in the first week, so there is no CTR to fall from ({ctrs}).")
        }
        Status::Fresh | Status::InsufficientData => {
            format!("Fresh: {ctrs}, above 85 % of the first week ({p_text}).")
        }
    }
}

fn percent(ctr: Option<f64>) -> String {
    ctr.map_or_else(|| "n/a".to_owned(), |c| format!("{:.2} %", c * 100.0))
}

/// 12345 → "12,345", as the SPEC writes its thresholds.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One-sided, pooled two-proportion z-test of H₁ "the recent rate is below the baseline rate":
///
/// p̂ = (c₁ + c₂) / (n₁ + n₂), SE = √(p̂(1 − p̂)(1/n₁ + 1/n₂)), z = (c₁/n₁ − c₂/n₂) / SE,
/// p = P(Z ≥ z) = Φ(−z).
///
/// Pooled because under H₀ both windows share one rate. When SE is 0 (no clicks at all, or
/// every impression clicked) the two rates are equal and there is no evidence of a drop: 1.
/// Both counts must be positive (the caller guarantees it).
pub fn one_sided_drop_p_value(c1: u64, n1: u64, c2: u64, n2: u64) -> f64 {
    // The same pooled test as the alerts' and the experiments' (`stats`), "second below first".
    crate::stats::two_proportion_p(c1, n1, c2, n2, crate::stats::Alternative::Less)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + TimeDelta::days(i64::from(n) - 1)
    }

    /// Consecutive days from 2026-11-01, as (impressions, clicks).
    fn series(days: &[(u64, u64)]) -> DailySeries {
        let days = (1..)
            .zip(days)
            .map(|(n, &(i, c))| DailyStats::new(day(n), i, c).unwrap());
        DailySeries::new(days.collect()).unwrap()
    }

    fn week(impressions: [u64; 7], clicks: [u64; 7]) -> Vec<(u64, u64)> {
        impressions.into_iter().zip(clicks).collect()
    }

    /// Two weeks back to back, assessed on the last day (day 14).
    fn two_weeks(first: Vec<(u64, u64)>, last: Vec<(u64, u64)>) -> Assessment {
        assess(&series(&[first, last].concat()), day(14))
    }

    fn assert_p(a: &Assessment, expected: f64) {
        let p = a.p_value.expect("a p-value");
        assert!(
            (p - expected).abs() < 5e-5,
            "p = {p}, expected {expected:.4}"
        );
    }

    #[test]
    fn a_steady_creative_is_fresh() {
        let a = two_weeks(
            week([1000; 7], [20, 21, 19, 20, 22, 18, 20]),
            week([1000; 7], [20, 19, 21, 20, 18, 20, 19]),
        );
        assert_eq!(a.status, Status::Fresh, "{}", a.explanation);
        // 140/7000 = 2.00 %, then 137/7000 = 1.957 %: drop 1 − 137/140 = 0.0214.
        // p̂ = 277/14000 = 0.019786; SE = √(0.019786 · 0.980214 · 2/7000) = 0.0023540;
        // z = (0.02 − 0.0195714) / 0.0023540 = 0.18206; p = ½·erfc(0.18206/√2) = 0.4278.
        assert_p(&a, 0.4278);
        assert!((a.drop.unwrap() - 0.0214).abs() < 5e-5);
        assert_eq!(a.baseline_ctr, Some(0.02));
    }

    #[test]
    fn a_slow_decline_not_yet_significant_is_watch() {
        let a = two_weeks(
            week([750; 7], [11, 11, 10, 10, 10, 9, 9]),
            week([750; 7], [9, 8, 8, 8, 8, 7, 8]),
        );
        // 70/5250 = 1.333 %, then 56/5250 = 1.067 %: exactly 80 % of the baseline (0.7999… in
        // floating point, which is why the ratio is compared on integers), so past the fatigue
        // line, but p̂ = 126/10500 = 0.012; SE = √(0.012 · 0.988 · 2/5250) = 0.0021252;
        // z = (14/5250) / 0.0021252 = 1.25477; p = ½·erfc(1.25477/√2) = 0.1048 ≥ 0.05.
        assert_eq!(a.status, Status::Watch, "{}", a.explanation);
        assert_p(&a, 0.1048);
        assert!((a.drop.unwrap() - 0.2).abs() < 1e-9);
        assert!(
            a.explanation.contains("not yet significant"),
            "{}",
            a.explanation
        );
    }

    #[test]
    fn a_clear_decline_with_rising_impressions_is_fatigued() {
        let a = two_weeks(
            week([1000; 7], [25; 7]),
            week(
                [1100, 1150, 1200, 1200, 1250, 1250, 1250],
                [19, 18, 18, 18, 17, 18, 17],
            ),
        );
        // 175/7000 = 2.50 %, then 125/8400 = 1.488 % (59.5 % of it) on 8,400 ≥ 7,000 impressions.
        // p̂ = 300/15400 = 0.019481; SE = √(0.019481 · 0.980519 · (1/7000 + 1/8400)) = 0.0022367;
        // z = (0.025 − 0.0148810) / 0.0022367 = 4.52418; p = ½·erfc(4.52418/√2) = 3.03e-6.
        assert_eq!(a.status, Status::Fatigued, "{}", a.explanation);
        assert_p(&a, 0.0000);
        let p = a.p_value.unwrap();
        assert!((p - 3.0316e-6).abs() < 5e-9, "p = {p}");
        assert_eq!(a.recent.unwrap().impressions, 8400);
        assert!(a.explanation.starts_with("Fatigued"), "{}", a.explanation);
        // A tiny p reads as such, never as "p = 0.0000".
        assert!(
            a.explanation.contains("(p < 0.0001)") && !a.explanation.contains("0.0000"),
            "{}",
            a.explanation
        );
    }

    #[test]
    fn a_ctr_drop_while_impressions_fall_too_is_watch_not_fatigued() {
        let a = two_weeks(
            week([1500; 7], [30; 7]),
            week(
                [1000, 950, 900, 900, 850, 850, 850],
                [14, 13, 12, 12, 11, 11, 11],
            ),
        );
        // 210/10500 = 2.00 %, then 84/6300 = 1.333 % (66.7 %): a large, significant drop, but
        // on 6,300 < 10,500 impressions. p̂ = 294/16800 = 0.0175;
        // SE = √(0.0175 · 0.9825 · (1/10500 + 1/6300)) = 0.0020897;
        // z = (0.02 − 0.0133333) / 0.0020897 = 3.19032; p = ½·erfc(3.19032/√2) = 0.0007.
        assert_eq!(a.status, Status::Watch, "{}", a.explanation);
        assert_p(&a, 0.0007);
        assert!(a.explanation.contains("delivery fell"), "{}", a.explanation);
    }

    #[test]
    fn a_creative_with_six_days_is_insufficient_data() {
        let a = assess(&series(&[(2000, 40); 6]), day(6));
        assert_eq!(a.status, Status::InsufficientData);
        assert!(
            a.explanation.contains("6 live days of the 7"),
            "{}",
            a.explanation
        );
        assert_eq!((a.p_value, a.baseline), (None, None));
    }

    #[test]
    fn a_creative_with_9000_impressions_is_insufficient_data() {
        let a = assess(&series(&[(1000, 20); 9]), day(9));
        assert_eq!(a.status, Status::InsufficientData);
        assert!(
            a.explanation.contains("9,000 impressions of the 10,000"),
            "{}",
            a.explanation
        );
    }

    #[test]
    fn a_creative_becomes_eligible_at_10000_impressions() {
        let a = assess(&series(&[(1000, 20); 10]), day(10));
        assert_eq!(a.status, Status::Fresh, "{}", a.explanation);
    }

    #[test]
    fn seven_days_is_insufficient_data_until_a_day_after_the_baseline_week() {
        let a = assess(&series(&[(2000, 40); 7]), day(7));
        assert_eq!(a.status, Status::InsufficientData);
        assert!(a.baseline.is_some() && a.recent.is_none());
        assert!(a.explanation.contains("no later day"), "{}", a.explanation);
    }

    #[test]
    fn a_creative_under_two_weeks_old_is_compared_on_the_days_after_its_first_week() {
        let mut days = vec![(1000, 20); 7];
        days.extend([(1000, 15); 3]);
        let a = assess(&series(&days), day(10));
        let recent = a.recent.unwrap();
        assert_eq!(
            (recent.first_day, recent.days, recent.impressions),
            (day(8), 3, 3000)
        );
        // 140/7000 = 2.00 %, then 45/3000 = 1.50 % (75 %), 1,000 impressions a day in both.
        // p̂ = 185/10000 = 0.0185; SE = √(0.0185 · 0.9815 · (1/7000 + 1/3000)) = 0.0029405;
        // z = 0.005 / 0.0029405 = 1.70039; p = ½·erfc(1.70039/√2) = 0.0445 < 0.05.
        assert_p(&a, 0.0445);
        assert_eq!(a.status, Status::Fatigued, "{}", a.explanation);
    }

    #[test]
    fn a_drop_of_exactly_20_percent_that_is_significant_is_fatigued() {
        // 700/7000 = 10 %, then 560/7000 = 8 %. p̂ = 0.09; SE = √(0.09 · 0.91 · 2/7000) =
        // 0.0048374; z = 0.02 / 0.0048374 = 4.13449; p = ½·erfc(4.13449/√2) = 1.78e-5.
        let a = two_weeks(vec![(1000, 100); 7], vec![(1000, 80); 7]);
        assert_eq!(a.status, Status::Fatigued, "{}", a.explanation);
        assert_p(&a, 0.0000);
    }

    #[test]
    fn the_watch_line_is_85_percent_inclusive() {
        let at = two_weeks(
            week([1000; 7], [29, 29, 29, 29, 28, 28, 28]),
            week([1000; 7], [25, 25, 24, 24, 24, 24, 24]),
        );
        assert_eq!(
            (at.baseline.unwrap().clicks, at.recent.unwrap().clicks),
            (200, 170)
        );
        assert_eq!(at.status, Status::Watch, "{}", at.explanation);
        // p̂ = 370/14000 = 0.026429; SE = √(0.026429 · 0.973571 · 2/7000) = 0.0027114;
        // z = (30/7000) / 0.0027114 = 1.58065; p = ½·erfc(1.58065/√2) = 0.0570.
        assert_p(&at, 0.0570);
        let above = two_weeks(
            week([1000; 7], [29, 29, 29, 29, 28, 28, 28]),
            week([1000; 7], [25, 25, 25, 24, 24, 24, 24]),
        );
        assert_eq!(above.recent.unwrap().clicks, 171);
        assert_eq!(above.status, Status::Fresh, "{}", above.explanation);
        // p̂ = 371/14000 = 0.0265; SE = 0.0027149; z = (29/7000) / 0.0027149 = 1.52596; p = 0.0635.
        assert_p(&above, 0.0635);
    }

    #[test]
    fn days_after_the_assessed_day_are_ignored() {
        let mut days = vec![(1000, 20); 14];
        days.extend([(1000, 5); 7]);
        let s = series(&days);
        assert_eq!(assess(&s, day(14)).status, Status::Fresh);
        assert_eq!(assess(&s, day(21)).status, Status::Fatigued);
    }

    #[test]
    fn the_baseline_is_the_first_seven_live_days_and_skips_days_without_impressions() {
        let mut days = vec![(0, 0), (1000, 20), (0, 0)];
        days.extend([(1000, 20); 11]);
        let a = assess(&series(&days), day(14));
        let baseline = a.baseline.unwrap();
        assert_eq!((baseline.first_day, baseline.last_day), (day(2), day(9)));
        assert_eq!((baseline.days, baseline.impressions), (7, 7000));
        assert_eq!(a.recent.unwrap().first_day, day(10));
    }

    #[test]
    fn a_creative_not_served_in_the_last_week_is_insufficient_data() {
        let mut days = vec![(2000, 40); 7];
        days.extend([(0, 0); 7]);
        let a = assess(&series(&days), day(14));
        assert_eq!(a.status, Status::InsufficientData);
        assert!(a.explanation.contains("not served"), "{}", a.explanation);
    }

    #[test]
    fn a_creative_without_clicks_in_its_first_week_is_fresh() {
        let a = two_weeks(vec![(1000, 0); 7], vec![(1000, 0); 7]);
        assert_eq!(a.status, Status::Fresh, "{}", a.explanation);
        assert_eq!((a.drop, a.p_value), (None, Some(1.0)));
    }

    #[test]
    fn a_day_with_more_clicks_than_impressions_is_refused() {
        let err = DailyStats::new(day(1), 10, 11).unwrap_err();
        assert_eq!(
            err.to_string(),
            "2026-11-01: 11 clicks exceed 10 impressions"
        );
    }

    #[test]
    fn a_series_with_a_day_twice_is_refused() {
        let d = DailyStats::new(day(3), 10, 1).unwrap();
        let err = DailySeries::new(vec![d, d]).unwrap_err();
        assert_eq!(err, SeriesError::DuplicateDay(day(3)));
    }

    #[test]
    fn status_names_match_the_report() {
        let names: Vec<_> = [
            Status::Fresh,
            Status::Watch,
            Status::Fatigued,
            Status::InsufficientData,
        ]
        .map(Status::as_str)
        .into();
        assert_eq!(names, ["fresh", "watch", "fatigued", "insufficient_data"]);
    }
}
