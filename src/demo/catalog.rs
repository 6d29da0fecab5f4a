//! What the demo company sells and how people reach it: products, pages, browsers, and the
//! traffic templates (a referrer and landing-URL tags per channel and campaign).
//!
//! A template's source, medium, campaign and channel are not written down here: they are
//! computed once from its landing URL and referrer by [`crate::analytics::traffic`], the code
//! ingestion uses, so the demo's sessions are classified exactly as real ones would be. The
//! tests check that each template lands in the channel it is meant to show.

use chrono::{Datelike, TimeZone};
use chrono_tz::Tz;
use url::Url;

use crate::analytics::traffic::{LandingParams, TrafficSource, Utm, traffic_source};

/// The demo shop. `.example` is reserved (RFC 2606): no real site is named.
pub const SITE: &str = "https://www.northwind.example";
/// Where the synthetic customers' email addresses live (hashed, never stored).
pub const EMAIL_DOMAIN: &str = "demo.northwind.example";

pub struct Product {
    pub sku: &'static str,
    pub slug: &'static str,
    pub name: &'static str,
    pub price_cents: i64,
}

pub const COLLECTIONS: &[(&str, &str)] = &[
    ("boots", "Boots"),
    ("jackets", "Jackets"),
    ("packs", "Packs"),
    ("accessories", "Accessories"),
];

const fn product(
    sku: &'static str,
    slug: &'static str,
    name: &'static str,
    price_cents: i64,
) -> Product {
    Product {
        sku,
        slug,
        name,
        price_cents,
    }
}

pub const PRODUCTS: &[Product] = &[
    product("NW-B01", "ridge-hiking-boot", "Ridge Hiking Boot", 14900),
    product("NW-B02", "summit-gtx-boot", "Summit GTX Boot", 21900),
    product("NW-B03", "trail-runner-low", "Trail Runner Low", 11900),
    product("NW-B04", "winter-pac-boot", "Winter Pac Boot", 17900),
    product("NW-J01", "storm-shell-jacket", "Storm Shell Jacket", 24900),
    product(
        "NW-J02",
        "packable-rain-jacket",
        "Packable Rain Jacket",
        12900,
    ),
    product("NW-J03", "down-hoodie", "Down Hoodie", 19900),
    product("NW-J04", "fleece-midlayer", "Fleece Midlayer", 7900),
    product("NW-P01", "daypack-24", "Daypack 24", 8900),
    product("NW-P02", "trek-pack-55", "Trek Pack 55", 22900),
    product("NW-P03", "hip-pack", "Hip Pack", 3900),
    product("NW-A01", "merino-socks-3", "Merino Socks (3 pairs)", 3400),
    product("NW-A02", "trekking-poles", "Trekking Poles", 6900),
    product("NW-A03", "insulated-bottle", "Insulated Bottle", 2900),
    product("NW-A04", "beanie", "Wool Beanie", 2400),
    product("NW-A05", "headlamp", "Headlamp 400", 4500),
];

pub const BLOG_POSTS: &[&str] = &[
    "how-to-choose-hiking-boots",
    "layering-for-rain",
    "day-hikes-near-new-york",
    "breaking-in-new-boots",
];

/// Browser user agents and how often each is seen.
pub const BROWSERS: &[(&str, u32)] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        28,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        14,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        12,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        7,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        4,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        5,
    ),
];

/// Crawlers: flagged `is_bot` by ingestion's user-agent check, as these are.
pub const BOTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
];

/// How a visit arrives. Each maps to one GA4 channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arrival {
    OrganicSearch,
    PaidSearch,
    PaidSocial,
    Direct,
    Email,
    Referral,
    OrganicSocial,
    Sms,
    Affiliates,
    OrganicVideo,
}

impl Arrival {
    pub const ALL: [Arrival; 10] = [
        Arrival::OrganicSearch,
        Arrival::PaidSearch,
        Arrival::PaidSocial,
        Arrival::Direct,
        Arrival::Email,
        Arrival::Referral,
        Arrival::OrganicSocial,
        Arrival::Sms,
        Arrival::Affiliates,
        Arrival::OrganicVideo,
    ];

    pub fn index(self) -> usize {
        Arrival::ALL
            .iter()
            .position(|a| *a == self)
            .expect("listed")
    }

