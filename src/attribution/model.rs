//! The attribution rules as pure functions: given an order's time and its touches, who gets
//! the credit. No database here, so every rule is unit-tested by hand.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::settings::{AttributionSettings, Model};

/// The channel of an order, or a part of it, that no touch explains.
pub const UNATTRIBUTED: &str = "Unattributed";
/// The channel whose touches `last_non_direct` passes over.
const DIRECT: &str = "Direct";
/// Credits are computed in billionths, so that each order's credits sum to exactly 1.
pub const CREDIT_UNITS: i64 = 1_000_000_000;

/// A session of one of the buyer's visitors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Touch {
    pub session_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
}

impl Touch {
    /// The order of a path: by start time; touches that started at the same instant (two
    /// devices) are ordered by what they are (channel, source, medium, campaign), then by
    /// session id, so the result never depends on the order rows came back in.
    fn path_key(&self) -> impl Ord + '_ {
        (
            self.started_at,
            self.channel.as_str(),
            self.source.as_str(),
            self.medium.as_str(),
            self.campaign.as_deref(),
            self.session_id,
        )
    }
}

/// Why an order has the attribution it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A touch within the last-touch window.
    Attributed,
    /// Touches in the lookback window, none within the last-touch window.
    NoRecentTouch,
    /// Visitors linked to the buyer, but none of their sessions is in the lookback window.
    NoTouch,
    /// No visitor linked to the buyer: never guessed.
    NoVisitor,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Attributed => "attributed",
            Status::NoRecentTouch => "no_recent_touch",
            Status::NoTouch => "no_touch",
            Status::NoVisitor => "no_visitor",
        }
    }
}

/// One row of the credit table: `touch` indexes the path; `None` is 'Unattributed'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credit {
    pub model: Model,
    pub touch: Option<usize>,
    /// Billionths of the order.
    pub units: i64,
}

/// The whole attribution of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAttribution {
    pub status: Status,
    /// The touches in the lookback window, oldest first.
    pub path: Vec<Touch>,
    pub first: Option<usize>,
    pub last: Option<usize>,
    pub credits: Vec<Credit>,
}

impl OrderAttribution {
    pub fn first_touch(&self) -> Option<&Touch> {
        self.first.map(|i| &self.path[i])
    }

    pub fn last_touch(&self) -> Option<&Touch> {
        self.last.map(|i| &self.path[i])
    }
}

/// Attributes an order placed at `placed_at`. `touches` are the sessions of the buyer's
/// visitors (any order, any time: those outside the lookback window, after the purchase or
/// of excluded channels are dropped here); `has_visitor` says whether any visitor is linked.
pub fn attribute(
    placed_at: DateTime<Utc>,
    has_visitor: bool,
    touches: Vec<Touch>,
    settings: &AttributionSettings,
) -> OrderAttribution {
    let lookback_start = placed_at - Duration::days(settings.lookback_days.into());
    let mut path: Vec<Touch> = touches
        .into_iter()
        .filter(|t| t.started_at >= lookback_start && t.started_at <= placed_at)
        .filter(|t| !settings.excluded_channels.contains(&t.channel))
        .collect();
    path.sort_by(|a, b| a.path_key().cmp(&b.path_key()));
    path.dedup_by(|a, b| a.session_id == b.session_id);

    let last_touch_start = placed_at - Duration::hours(settings.last_touch_hours.into());
    let first = (!path.is_empty()).then_some(0);
    let last = path.iter().rposition(|t| t.started_at >= last_touch_start);
    let status = match (has_visitor || !path.is_empty(), first, last) {
        (false, _, _) => Status::NoVisitor,
        (true, None, _) => Status::NoTouch,
        (true, Some(_), None) => Status::NoRecentTouch,
        (true, Some(_), Some(_)) => Status::Attributed,
    };

    let mut credits = Vec::new();
    for &model in &settings.models {
        let shares = model_shares(model, &path, last, settings);
        credits.extend(to_credits(model, &shares));
    }
    OrderAttribution {
        status,
        path,
        first,
        last,
        credits,
    }
}

