//! The simulation: who arrives when, and the story of each person (visits, devices, what
//! they do), played out in time order.
//!
//! Determinism: every person has its own random generator, seeded from the demo's seed and
//! the person's number, and draws the same numbers whatever the date. Dates only move times
//! (which weekday a day is, where midnight falls), never how many visits, events or orders
//! there are: the same seed gives the same counts today and tomorrow.
//!
//! Streaming: people are planned twice. A first pass notes the day of each person's
//! earliest visit (4 bytes a person); the second creates people on that day, their visits
//! wait in a queue ordered by start and are written out when their time comes. Rows go out
//! in time order, and memory holds the people still active, not the data set.
//!
//! The window is taken as a circle: a visit planned after its end (now) comes round to its
//! start, as in a steady state where the people seen early had arrived before the window.

use std::cell::RefCell;

use chrono::{Datelike, NaiveDate, TimeZone, Weekday};
use chrono_tz::Tz;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use uuid::Uuid;

use super::catalog::{self, Arrival, Template};

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// No visit lasts longer (see [`super::emit`]: at most 15 pages of at most 2 minutes each).
pub const MAX_SESSION: i64 = 40 * MINUTE;
/// Two visits of one person are at least this far apart, well over the 30-minute session
/// timeout, so ingestion would have split them the same way.
pub const MIN_GAP: i64 = 2 * HOUR;
/// Nothing happens in the last minutes before the end of the window.
const END_MARGIN: i64 = 5 * MINUTE;

/// Local-hour weights of visits (a shop: lunch and evening peaks, quiet nights).
const HOURS: [f64; 24] = [
    1.2, 0.8, 0.5, 0.4, 0.4, 0.6, 1.2, 2.2, 3.2, 4.0, 4.6, 5.0, 5.6, 5.4, 5.0, 4.8, 4.8, 5.0, 5.6,
    6.4, 6.8, 6.0, 4.2, 2.4,
];

/// A random generator for one stream of the demo (a person, a visit, the days).
pub fn rng(seed: u64, stream: u64, index: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(splitmix(splitmix(seed ^ stream) ^ index))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const PERSON_STREAM: u64 = 0x5045_5253_4f4e;
const DAY_STREAM: u64 = 0x4441_5953;

/// A random UUID (version 4) from `rng`.
pub fn uuid4(rng: &mut Xoshiro256PlusPlus) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// A UUIDv7 for time `t` (microseconds), its random part from `rng`: what `Uuid::now_v7()`
/// would have given at that time.
pub fn uuid7(t: i64, rng: &mut Xoshiro256PlusPlus) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis((t / 1000) as u64, &rng.random()).into_uuid()
}

/// Picks an index by weight.
pub fn pick(rng: &mut Xoshiro256PlusPlus, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut x = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
        last = i;
    }
    last
}

/// Local days of the window: their midnights, to find a time's day and hour quickly.
pub struct Days {
    pub midnights: Vec<i64>,
    pub dates: Vec<NaiveDate>,
}

impl Days {
    fn new(start: i64, end: i64, tz: Tz) -> Days {
        let local = |t: i64| {
            tz.timestamp_micros(t)
                .single()
                .expect("UTC instants are unambiguous")
                .date_naive()
        };
        let (mut day, last) = (local(start - DAY), local(end + DAY));
        let mut days = Days {
            midnights: Vec::new(),
            dates: Vec::new(),
        };
        while day <= last {
            // A zone that skips midnight (DST at 00:00) starts the day at the first instant.
            let midnight = tz
                .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
                .earliest()
                .or_else(|| {
                    tz.from_local_datetime(&day.and_hms_opt(1, 0, 0).expect("1 am"))
                        .earliest()
                })
                .map(|t| t.timestamp_micros())
                .expect("a local day has a start");
            days.midnights.push(midnight);
            days.dates.push(day);
            day = day.succ_opt().expect("a next day");
        }
        days
    }

