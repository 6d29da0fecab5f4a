//! Per-variant results of one experiment: who was exposed, who converted, and whether the
//! difference against the control is more than noise.
//!
//! Two steps, so the rollups can do the first in SQL later and reuse the second:
//! [`count_visitors`] turns exposures and conversions into [`Counts`] per variant, and
//! [`results_from_counts`] turns counts into rates, uplift, interval and p-value.
//! [`variant_results`] does both. Formulas: `docs/metrics.md`, "Experiments".

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Variant;

/// The 97.5th percentile of the standard normal distribution, for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A visitor saw a variant (`experiment_exposure`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    pub visitor: Uuid,
    pub variant: Variant,
    pub at: DateTime<Utc>,
}

/// A visitor did the experiment's primary event.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub visitor: Uuid,
    pub at: DateTime<Utc>,
}

/// Exposed and converted visitors of one variant. Never more converted than exposed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    exposed: u64,
    converted: u64,
}

/// Counts that cannot describe real visitors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{converted} converted visitors out of {exposed} exposed")]
pub struct CountsError {
    pub exposed: u64,
    pub converted: u64,
}

impl Counts {
    pub fn new(exposed: u64, converted: u64) -> Result<Self, CountsError> {
        if converted > exposed {
            return Err(CountsError { exposed, converted });
        }
        Ok(Self { exposed, converted })
    }

    pub fn exposed(&self) -> u64 {
        self.exposed
    }

    pub fn converted(&self) -> u64 {
        self.converted
    }

    /// `converted / exposed`, or `None` with nobody exposed (a rate of 0/0 is unknown, not 0).
    pub fn rate(&self) -> Option<f64> {
        (self.exposed > 0).then(|| self.converted as f64 / self.exposed as f64)
    }
}

/// A closed interval `[low, high]` with `low <= high`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    low: f64,
    high: f64,
}

impl Interval {
    pub fn low(&self) -> f64 {
        self.low
    }

    pub fn high(&self) -> f64 {
        self.high
    }
}

/// One variant's line in the results. Every figure that cannot be computed (nobody exposed
/// here or in the control, a control rate of 0 for uplift) is `None`, never NaN or infinity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantResult {
    variant: Variant,
    is_control: bool,
    #[serde(flatten)]
    counts: Counts,
    rate: Option<f64>,
    uplift: Option<f64>,
    difference_interval: Option<Interval>,
    p_value: Option<f64>,
}

impl VariantResult {
    pub fn variant(&self) -> &Variant {
        &self.variant
    }

