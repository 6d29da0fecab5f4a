//! Statistics shared by the domains that test differences between rates or look for
//! outliers (creative fatigue, experiments, alerts): the standard normal distribution, the
//! pooled two-proportion z-test, and the median/MAD robust z-score, each written once.

/// Standard normal CDF, Φ(x).
///
/// Hart (1968), algorithm 5666, in the form given by G. West, "Better approximations to
/// cumulative normal functions" (Wilmott Magazine, 2005): a rational function times
/// `exp(-x²/2)` for |x| < 7.07, a continued fraction beyond, 0 or 1 past |x| = 37. Checked
/// against `0.5·erfc(-x/√2)` (glibc) on a 0.001 grid over [-40, 40]: absolute error at most
/// 2.3e-16, relative error of the lower tail at most 9e-9 over [-37, 0]. Far better than the
/// 4 decimals reported; Abramowitz-Stegun 7.1.26 (1.5e-7 absolute) was rejected as coarser, and
/// a crate (statrs) as a dependency for one function.
pub fn normal_cdf(x: f64) -> f64 {
    let a = x.abs();
    let lower_tail = if a > 37.0 {
        0.0
    } else if a < 7.071_067_811_865_47 {
        let e = (-a * a / 2.0).exp();
        e * horner(a, &NUM) / horner(a, &DEN)
    } else {
        let e = (-a * a / 2.0).exp();
        let cf = a + 1.0 / (a + 2.0 / (a + 3.0 / (a + 4.0 / (a + 0.65))));
        e / cf / 2.506_628_274_631
    };
    if x > 0.0 {
        1.0 - lower_tail
    } else {
        lower_tail
    }
}

/// Hart's coefficients, highest power first.
const NUM: [f64; 7] = [
    3.526_249_659_989_11e-2,
    0.700_383_064_443_688,
    6.373_962_203_531_65,
    33.912_866_078_383,
    112.079_291_497_871,
    221.213_596_169_931,
    220.206_867_912_376,
];
const DEN: [f64; 8] = [
    8.838_834_764_831_84e-2,
    1.755_667_163_182_64,
    16.064_177_579_207,
    86.780_732_202_946_1,
    296.564_248_779_674,
    637.333_633_378_831,
    793.826_512_519_948,
    440.413_735_824_752,
];

fn horner(x: f64, coefficients: &[f64]) -> f64 {
    coefficients.iter().fold(0.0, |acc, c| acc * x + c)
}

/// Pooled two-proportion z statistic of "the second rate differs from the first":
///
/// p̂ = (c₁ + c₂) / (n₁ + n₂), SE = √(p̂(1 − p̂)(1/n₁ + 1/n₂)), z = (c₂/n₂ − c₁/n₁) / SE.
///
/// Pooled because under H₀ both samples share one rate. `None` when a sample is empty or SE
/// is 0 (no successes at all, or all successes): both rates are then equal, no evidence.
pub fn two_proportion_z(c1: u64, n1: u64, c2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (c1, n1, c2, n2) = (c1 as f64, n1 as f64, c2 as f64, n2 as f64);
    let pooled = (c1 + c2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    (se > 0.0 && se.is_finite()).then(|| (c2 / n2 - c1 / n1) / se)
}

/// Which difference a two-proportion test looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The second rate is below the first (a drop): p = Φ(z).
    Less,
    /// The second rate is above the first: p = 1 − Φ(z) = Φ(−z).
    Greater,
    /// Either way: p = 2·Φ(−|z|).
    TwoSided,
}

/// p-value of the pooled two-proportion z-test (see [`two_proportion_z`]); 1 when there is no
/// evidence at all (an empty sample, or equal degenerate rates).
pub fn two_proportion_p(c1: u64, n1: u64, c2: u64, n2: u64, alternative: Alternative) -> f64 {
    let Some(z) = two_proportion_z(c1, n1, c2, n2) else {
        return 1.0;
    };
    match alternative {
        Alternative::Less => normal_cdf(z),
        Alternative::Greater => normal_cdf(-z),
        Alternative::TwoSided => (2.0 * normal_cdf(-z.abs())).min(1.0),
    }
}

/// A p-value as people read it: 4 decimals (`0.0412`), or `< 0.0001` when it would round to
/// 0 there: a tiny p is small, never zero, and "0.0000" reads as if it were.
pub fn p_value_text(p: f64) -> String {
    if p < 0.000_05 {
        "< 0.0001".to_owned()
    } else {
        format!("{p:.4}")
    }
}

/// `p = 0.0412`, or `p < 0.0001` for a tiny one (see [`p_value_text`]).
pub fn p_equation(p: f64) -> String {
    let text = p_value_text(p);
    if text.starts_with('<') {
        format!("p {text}")
    } else {
        format!("p = {text}")
    }
}

/// The median of `values` (the mean of the two middle ones for an even count); `None` when
/// empty. NaNs are not expected (callers pass counts and amounts).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// Median absolute deviation from the median (unscaled).
pub fn mad(values: &[f64]) -> Option<f64> {
    let m = median(values)?;
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    median(&deviations)
}