    /// The index of the local day containing `t`.
    pub fn index(&self, t: i64) -> usize {
        self.midnights
            .partition_point(|m| *m <= t)
            .saturating_sub(1)
    }

    pub fn date(&self, t: i64) -> NaiveDate {
        self.dates[self.index(t)]
    }

    /// The local midnight starting `t`'s day; days past the window are taken as 24 hours.
    fn midnight(&self, t: i64) -> i64 {
        let last = *self.midnights.last().expect("days");
        if t >= last + DAY {
            last + (t - last) / DAY * DAY
        } else {
            self.midnights[self.index(t)]
        }
    }
}

/// Everything fixed for one demo: the window, its days, the traffic templates.
pub struct World {
    pub company_id: Uuid,
    pub currency: String,
    pub hash_key: Vec<u8>,
    pub seed: u64,
    pub start: i64,
    pub end: i64,
    pub days: Days,
    pub templates: Vec<Template>,
    by_arrival: Vec<Vec<u16>>,
    /// How many people arrive on each day of the window, relatively.
    pub(super) slot_weights: Vec<f64>,
}

/// A person's plan for one visit, decided when the person is created.
#[derive(Debug, Clone)]
pub struct Visit {
    pub start: i64,
    /// 0 or 1: the person's first or second device.
    pub device: u8,
    pub template: u16,
    /// Pages browsed, the landing page included (funnel pages come on top).
    pub pages: u8,
    pub flags: u16,
    /// Seeds the visit's own details (pages, times, products), drawn when it is written.
    pub seed: u64,
}

pub mod flag {
    pub const BOT: u16 = 1;
    pub const BOUNCE: u16 = 1 << 1;
    pub const LOGIN: u16 = 1 << 2;
    pub const LEAD: u16 = 1 << 3;
    pub const SIGNUP: u16 = 1 << 4;
    pub const CART: u16 = 1 << 5;
    pub const CHECKOUT: u16 = 1 << 6;
    pub const PURCHASE: u16 = 1 << 7;
    /// Creates an account at checkout (a signup on the checkout page).
    pub const SIGNUP_AT_CHECKOUT: u16 = 1 << 8;
    /// The person has an account when buying: the purchase carries the user id.
    pub const ACCOUNT: u16 = 1 << 9;
}

/// One simulated person (or crawler), shared by its pending visits.
pub struct Person {
    pub index: u32,
    pub visitors: [Uuid; 2],
    pub user_agents: [usize; 2],
    pub state: RefCell<PersonState>,
}

/// What is known about a person so far, as its visits are written in time order.
#[derive(Debug, Default)]
pub struct PersonState {
    pub person_id: Option<Uuid>,
    /// Identity keys written: bit 0/1 visitor of device 0/1, bit 2 user, bit 3 email.
    pub linked: u8,
    /// Devices seen: bit 0/1.
    pub seen: u8,
    pub customer: Option<usize>,
}

impl Person {
    pub fn user_id(&self) -> String {
        format!("u{}", 10_000 + u64::from(self.index))
    }

    /// The person's email address. Synthetic, under a reserved domain; only its keyed hash
    /// is ever stored, as ingestion would.
    pub fn email(&self) -> String {
        format!("shopper{}@{}", self.index, catalog::EMAIL_DOMAIN)
    }
}