    pub fn is_control(&self) -> bool {
        self.is_control
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Relative uplift against the control: `(rate - control rate) / control rate`.
    pub fn uplift(&self) -> Option<f64> {
        self.uplift
    }

    /// 95 % unpooled Wald interval of the absolute difference `rate - control rate`.
    pub fn difference_interval(&self) -> Option<Interval> {
        self.difference_interval
    }

    /// Two-sided p-value of the pooled two-proportion z-test against the control.
    pub fn p_value(&self) -> Option<f64> {
        self.p_value
    }
}

/// Counts and compares every variant: the control first, then the others by name.
pub fn variant_results(
    control: &Variant,
    exposures: &[Exposure],
    conversions: &[Conversion],
) -> Vec<VariantResult> {
    results_from_counts(control, &count_visitors(control, exposures, conversions))
}

/// Exposed and converted visitors per variant.
///
/// A visitor belongs to the variant of their first exposure only (a later exposure to another
/// variant, a cookie reset or a bug in the site, would otherwise count them twice), and
/// converted if any conversion is at or after that first exposure. The control and every
/// variant seen in `exposures` are present, even with 0 exposed visitors.
pub fn count_visitors(
    control: &Variant,
    exposures: &[Exposure],
    conversions: &[Conversion],
) -> BTreeMap<Variant, Counts> {
    let first = first_exposures(exposures);
    let converted: HashSet<Uuid> = conversions
        .iter()
        .filter(|c| first.get(&c.visitor).is_some_and(|(at, _)| c.at >= *at))
        .map(|c| c.visitor)
        .collect();
    let mut counts: BTreeMap<Variant, Counts> = exposures
        .iter()
        .map(|e| &e.variant)
        .chain([control])
        .map(|v| (v.clone(), Counts::default()))
        .collect();
    for (visitor, (_, variant)) in &first {
        let entry = counts
            .get_mut(*variant)
            .expect("every exposed variant is a key");
        entry.exposed += 1;
        entry.converted += u64::from(converted.contains(visitor));
    }
    counts
}

/// Each visitor's earliest exposure; a tie in time goes to the smaller variant name, so the
/// answer does not depend on the order of the input.
fn first_exposures(exposures: &[Exposure]) -> HashMap<Uuid, (DateTime<Utc>, &Variant)> {
    let mut first: HashMap<Uuid, (DateTime<Utc>, &Variant)> = HashMap::new();
    for e in exposures {
        let candidate = (e.at, &e.variant);
        first
            .entry(e.visitor)
            .and_modify(|current| *current = (*current).min(candidate))
            .or_insert(candidate);
    }
    first
}

/// Rates, and for each variant but the control: uplift, interval and p-value against it.
/// A control missing from `counts` counts as nobody exposed.
pub fn results_from_counts(
    control: &Variant,
    counts: &BTreeMap<Variant, Counts>,
) -> Vec<VariantResult> {
    let base = counts.get(control).copied().unwrap_or_default();
    let control_row = result_for(control, base, base, true);
    let others = counts
        .iter()
        .filter(|(variant, _)| *variant != control)
        .map(|(variant, c)| result_for(variant, *c, base, false));
    std::iter::once(control_row).chain(others).collect()
}

fn result_for(variant: &Variant, counts: Counts, base: Counts, is_control: bool) -> VariantResult {
    let compared = !is_control;
    VariantResult {
        variant: variant.clone(),
        is_control,
        counts,
        rate: counts.rate(),
        uplift: compared.then(|| uplift(base, counts)).flatten(),
        difference_interval: compared
            .then(|| difference_interval(base, counts))
            .flatten(),
        p_value: compared.then(|| p_value(base, counts)).flatten(),
    }
}

/// `(p_t - p_c) / p_c`; unknown when either rate is, or the control's is 0.
fn uplift(control: Counts, treatment: Counts) -> Option<f64> {
    let (pc, pt) = (control.rate()?, treatment.rate()?);
    (pc > 0.0).then(|| (pt - pc) / pc)
}

/// Unpooled Wald interval: `(p_t - p_c) ± z · sqrt(p_c(1-p_c)/n_c + p_t(1-p_t)/n_t)`.
fn difference_interval(control: Counts, treatment: Counts) -> Option<Interval> {
    let (pc, pt) = (control.rate()?, treatment.rate()?);
    let variance =
        pc * (1.0 - pc) / control.exposed as f64 + pt * (1.0 - pt) / treatment.exposed as f64;
    let half = Z_95 * variance.sqrt();
    let diff = pt - pc;
    Some(Interval {
        low: diff - half,
        high: diff + half,
    })
}

/// Pooled two-proportion z-test, two-sided (`stats::two_proportion_p`, shared with the
/// alerts). With a pooled rate of 0 or 1 both variants have the same rate and there is no
/// evidence of a difference: p = 1.
fn p_value(control: Counts, treatment: Counts) -> Option<f64> {
    control.rate()?;
    treatment.rate()?;
    Some(crate::stats::two_proportion_p(
        control.converted,
        control.exposed,
        treatment.converted,
        treatment.exposed,
        crate::stats::Alternative::TwoSided,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn v(name: &str) -> Variant {
        Variant::parse(name).unwrap()
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 10, minute, 0).unwrap()
    }

    fn visitor(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn expose(n: u128, variant: &str, minute: u32) -> Exposure {
        Exposure {
            visitor: visitor(n),
            variant: v(variant),
            at: at(minute),
        }
    }

    fn convert(n: u128, minute: u32) -> Conversion {
        Conversion {
            visitor: visitor(n),
            at: at(minute),
        }
    }

    /// `exposed` visitors numbered from `first`, exposed at minute 10; the first `converted`
    /// of them convert at minute 20.
    fn arm(
        variant: &str,
        first: u128,
        exposed: u128,
        converted: u128,
    ) -> (Vec<Exposure>, Vec<Conversion>) {
        let ids = first..first + exposed;
        let exposures = ids.clone().map(|n| expose(n, variant, 10)).collect();
        let conversions = ids
            .take(converted as usize)
            .map(|n| convert(n, 20))
            .collect();
        (exposures, conversions)
    }

    /// control 20/200, b 34/200, c 15/180, with the traps the counting must get right:
    /// - visitor 9001 is exposed to control (minute 5) and later to b (minute 15) and
    ///   converts: one of control's 200 and 20, nowhere in b;
    /// - visitor 9002 is exposed to b at minute 10 but converted only at minute 5: one of b's
    ///   200 exposed, not converted;
    /// - visitor 9003 converts without ever being exposed: nowhere.
    fn hand_made_set() -> (Vec<Exposure>, Vec<Conversion>) {
        let mut exposures = vec![expose(9001, "control", 5), expose(9001, "b", 15)];
        let mut conversions = vec![convert(9001, 30), convert(9002, 5), convert(9003, 30)];
        exposures.push(expose(9002, "b", 10));
        for (e, c) in [
            arm("control", 0, 199, 19),
            arm("b", 1000, 199, 34),
            arm("c", 2000, 180, 15),
        ] {
            exposures.extend(e);
            conversions.extend(c);
        }
        (exposures, conversions)
    }

    fn round4(x: f64) -> f64 {
        (x * 1e4).round() / 1e4
    }

    fn find<'a>(results: &'a [VariantResult], name: &str) -> &'a VariantResult {
        results
            .iter()
            .find(|r| r.variant().as_ref() == name)
            .unwrap()
    }

    #[test]
    fn results_match_hand_computed_rates_uplift_interval_and_p_value() {
        let (exposures, conversions) = hand_made_set();
        let results = variant_results(&v("control"), &exposures, &conversions);

        let names: Vec<&str> = results.iter().map(|r| r.variant().as_ref()).collect();
        assert_eq!(names, ["control", "b", "c"], "control first, then by name");

        let control = find(&results, "control");
        assert!(control.is_control());
        assert_eq!(control.counts(), Counts::new(200, 20).unwrap());
        assert_eq!(control.rate(), Some(0.1));
        assert_eq!(
            control.uplift(),
            None,
            "the control is not compared with itself"
        );
        assert_eq!(control.p_value(), None);

        // b: p_c = 20/200 = 0.10, p_t = 34/200 = 0.17, difference 0.07.
        // uplift = 0.07 / 0.10 = 0.7000
        // Wald SE = sqrt(0.10·0.90/200 + 0.17·0.83/200) = sqrt(0.00045 + 0.0007055)
        //         = sqrt(0.0011555) = 0.0339926
        // interval = 0.07 ± 1.959964 · 0.0339926 = 0.07 ± 0.0666244 = [0.0034, 0.1366]
        // pooled p = 54/400 = 0.135; SE = sqrt(0.135·0.865·(1/200 + 1/200))
        //          = sqrt(0.00116775) = 0.0341724; z = 0.07 / 0.0341724 = 2.048439
        // p = 2·(1 - Φ(2.048439)) = 2 · 0.0202585 = 0.0405
        // (checked with Python: math.erfc(2.048439 / math.sqrt(2)) = 0.040517)
        let b = find(&results, "b");
        assert_eq!(b.counts(), Counts::new(200, 34).unwrap());
        assert_eq!(b.rate(), Some(0.17));
        assert_eq!(round4(b.uplift().unwrap()), 0.7);
        let ci = b.difference_interval().unwrap();
        assert_eq!((round4(ci.low()), round4(ci.high())), (0.0034, 0.1366));
        assert_eq!(round4(b.p_value().unwrap()), 0.0405);

        // c: p_t = 15/180 = 0.083333, difference -0.016667.
        // uplift = -0.016667 / 0.10 = -0.1667
        // Wald SE = sqrt(0.00045 + 0.083333·0.916667/180) = sqrt(0.00045 + 0.00042438)
        //         = sqrt(0.00087438) = 0.0295700
        // interval = -0.016667 ± 1.959964 · 0.0295700 = -0.016667 ± 0.0579561
        //          = [-0.0746, 0.0413]
        // pooled p = 35/380 = 0.0921053; SE = sqrt(0.0921053·0.9078947·(1/200 + 1/180))
        //          = sqrt(0.0836219 · 0.0105556) = 0.0297099; z = -0.016667 / 0.0297099
        //          = -0.560981; p = 2·Φ(-0.560981) = 2 · 0.287405 = 0.5748
        let c = find(&results, "c");
        assert_eq!(c.counts(), Counts::new(180, 15).unwrap());
        assert_eq!(round4(c.rate().unwrap()), 0.0833);
        assert_eq!(round4(c.uplift().unwrap()), -0.1667);
        let ci = c.difference_interval().unwrap();
        assert_eq!((round4(ci.low()), round4(ci.high())), (-0.0746, 0.0413));
        assert_eq!(round4(c.p_value().unwrap()), 0.5748);
    }

    #[test]
    fn a_visitor_exposed_to_two_variants_counts_once_in_the_first() {
        let exposures = vec![expose(1, "b", 15), expose(1, "control", 5)];
        let counts = count_visitors(&v("control"), &exposures, &[convert(1, 30)]);
        assert_eq!(counts[&v("control")], Counts::new(1, 1).unwrap());
        assert_eq!(counts[&v("b")], Counts::new(0, 0).unwrap());
    }

    #[test]
    fn a_conversion_before_the_first_exposure_is_not_counted() {
        let exposures = vec![expose(1, "control", 10), expose(2, "control", 10)];
        let conversions = vec![convert(1, 9), convert(2, 10)];
        let counts = count_visitors(&v("control"), &exposures, &conversions);
        assert_eq!(
            counts[&v("control")],
            Counts::new(2, 1).unwrap(),
            "visitor 1 converted a minute early; visitor 2 at the exposure's own minute counts"
        );
    }

    #[test]
    fn a_variant_with_nobody_exposed_gives_nulls_not_nan() {
        // b's only visitor was first exposed to control, so b has 0 exposed.
        let exposures = vec![expose(1, "control", 5), expose(1, "b", 15)];
        let results = variant_results(&v("control"), &exposures, &[]);
        let b = find(&results, "b");
        assert_eq!(b.counts(), Counts::default());
        assert_eq!(b.rate(), None);
        assert_eq!(b.uplift(), None);
        assert_eq!(b.difference_interval(), None);
        assert_eq!(b.p_value(), None);
        let json = serde_json::to_value(b).unwrap();
        assert_eq!(json["rate"], serde_json::Value::Null);
        assert_eq!(json["p_value"], serde_json::Value::Null);

        // A control nobody saw leaves every comparison unknown too.
        let results = variant_results(&v("control"), &[expose(2, "b", 5)], &[convert(2, 6)]);
        assert_eq!(find(&results, "control").rate(), None);
        let b = find(&results, "b");
        assert_eq!(b.rate(), Some(1.0));
        assert_eq!((b.uplift(), b.p_value()), (None, None));
        assert_eq!(b.difference_interval(), None);
    }

    #[test]
    fn a_control_rate_of_zero_leaves_uplift_unknown_but_still_tests() {
        let mut counts = BTreeMap::new();
        counts.insert(v("control"), Counts::new(100, 0).unwrap());
        counts.insert(v("b"), Counts::new(100, 0).unwrap());
        let results = results_from_counts(&v("control"), &counts);
        let b = find(&results, "b");
        assert_eq!(b.uplift(), None);
        assert_eq!(
            b.p_value(),
            Some(1.0),
            "equal rates of 0: no evidence of a difference"
        );
        let ci = b.difference_interval().unwrap();
        assert_eq!((ci.low(), ci.high()), (0.0, 0.0));
    }

    #[test]
    fn counts_never_hold_more_converted_than_exposed() {
        assert_eq!(
            Counts::new(3, 4),
            Err(CountsError {
                exposed: 3,
                converted: 4
            })
        );
    }
}