    /// The channel its sessions must come out as.
    #[cfg(test)]
    pub fn channel(self) -> crate::analytics::channel::Channel {
        use crate::analytics::channel::Channel;
        match self {
            Arrival::OrganicSearch => Channel::OrganicSearch,
            Arrival::PaidSearch => Channel::PaidSearch,
            Arrival::PaidSocial => Channel::PaidSocial,
            Arrival::Direct => Channel::Direct,
            Arrival::Email => Channel::Email,
            Arrival::Referral => Channel::Referral,
            Arrival::OrganicSocial => Channel::OrganicSocial,
            Arrival::Sms => Channel::Sms,
            Arrival::Affiliates => Channel::Affiliates,
            Arrival::OrganicVideo => Channel::OrganicVideo,
        }
    }

    /// Share of first visits, in percent.
    pub fn first_visit_weight(self) -> f64 {
        match self {
            Arrival::OrganicSearch => 27.0,
            Arrival::PaidSearch => 17.0,
            Arrival::PaidSocial => 14.0,
            Arrival::Direct => 13.0,
            Arrival::Email => 4.0,
            Arrival::Referral => 7.0,
            Arrival::OrganicSocial => 10.0,
            Arrival::Sms => 1.0,
            Arrival::Affiliates => 3.5,
            Arrival::OrganicVideo => 3.5,
        }
    }

    /// Share of return visits, in percent: people come back by name, by email and by ads
    /// that follow them.
    pub fn returning_weight(self) -> f64 {
        match self {
            Arrival::OrganicSearch => 17.0,
            Arrival::PaidSearch => 9.0,
            Arrival::PaidSocial => 8.0,
            Arrival::Direct => 33.0,
            Arrival::Email => 20.0,
            Arrival::Referral => 2.0,
            Arrival::OrganicSocial => 4.0,
            Arrival::Sms => 5.0,
            Arrival::Affiliates => 1.0,
            Arrival::OrganicVideo => 1.0,
        }
    }

    /// Probability that a visit sees one page only.
    pub fn bounce(self) -> f64 {
        match self {
            Arrival::OrganicSearch => 0.42,
            Arrival::PaidSearch => 0.38,
            Arrival::PaidSocial => 0.55,
            Arrival::Direct => 0.40,
            Arrival::Email => 0.32,
            Arrival::Referral => 0.45,
            Arrival::OrganicSocial => 0.56,
            Arrival::Sms => 0.35,
            Arrival::Affiliates => 0.40,
            Arrival::OrganicVideo => 0.60,
        }
    }

    /// How likely a visit is to buy, relative to organic search.
    pub fn intent(self) -> f64 {
        match self {
            Arrival::OrganicSearch => 1.0,
            Arrival::PaidSearch => 1.3,
            Arrival::PaidSocial => 0.7,
            Arrival::Direct => 1.25,
            Arrival::Email => 1.4,
            Arrival::Referral => 0.85,
            Arrival::OrganicSocial => 0.6,
            Arrival::Sms => 1.35,
            Arrival::Affiliates => 1.1,
            Arrival::OrganicVideo => 0.5,
        }
    }
}

/// The page a template lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    Home,
    Collection(usize),
    Product(usize),
    /// A mix of home, collection, product and blog pages (organic traffic).
    Any,
}

/// The ad-platform click id a template's landing URL carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Click {
    None,
    Gclid,
    Fbclid,
}

/// An ad that spends money: a Google Ads campaign, or one Meta ad of a campaign.
#[derive(Debug, Clone)]
pub struct Ad {
    pub platform: &'static str,
    /// Cost per click, dollars, low and high.
    pub cpc: (f64, f64),
    /// Click-through rate, low and high.
    pub ctr: (f64, f64),
}

/// One way of arriving: a referrer and the tags of the landing URL.
#[derive(Debug, Clone)]
pub struct Template {
    pub arrival: Arrival,
    /// The landing URL's query without the click id, `""` for none.
    pub query: String,
    pub referrer: Option<&'static str>,
    pub click: Click,
    /// Whether the link carries `lux_mid` (email and SMS messages).
    pub message: bool,
    pub landing: Landing,
    pub weight: f64,
    /// When the template is in use, microseconds since the Unix epoch, `[from, to)`.
    pub active: (i64, i64),
    /// The UTM values as ingestion parses them from the URL.
    pub utm: Utm,
    /// Source, medium, campaign and channel as ingestion computes them.
    pub traffic: TrafficSource,
    pub ad: Option<Ad>,
}