impl World {
    pub fn new(
        company_id: Uuid,
        currency: String,
        hash_key: Vec<u8>,
        tz: Tz,
        seed: u64,
        days: u32,
        end: i64,
    ) -> World {
        let start = end - i64::from(days) * DAY;
        let local_days = Days::new(start, end, tz);
        let first_day = local_days.index(start);
        let last_day = local_days.midnights.len() - 1;
        let day_at = |fraction: f64| {
            let day = first_day + (fraction * f64::from(days)).round() as usize;
            local_days.midnights[day.min(last_day)]
        };
        let templates = catalog::templates(start, end, tz, &day_at);
        let mut by_arrival = vec![Vec::new(); Arrival::ALL.len()];
        for (i, t) in templates.iter().enumerate() {
            by_arrival[t.arrival.index()].push(i as u16);
        }
        let mut noise = rng(seed, DAY_STREAM, 0);
        let slot_weights = (0..days)
            .map(|k| {
                let middle = start + i64::from(k) * DAY + DAY / 2;
                let weekday = match local_days.date(middle).weekday() {
                    Weekday::Mon => 1.04,
                    Weekday::Tue => 1.07,
                    Weekday::Wed => 1.05,
                    Weekday::Thu => 1.0,
                    Weekday::Fri => 0.94,
                    Weekday::Sat => 0.86,
                    Weekday::Sun => 0.94,
                };
                // A mild upward trend, and a sale (the SMS "VIP early access") near the end.
                let position = f64::from(k) / f64::from(days.max(1));
                let trend = 0.85 + 0.3 * position;
                let sale = if (0.70..0.74).contains(&position) {
                    1.3
                } else {
                    1.0
                };
                weekday * trend * sale * (0.94 + 0.12 * noise.random::<f64>())
            })
            .collect();
        World {
            company_id,
            currency,
            hash_key,
            seed,
            start,
            end,
            days: local_days,
            templates,
            by_arrival,
            slot_weights,
        }
    }

    /// A time in the local day starting at `midnight`, at an hour drawn from the daily curve.
    fn time_of_day(&self, rng: &mut Xoshiro256PlusPlus, midnight: i64) -> i64 {
        let hour = pick(rng, HOURS.iter().copied()) as i64;
        midnight + hour * HOUR + rng.random_range(0..HOUR)
    }