/// Each touch's weight under `model` (any scale), or `None` for all of it to 'Unattributed'.
fn model_shares(
    model: Model,
    path: &[Touch],
    last: Option<usize>,
    settings: &AttributionSettings,
) -> Option<Vec<f64>> {
    let n = path.len();
    if n == 0 {
        return None;
    }
    let only = |i: usize| Some((0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect());
    match model {
        Model::FirstTouch => only(0),
        Model::LastTouch => last.and_then(only),
        Model::Linear => Some(vec![1.0; n]),
        Model::TimeDecay => {
            // Ages are counted from the newest touch, which weighs 1: with a short half-life
            // and a long lookback, weights counted from the purchase could all round to 0.
            let half_life = f64::from(settings.half_life_hours) * 3600.0;
            let newest = path.iter().map(|t| t.started_at).max()?;
            Some(
                path.iter()
                    .map(|t| {
                        let age = (newest - t.started_at).num_milliseconds() as f64 / 1000.0;
                        (-age / half_life).exp2()
                    })
                    .collect(),
            )
        }
        Model::PositionBased => Some(position_shares(
            n,
            settings.position_first_percent,
            settings.position_last_percent,
        )),
        // The most recent touch that is not Direct; a path of Direct touches only keeps its
        // most recent one.
        Model::LastNonDirect => only(
            path.iter()
                .rposition(|t| t.channel != DIRECT)
                .unwrap_or(n - 1),
        ),
    }
}

/// Position based (U-shaped): the first and last touches get their percent, the middle
/// touches share the rest. One touch takes everything; two share in proportion to their
/// percents (half each with the defaults).
fn position_shares(n: usize, first: u32, last: u32) -> Vec<f64> {
    match n {
        1 => vec![1.0],
        2 => vec![f64::from(first), f64::from(last)],
        _ => {
            let middle = f64::from(100 - first - last) / (n - 2) as f64;
            let mut shares = vec![middle; n];
            shares[0] = f64::from(first);
            shares[n - 1] = f64::from(last);
            shares
        }
    }
}

/// Turns weights into billionths that sum to exactly one billion (largest remainder; ties to
/// the earlier touch). Touches that earn nothing get no row.
fn to_credits(model: Model, shares: &Option<Vec<f64>>) -> Vec<Credit> {
    let Some(shares) = shares else {
        return vec![Credit {
            model,
            touch: None,
            units: CREDIT_UNITS,
        }];
    };
    let mut total: f64 = shares.iter().sum();
    let equal;
    let shares = if total > 0.0 && total.is_finite() {
        shares
    } else {
        // Nothing to divide by (position based 0/0 with two touches): equal shares.
        equal = vec![1.0; shares.len()];
        total = shares.len() as f64;
        &equal
    };
    let exact: Vec<f64> = shares
        .iter()
        .map(|s| s / total * CREDIT_UNITS as f64)
        .collect();
    let mut units: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
    let mut short = CREDIT_UNITS - units.iter().sum::<i64>();
    let mut by_remainder: Vec<usize> = (0..units.len()).collect();
    by_remainder.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in by_remainder.into_iter().cycle() {
        if short <= 0 {
            break;
        }
        units[i] += 1;
        short -= 1;
    }
    units
        .into_iter()
        .enumerate()
        .filter(|(_, u)| *u > 0)
        .map(|(i, u)| Credit {
            model,
            touch: Some(i),
            units: u,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours_before: i64) -> DateTime<Utc> {
        order_time() - Duration::hours(hours_before)
    }

    fn order_time() -> DateTime<Utc> {
        "2026-11-20T12:00:00Z".parse().unwrap()
    }

    fn touch(n: u128, hours_before: i64, channel: &str) -> Touch {
        Touch {
            session_id: Uuid::from_u128(n),
            started_at: at(hours_before),
            channel: channel.into(),
            source: channel.to_lowercase(),
            medium: "m".into(),
            campaign: None,
        }
    }

    fn credits(a: &OrderAttribution, model: Model) -> Vec<(Option<&str>, i64)> {
        a.credits
            .iter()
            .filter(|c| c.model == model)
            .map(|c| (c.touch.map(|i| a.path[i].channel.as_str()), c.units))
            .collect()
    }

    fn three_touch_journey() -> OrderAttribution {
        // Paid search 20 days before, email 2 days before, direct 1 hour before.
        attribute(
            order_time(),
            true,
            vec![
                touch(3, 1, "Direct"),
                touch(1, 20 * 24, "Paid Search"),
                touch(2, 48, "Email"),
            ],
            &AttributionSettings::default(),
        )
    }

    #[test]
    fn first_and_last_touch_and_the_path() {
        let a = three_touch_journey();
        assert_eq!(a.status, Status::Attributed);
        assert_eq!(a.first_touch().unwrap().channel, "Paid Search");
        assert_eq!(a.last_touch().unwrap().channel, "Direct");
        let path: Vec<&str> = a.path.iter().map(|t| t.channel.as_str()).collect();
        assert_eq!(path, ["Paid Search", "Email", "Direct"]);
    }

    #[test]
    fn every_model_by_hand() {
        let a = three_touch_journey();
        assert_eq!(
            credits(&a, Model::Linear),
            [
                (Some("Paid Search"), 333_333_334),
                (Some("Email"), 333_333_333),
                (Some("Direct"), 333_333_333)
            ]
        );
        assert_eq!(
            credits(&a, Model::PositionBased),
            [
                (Some("Paid Search"), 400_000_000),
                (Some("Email"), 200_000_000),
                (Some("Direct"), 400_000_000)
            ]
        );
        assert_eq!(
            credits(&a, Model::LastNonDirect),
            [(Some("Email"), CREDIT_UNITS)]
        );
        // Weights 2^(-480/168), 2^(-48/168), 2^(-1/168) = 0.138011, 0.820335, 0.995883;
        // sum 1.954229: 7.06218%, 41.97744%, 50.96038%.
        let decay = credits(&a, Model::TimeDecay);
        assert_eq!(decay.len(), 3);
        let expected = [70_621_804, 419_774_389, 509_603_807];
        for ((_, got), want) in decay.iter().zip(expected) {
            assert!((got - want).abs() <= 1, "{got} vs {want}");
        }
    }

    #[test]
    fn every_model_sums_to_exactly_one() {
        let cases = [
            three_touch_journey(),
            attribute(order_time(), true, vec![], &AttributionSettings::default()),
            attribute(
                order_time(),
                true,
                (0..7).map(|i| touch(i, i as i64 * 50, "Email")).collect(),
                &AttributionSettings::default(),
            ),
        ];
        for a in &cases {
            for model in Model::ALL {
                let sum: i64 = a
                    .credits
                    .iter()
                    .filter(|c| c.model == model)
                    .map(|c| c.units)
                    .sum();
                assert_eq!(sum, CREDIT_UNITS, "{model:?} of {a:?}");
            }
        }
    }

    #[test]
    fn time_decay_with_a_tiny_half_life_still_sums_to_one() {
        let s = AttributionSettings {
            lookback_days: 365,
            half_life_hours: 1,
            ..AttributionSettings::default()
        };
        let a = attribute(
            order_time(),
            true,
            vec![touch(1, 364 * 24, "Email"), touch(2, 362 * 24, "Direct")],
            &s,
        );
        assert_eq!(
            credits(&a, Model::TimeDecay),
            [(Some("Direct"), CREDIT_UNITS)]
        );
    }

    #[test]
    fn window_edges() {
        let s = AttributionSettings::default();
        // 31 days before: outside the lookback; nothing counts.
        let a = attribute(order_time(), true, vec![touch(1, 31 * 24, "Email")], &s);
        assert_eq!(a.status, Status::NoTouch);
        assert!(a.path.is_empty());
        assert_eq!(credits(&a, Model::Linear), [(None, CREDIT_UNITS)]);
        // Exactly 30 days before: inside. 73 hours: no last touch.
        let a = attribute(
            order_time(),
            true,
            vec![touch(1, 30 * 24, "Email"), touch(2, 73, "Organic Search")],
            &s,
        );
        assert_eq!(a.status, Status::NoRecentTouch);
        assert_eq!(a.first_touch().unwrap().channel, "Email");
        assert_eq!(a.last_touch(), None);
        assert_eq!(credits(&a, Model::LastTouch), [(None, CREDIT_UNITS)]);
        assert_eq!(
            credits(&a, Model::LastNonDirect),
            [(Some("Organic Search"), CREDIT_UNITS)]
        );
        // A session that started after the purchase is not a touch of it.
        let a = attribute(order_time(), true, vec![touch(1, -1, "Email")], &s);
        assert_eq!(a.status, Status::NoTouch);
        // No visitor at all.
        let a = attribute(order_time(), false, vec![], &s);
        assert_eq!(a.status, Status::NoVisitor);
    }

    #[test]
    fn ties_on_start_time_break_by_channel_then_session() {
        let s = AttributionSettings::default();
        let forward = attribute(
            order_time(),
            true,
            vec![touch(9, 5, "Paid Search"), touch(1, 5, "Email")],
            &s,
        );
        let backward = attribute(
            order_time(),
            true,
            vec![touch(1, 5, "Email"), touch(9, 5, "Paid Search")],
            &s,
        );
        assert_eq!(forward, backward);
        assert_eq!(forward.first_touch().unwrap().channel, "Email");
        assert_eq!(forward.last_touch().unwrap().channel, "Paid Search");
    }

    #[test]
    fn excluded_channels_are_not_touches_and_direct_only_paths_keep_direct() {
        let mut s = AttributionSettings::default();
        let a = attribute(
            order_time(),
            true,
            vec![touch(1, 10, "Direct"), touch(2, 5, "Direct")],
            &s,
        );
        assert_eq!(
            a.credits
                .iter()
                .find(|c| c.model == Model::LastNonDirect)
                .unwrap()
                .touch,
            Some(1)
        );
        s.excluded_channels.insert("Direct".into());
        let a = attribute(order_time(), true, vec![touch(1, 10, "Direct")], &s);
        assert_eq!(a.status, Status::NoTouch);
    }

    #[test]
    fn position_based_with_one_and_two_touches() {
        let zero = to_credits(Model::PositionBased, &Some(position_shares(2, 0, 0)));
        assert_eq!(
            zero.iter().map(|c| c.units).collect::<Vec<_>>(),
            [500_000_000, 500_000_000]
        );
        assert_eq!(position_shares(1, 40, 40), [1.0]);
        assert_eq!(position_shares(2, 40, 40), [40.0, 40.0]);
        assert_eq!(position_shares(4, 40, 40), [40.0, 10.0, 10.0, 40.0]);
    }
}