impl Template {
    pub fn is_active(&self, t: i64) -> bool {
        self.active.0 <= t && t < self.active.1
    }
}

/// Where in the window (0 = its start, 1 = its end) a template is in use.
#[derive(Clone, Copy)]
struct Span(f64, f64);

const ALWAYS: Span = Span(0.0, 1.1);

struct Spec {
    arrival: Arrival,
    query: String,
    referrer: Option<&'static str>,
    click: Click,
    landing: Landing,
    weight: f64,
    active: Span,
    /// An exact window instead of `active` (the weekly newsletters).
    window: Option<(i64, i64)>,
    ad: Option<Ad>,
}

fn spec(arrival: Arrival, query: impl Into<String>, landing: Landing, weight: f64) -> Spec {
    Spec {
        arrival,
        query: query.into(),
        referrer: None,
        click: Click::None,
        landing,
        weight,
        active: ALWAYS,
        window: None,
        ad: None,
    }
}

fn referred(arrival: Arrival, referrer: &'static str, landing: Landing, weight: f64) -> Spec {
    Spec {
        referrer: Some(referrer),
        ..spec(arrival, "", landing, weight)
    }
}

/// Google Ads campaign names. None contains "shop" (GA4 would call it Paid Shopping).
fn google(campaign: &str, term: &str, landing: Landing, active: Span, cpc: (f64, f64)) -> Spec {
    let ctr = if campaign.starts_with("brand") {
        (0.12, 0.22)
    } else {
        (0.03, 0.07)
    };
    Spec {
        click: Click::Gclid,
        active,
        referrer: Some("https://www.google.com/"),
        ad: Some(Ad {
            platform: "google_ads",
            cpc,
            ctr,
        }),
        ..spec(
            Arrival::PaidSearch,
            format!(
                "utm_source=google&utm_medium=cpc&utm_campaign={campaign}&utm_term={}",
                term.replace(' ', "+")
            ),
            landing,
            3.0,
        )
    }
}

/// One Meta ad: `utm_content` is the ad id, as Meta's URL parameters `{{ad.id}}` give it.
fn meta(campaign: &str, ad_id: &str, source: &str, product: usize, active: Span) -> Spec {
    Spec {
        click: Click::Fbclid,
        active,
        referrer: Some(if source == "instagram" {
            "https://www.instagram.com/"
        } else {
            "https://m.facebook.com/"
        }),
        ad: Some(Ad {
            platform: "meta_ads",
            cpc: (0.45, 1.15),
            ctr: (0.008, 0.016),
        }),
        ..spec(
            Arrival::PaidSocial,
            format!(
                "utm_source={source}&utm_medium=paid_social&utm_campaign={campaign}&utm_content={ad_id}"
            ),
            Landing::Product(product),
            2.0,
        )
    }
}

fn email(campaign: &str, source: &str, landing: Landing, weight: f64, active: Span) -> Spec {
    Spec {
        active,
        ..spec(
            Arrival::Email,
            format!("utm_source={source}&utm_medium=email&utm_campaign={campaign}"),
            landing,
            weight,
        )
    }
}