    /// A person's whole story: devices, the times of its visits and what happens in each.
    pub(super) fn plan_person(
        &self,
        index: u32,
        stream: u64,
        slot_start: i64,
    ) -> (Person, Vec<Visit>) {
        let mut rng = rng(self.seed, PERSON_STREAM ^ stream, u64::from(index));
        let bot = rng.random::<f64>() < 0.025;
        // Casual visitors (one visit, maybe two), engaged ones, loyal ones.
        let archetype = rng.random::<f64>();
        let (extra_visits, intent) = if bot {
            (rng.random_range(0..3), 0.0)
        } else if archetype < 0.72 {
            let mut n = 0;
            while n < 3 && rng.random::<f64>() < 0.32 {
                n += 1;
            }
            (n, 1.0)
        } else if archetype < 0.955 {
            (rng.random_range(1..6), 1.15)
        } else {
            (rng.random_range(4..14), 1.6)
        };
        let visitors = [uuid4(&mut rng), uuid4(&mut rng)];
        let user_agents = if bot {
            let ua = rng.random_range(0..catalog::BOTS.len());
            [ua, ua]
        } else {
            let mut browser = || {
                pick(
                    &mut rng,
                    catalog::BROWSERS.iter().map(|(_, w)| f64::from(*w)),
                )
            };
            [browser(), browser()]
        };
        let two_devices = !bot && extra_visits >= 2 && rng.random::<f64>() < 0.12;

        // Times: the first visit in the arrival day, the others days later, each at an hour
        // of the daily curve.
        let available = self.end - self.start - MAX_SESSION - 2 * END_MARGIN;
        let most = (available / MIN_GAP) as usize;
        let visits = (1 + extra_visits as usize).min(most.max(1));
        let mut times = Vec::with_capacity(visits);
        let midnight = self.days.midnight(slot_start + DAY / 2);
        let mut t = self.time_of_day(&mut rng, midnight);
        // The arrival day is the slot's; keep the time inside it.
        t = slot_start + (t - slot_start).rem_euclid(DAY);
        times.push(t);
        for _ in 1..visits {
            let previous = *times.last().expect("one visit at least");
            let next = if bot || rng.random::<f64>() < 0.25 {
                previous + rng.random_range(MIN_GAP..10 * HOUR)
            } else {
                let gap_days = -5.0 * (1.0 - rng.random::<f64>()).ln();
                let day = previous + (gap_days.min(45.0) * DAY as f64) as i64;
                self.time_of_day(&mut rng, self.days.midnight(day))
            };
            times.push(next.max(previous + MIN_GAP + rng.random_range(0..HOUR)));
        }
        // The window ends now, and visits planned after it come round to its start: the
        // window is taken as a circle, like a steady state where people seen at the start had
        // arrived before it. (Dropping them would make the counts depend on the time of day;
        // moving them to the end piled them up there.)
        let last = self.end - END_MARGIN - MAX_SESSION;
        for t in times.iter_mut() {
            *t = self.start + (*t - self.start).rem_euclid(last - self.start);
        }
        times.sort_unstable();
        for i in 1..times.len() {
            times[i] = times[i].max(times[i - 1] + MIN_GAP);
        }
        // Stories longer than the window are squeezed into it.
        fit_into(&mut times, self.start, last);

        let mut plans = Vec::with_capacity(visits);
        let (mut has_email, mut has_account, mut orders, mut second_device_seen) =
            (false, false, 0u32, false);
        for (i, start) in times.into_iter().enumerate() {
            let arrival = if bot {
                Arrival::Direct
            } else if i == 0 {
                Arrival::ALL[pick(
                    &mut rng,
                    Arrival::ALL.iter().map(|a| a.first_visit_weight()),
                )]
            } else {
                Arrival::ALL[pick(&mut rng, Arrival::ALL.iter().map(|a| a.returning_weight()))]
            };
            let template = self.pick_template(&mut rng, arrival, start);
            let seed = rng.random::<u64>();
            if bot {
                plans.push(Visit {
                    start,
                    device: 0,
                    template,
                    pages: rng.random_range(6..=30),
                    flags: flag::BOT,
                    seed,
                });
                continue;
            }
            let mut flags = 0;
            // A person with two devices creates an account on the first visit, then uses
            // the second device about half of the time, logging in on it the first time.
            let device = u8::from(two_devices && i > 0 && rng.random::<f64>() < 0.5);
            let forced = (two_devices && i == 0) || (device == 1 && !second_device_seen);
            let returning = i > 0;
            let bounce_p = arrival.bounce() * if returning { 0.8 } else { 1.0 };
            if !forced && rng.random::<f64>() < bounce_p {
                flags |= flag::BOUNCE;
            }
            let pages = if flags & flag::BOUNCE != 0 {
                1
            } else {
                let mut n = 2;
                while n < 10 && rng.random::<f64>() < 0.6 {
                    n += 1;
                }
                n
            };
            let engaged = flags & flag::BOUNCE == 0;
            if device == 1 && !second_device_seen {
                second_device_seen = true;
                flags |= flag::LOGIN;
            } else if has_account && engaged && rng.random::<f64>() < 0.12 {
                flags |= flag::LOGIN;
            }
            if engaged && !has_email && rng.random::<f64>() < 0.03 {
                flags |= flag::LEAD;
                has_email = true;
            }
            if (two_devices && i == 0) || (engaged && !has_account && rng.random::<f64>() < 0.012) {
                flags |= flag::SIGNUP;
                has_account = true;
                has_email = true;
            }
            let cart_p = 0.075
                * arrival.intent()
                * intent
                * if returning { 1.5 } else { 1.0 }
                * if orders > 0 { 2.5 } else { 1.0 };
            if engaged && rng.random::<f64>() < cart_p.min(0.6) {
                flags |= flag::CART;
                if rng.random::<f64>() < 0.55 {
                    flags |= flag::CHECKOUT;
                    if rng.random::<f64>() < 0.55 {
                        flags |= flag::PURCHASE;
                        if !has_account && rng.random::<f64>() < 0.3 {
                            flags |= flag::SIGNUP_AT_CHECKOUT;
                            has_account = true;
                        }
                        if has_account {
                            flags |= flag::ACCOUNT;
                        }
                        has_email = true;
                        orders += 1;
                    }
                }
            }
            plans.push(Visit {
                start,
                device,
                template,
                pages,
                flags,
                seed,
            });
        }
        let person = Person {
            index,
            visitors,
            user_agents,
            state: RefCell::new(PersonState::default()),
        };
        (person, plans)
    }