/// Iglewicz and Hoaglin's modified z-score of `x` against `history`:
/// z = 0.6745 · (x − median) / MAD (0.6745 makes MAD comparable to a standard deviation for
/// normal data). When MAD is 0 (more than half the history is one value) the mean absolute
/// deviation from the median stands in, scaled by 1/1.2533 = √(π/2)⁻¹ to the same footing:
/// z = (x − median) / (1.253314 · MeanAD) (the fallback IBM SPSS and Iglewicz-Hoaglin use).
/// `None` when the history is empty or has no spread at all (every value equal): there is no
/// scale to measure a departure with, and a rule must not fire on "any change at all".
pub fn robust_z(x: f64, history: &[f64]) -> Option<RobustZ> {
    let median = median(history)?;
    let mad = mad(history)?;
    let z = if mad > 0.0 {
        0.6745 * (x - median) / mad
    } else {
        let mean_ad =
            history.iter().map(|v| (v - median).abs()).sum::<f64>() / history.len() as f64;
        if mean_ad <= 0.0 {
            return None;
        }
        (x - median) / (1.253_314 * mean_ad)
    };
    Some(RobustZ { median, mad, z })
}

/// A robust z-score with the numbers it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustZ {
    pub median: f64,
    pub mad: f64,
    pub z: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_p_value_reads_as_below_0_0001_never_as_zero() {
        assert_eq!(p_value_text(3.03e-6), "< 0.0001");
        assert_eq!(p_value_text(0.0), "< 0.0001");
        assert_eq!(p_value_text(0.000_07), "0.0001");
        assert_eq!(p_value_text(0.518_44), "0.5184");
        assert_eq!(p_equation(3.03e-6), "p < 0.0001");
        assert_eq!(p_equation(0.0445), "p = 0.0445");
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        // Reference values: 0.5·erfc(-x/√2) from glibc (Python's math.erfc).
        for (x, expected) in [
            (0.0, 0.5),
            (1.959_963_984_540_054, 0.975),
            (-1.0, 0.158_655_253_931_457_07),
            (-3.0, 0.001_349_898_031_630_095_7),
            (-8.0, 6.220_960_574_271_819e-16),
            (2.5, 0.993_790_334_674_223_8),
        ] {
            let got = normal_cdf(x);
            assert!(
                (got - expected).abs() <= 1e-15 + 1e-8 * expected,
                "Φ({x}) = {got}, expected {expected}"
            );
        }
        assert_eq!(normal_cdf(-40.0), 0.0);
        assert_eq!(normal_cdf(40.0), 1.0);
    }

    fn close(got: f64, expected: f64, what: &str) {
        assert!(
            (got - expected).abs() < 1e-6,
            "{what}: {got}, expected {expected}"
        );
    }

    #[test]
    fn two_proportion_tests_match_known_values() {
        // 200/1000 then 150/1000: pooled 0.175, SE = √(0.175·0.825·0.002) = 0.016992645,
        // z = −0.05 / SE = −2.942449 (R: prop.test without continuity correction gives
        // X² = 8.658 = z², p two-sided 0.003256, one-sided "less" 0.001628).
        let z = two_proportion_z(200, 1000, 150, 1000).unwrap();
        close(z, -2.942_449_4, "z");
        close(
            two_proportion_p(200, 1000, 150, 1000, Alternative::Less),
            0.001_628_1,
            "less",
        );
        close(
            two_proportion_p(200, 1000, 150, 1000, Alternative::TwoSided),
            0.003_256_3,
            "two",
        );
        close(
            two_proportion_p(200, 1000, 150, 1000, Alternative::Greater),
            0.998_371_9,
            "greater",
        );
        // No evidence: an empty sample or no successes anywhere.
        assert_eq!(two_proportion_p(0, 0, 5, 10, Alternative::TwoSided), 1.0);
        assert_eq!(two_proportion_p(0, 10, 0, 10, Alternative::Less), 1.0);
        assert!(two_proportion_z(0, 10, 0, 10).is_none());
    }

    #[test]
    fn median_and_mad_match_known_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        // 1 1 2 2 4 6 9: median 2, deviations 1 1 0 0 2 4 7 → MAD 1 (the textbook example).
        assert_eq!(mad(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]), Some(1.0));
    }

    #[test]
    fn robust_z_matches_known_values_and_handles_a_zero_mad() {
        let history = [100.0, 102.0, 98.0, 101.0, 99.0, 103.0, 97.0, 100.0];
        // median 100, deviations 0 2 2 1 1 3 3 0 → MAD 1.5; z(110) = 0.6745·10/1.5 = 4.496667.
        let r = robust_z(110.0, &history).unwrap();
        assert_eq!((r.median, r.mad), (100.0, 1.5));
        close(r.z, 4.496_666_7, "z");
        close(robust_z(90.0, &history).unwrap().z, -4.496_666_7, "down");
        // MAD 0 (five of eight equal): the mean absolute deviation stands in.
        // median 10, MeanAD = (0·5 + 2 + 4 + 6)/8 = 1.5; z(20) = 10/(1.253314·1.5) = 5.319231.
        let flat = [10.0, 10.0, 10.0, 10.0, 10.0, 12.0, 14.0, 16.0];
        let r = robust_z(20.0, &flat).unwrap();
        assert_eq!(r.mad, 0.0);
        close(r.z, 5.319_231_0, "fallback");
        // No spread at all: no z.
        assert!(robust_z(11.0, &[10.0; 8]).is_none());
        assert!(robust_z(11.0, &[]).is_none());
    }
}