/// The traffic templates of a window `[start, end)` (microseconds) in the company's zone.
/// `day_at(f)` is the local midnight a fraction `f` of the way through the window, so that
/// campaigns start and stop with whole local days whatever the time of day the window ends.
pub fn templates(start: i64, end: i64, tz: Tz, day_at: &dyn Fn(f64) -> i64) -> Vec<Template> {
    use Arrival::*;
    let mut specs = vec![
        // Organic search: the engines' referrers only (they strip the query).
        referred(OrganicSearch, "https://www.google.com/", Landing::Any, 7.0),
        referred(OrganicSearch, "https://www.bing.com/", Landing::Any, 1.5),
        referred(OrganicSearch, "https://duckduckgo.com/", Landing::Any, 0.8),
        // Paid search: Google Ads with manual UTMs and auto-tagging (gclid).
        google(
            "brand_search",
            "northwind outfitters",
            Landing::Home,
            ALWAYS,
            (0.35, 0.75),
        ),
        google(
            "generic_hiking_boots",
            "waterproof hiking boots",
            Landing::Collection(0),
            ALWAYS,
            (1.20, 2.40),
        ),
        google(
            "generic_rain_jackets",
            "mens rain jacket",
            Landing::Collection(1),
            Span(0.45, 1.1),
            (1.00, 2.10),
        ),
        google(
            "competitor_terms",
            "trail boots sale",
            Landing::Collection(0),
            Span(0.0, 0.7),
            (1.50, 3.00),
        ),
        // Paid social: Meta ads, each its own ad id.
        meta(
            "prospecting_broad",
            "120210000000101",
            "facebook",
            0,
            ALWAYS,
        ),
        meta(
            "prospecting_broad",
            "120210000000102",
            "instagram",
            4,
            ALWAYS,
        ),
        meta(
            "prospecting_broad",
            "120210000000103",
            "facebook",
            8,
            ALWAYS,
        ),
        meta("retargeting_30d", "120210000000301", "facebook", 1, ALWAYS),
        meta("retargeting_30d", "120210000000302", "instagram", 5, ALWAYS),
        meta(
            "fall_collection_launch",
            "120210000000201",
            "instagram",
            6,
            Span(0.5, 1.1),
        ),
        meta(
            "fall_collection_launch",
            "120210000000202",
            "facebook",
            2,
            Span(0.5, 1.1),
        ),
        // Direct: typed, bookmarked, or the referrer was lost.
        spec(Direct, "", Landing::Home, 6.0),
        spec(Direct, "", Landing::Any, 2.0),
        // Email flows (always on) and the weekly newsletters below.
        email(
            "welcome_series",
            "klaviyo",
            Landing::Collection(0),
            1.5,
            ALWAYS,
        ),
        email("abandoned_cart", "klaviyo", Landing::Home, 1.5, ALWAYS),
        email("winback_60d", "klaviyo", Landing::Any, 0.5, ALWAYS),
        // Referral: blogs and forums that link to the shop.
        referred(
            Referral,
            "https://www.trailrunnerblog.example/2026/best-boots",
            Landing::Product(0),
            2.0,
        ),
        referred(
            Referral,
            "https://gearreviews.example.com/rain-jackets",
            Landing::Product(5),
            1.5,
        ),
        referred(
            Referral,
            "https://forum.hikers.example.org/t/boots",
            Landing::Any,
            1.0,
        ),
        // Organic social. Facebook adds fbclid to every outbound link, organic ones too.
        Spec {
            click: Click::Fbclid,
            ..referred(OrganicSocial, "https://l.facebook.com/", Landing::Any, 2.0)
        },
        referred(OrganicSocial, "https://t.co/", Landing::Any, 1.0),
        referred(
            OrganicSocial,
            "https://www.instagram.com/",
            Landing::Any,
            1.5,
        ),
        referred(
            OrganicSocial,
            "https://www.pinterest.com/",
            Landing::Any,
            1.0,
        ),
        referred(OrganicSocial, "https://www.reddit.com/", Landing::Any, 1.2),
        referred(
            OrganicSocial,
            "https://www.linkedin.com/",
            Landing::Any,
            0.3,
        ),
        // SMS and affiliates.
        spec(
            Sms,
            "utm_source=attentive&utm_medium=sms&utm_campaign=back_in_stock",
            Landing::Product(1),
            1.0,
        ),
        Spec {
            active: Span(0.7, 1.1),
            ..spec(
                Sms,
                "utm_source=attentive&utm_medium=sms&utm_campaign=vip_early_access",
                Landing::Collection(1),
                1.5,
            )
        },
        spec(
            Affiliates,
            "utm_source=trailpartners&utm_medium=affiliate&utm_campaign=partner_program",
            Landing::Any,
            1.0,
        ),
        spec(
            Affiliates,
            "utm_source=outdoordeals&utm_medium=affiliate&utm_campaign=partner_program",
            Landing::Any,
            1.0,
        ),
        referred(
            OrganicVideo,
            "https://www.youtube.com/",
            Landing::Product(1),
            1.0,
        ),
    ];
    specs.extend(newsletters(start, end, tz));

    specs
        .into_iter()
        .map(|s| {
            let mut url = format!("{SITE}/");
            if !s.query.is_empty() {
                url.push('?');
                url.push_str(&s.query);
            }
            // The id's value does not change the traffic source; its presence may.
            match s.click {
                Click::None => {}
                Click::Gclid => url.push_str(if s.query.is_empty() {
                    "?gclid=x"
                } else {
                    "&gclid=x"
                }),
                Click::Fbclid => url.push_str(if s.query.is_empty() {
                    "?fbclid=x"
                } else {
                    "&fbclid=x"
                }),
            }
            let message = matches!(s.arrival, Arrival::Email | Arrival::Sms);
            let url = Url::parse(&url).expect("template URLs are valid");
            let referrer = s.referrer.map(|r| Url::parse(r).expect("valid referrer"));
            let landing = LandingParams::from_url(&url);
            let traffic = traffic_source(&landing, url.host_str(), referrer.as_ref());
            let active = s.window.unwrap_or((
                if s.active.0 <= 0.0 {
                    i64::MIN
                } else {
                    day_at(s.active.0)
                },
                if s.active.1 > 1.0 {
                    i64::MAX
                } else {
                    day_at(s.active.1)
                },
            ));
            Template {
                arrival: s.arrival,
                query: s.query,
                referrer: s.referrer,
                click: s.click,
                message,
                landing: s.landing,
                weight: s.weight,
                active,
                utm: landing.utm,
                traffic,
                ad: s.ad,
            }
        })
        .collect()
}