    /// One of the arrival's templates in use at `t`, by weight. Always one draw, so that the
    /// date never changes what else a person does.
    fn pick_template(&self, rng: &mut Xoshiro256PlusPlus, arrival: Arrival, t: i64) -> u16 {
        let candidates = &self.by_arrival[arrival.index()];
        let weight = |i: &u16| {
            let template = &self.templates[*i as usize];
            if template.is_active(t) {
                template.weight
            } else {
                0.0
            }
        };
        let total: f64 = candidates.iter().map(weight).sum();
        let mut x = rng.random::<f64>() * total;
        for i in candidates {
            let w = weight(i);
            if x < w {
                return *i;
            }
            x -= w;
        }
        *candidates
            .iter()
            .rev()
            .find(|i| weight(i) > 0.0)
            .expect("every arrival has a template in use at all times")
    }
}

/// Moves increasing `times` (at least [`MIN_GAP`] apart) into `[start, last]`: gaps longer
/// than the minimum are shrunk in proportion if the story is longer than the window, and
/// the whole story moves earlier if it ends after `last`.
fn fit_into(times: &mut [i64], start: i64, last: i64) {
    let span = times[times.len() - 1] - times[0];
    let room = last - start;
    let gaps = (times.len() - 1) as i64;
    if span > room && gaps > 0 {
        let slack = (span - gaps * MIN_GAP) as f64;
        let keep = (room - gaps * MIN_GAP).max(0) as f64 / slack;
        let first = times[0];
        let mut previous = first;
        let mut moved = first;
        for t in times.iter_mut().skip(1) {
            let gap = *t - previous;
            previous = *t;
            moved += MIN_GAP + ((gap - MIN_GAP) as f64 * keep) as i64;
            *t = moved;
        }
    }
    let overrun = times[times.len() - 1] - last;
    if overrun > 0 {
        for t in times.iter_mut() {
            *t -= overrun;
        }
    }
    if times[0] < start {
        let under = start - times[0];
        for t in times.iter_mut() {
            *t += under;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stories_are_fitted_into_the_window_without_losing_visits() {
        let mut times = vec![0, 10 * DAY, 50 * DAY, 95 * DAY];
        fit_into(&mut times, 0, 30 * DAY);
        assert_eq!(times.len(), 4);
        assert!(times[0] >= 0 && times[3] <= 30 * DAY, "{times:?}");
        assert!(
            times.windows(2).all(|w| w[1] - w[0] >= MIN_GAP),
            "{times:?}"
        );

        let mut late = vec![29 * DAY, 29 * DAY + 3 * HOUR];
        fit_into(&mut late, 0, 29 * DAY + HOUR);
        assert_eq!(late, vec![29 * DAY - 2 * HOUR, 29 * DAY + HOUR]);
    }

    #[test]
    fn local_days_follow_the_zone() {
        // 2026-03-08: New York springs forward; the day is 23 hours long.
        let tz = chrono_tz::America::New_York;
        let noon = tz
            .with_ymd_and_hms(2026, 3, 8, 12, 0, 0)
            .single()
            .unwrap()
            .timestamp_micros();
        let days = Days::new(noon - 3 * DAY, noon + 3 * DAY, tz);
        let i = days.index(noon);
        assert_eq!(days.dates[i], NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
        assert_eq!(days.midnights[i + 1] - days.midnights[i], 23 * HOUR);
    }
}