/// One newsletter per week of the window, each bringing visits during its week:
/// `newsletter_2026_w47`.
fn newsletters(start: i64, end: i64, tz: Tz) -> Vec<Spec> {
    let local = |t: i64| {
        tz.timestamp_micros(t)
            .single()
            .expect("UTC instants are unambiguous")
            .date_naive()
    };
    let midnight = |day: chrono::NaiveDate| {
        tz.from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&day.and_hms_opt(1, 0, 0).expect("1 am"))
                    .earliest()
            })
            .map(|t| t.timestamp_micros())
            .expect("a local day has a start")
    };
    let (first, last) = (local(start), local(end));
    let mut monday = first - chrono::Days::new(u64::from(first.weekday().num_days_from_monday()));
    let mut specs = Vec::new();
    while monday <= last {
        let week = monday.iso_week();
        let next = monday + chrono::Days::new(7);
        let landing = Landing::Collection(week.week() as usize % COLLECTIONS.len());
        specs.push(Spec {
            window: Some((midnight(monday), midnight(next))),
            ..email(
                &format!("newsletter_{}_w{:02}", week.year(), week.week()),
                "newsletter",
                landing,
                4.0,
                ALWAYS,
            )
        });
        monday = next;
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::channel::Channel;
    use crate::analytics::event::is_bot_user_agent;

    fn window() -> (i64, i64) {
        let end = 1_790_000_000_000_000;
        (end - 90 * 86_400_000_000, end)
    }

    #[test]
    fn every_template_lands_in_the_channel_it_is_meant_for() {
        let (start, end) = window();
        let templates = templates(start, end, chrono_tz::America::New_York, &|f| {
            start + (f * (end - start) as f64) as i64
        });
        for arrival in Arrival::ALL {
            assert!(
                templates
                    .iter()
                    .any(|t| t.arrival == arrival && t.active == (i64::MIN, i64::MAX)),
                "{arrival:?} has a template for the whole window"
            );
        }
        for t in &templates {
            assert_eq!(
                t.traffic.channel,
                t.arrival.channel(),
                "{:?} {} (referrer {:?}) is {:?}",
                t.arrival,
                t.query,
                t.referrer,
                t.traffic
            );
            if let Some(ad) = &t.ad {
                let expected = if ad.platform == "google_ads" {
                    Channel::PaidSearch
                } else {
                    Channel::PaidSocial
                };
                assert_eq!(t.traffic.channel, expected, "{}", t.query);
                assert!(
                    t.utm.campaign.is_some(),
                    "paid templates name their campaign"
                );
            }
        }
    }

    #[test]
    fn the_newsletters_cover_the_window_week_by_week() {
        let (start, end) = window();
        let templates = templates(start, end, chrono_tz::America::New_York, &|f| {
            start + (f * (end - start) as f64) as i64
        });
        let weekly: Vec<&Template> = templates
            .iter()
            .filter(|t| t.query.contains("newsletter_"))
            .collect();
        assert!((13..=15).contains(&weekly.len()), "{}", weekly.len());
        for t in (start..end).step_by(3_600_000_000) {
            assert!(weekly.iter().any(|w| w.is_active(t)), "a newsletter at {t}");
        }
    }

    #[test]
    fn browsers_are_not_bots_and_bots_are() {
        for (ua, _) in BROWSERS {
            assert!(!is_bot_user_agent(ua), "{ua}");
        }
        for ua in BOTS {
            assert!(is_bot_user_agent(ua), "{ua}");
        }
    }
}
