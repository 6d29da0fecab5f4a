//! GA4's default channel grouping: the one place that turns a session's source, medium and
//! campaign into a marketing channel.
//!
//! The rules are Google's ("Default channel group", support.google.com/analytics/answer/9756891),
//! evaluated in order, first match wins. The source lists (search, social, video and shopping
//! sites) are Google's own list as published in `data/ga4_source_categories.csv` (copied from
//! Velir/dbt-ga4, MIT), plus the few additions in [`ADDITIONAL_SOURCE_CATEGORIES`], each with
//! the reason it was added. Matching is case-insensitive, as in GA4.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The channels of GA4's default channel group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Direct,
    CrossNetwork,
    PaidShopping,
    PaidSearch,
    PaidSocial,
    PaidVideo,
    Display,
    PaidOther,
    OrganicShopping,
    OrganicSocial,
    OrganicVideo,
    OrganicSearch,
    Referral,
    Email,
    Affiliates,
    Audio,
    Sms,
    MobilePushNotifications,
    Unassigned,
}

impl Channel {
    /// Every channel, in GA4's order of evaluation.
    pub const ALL: [Channel; 19] = [
        Channel::Direct,
        Channel::CrossNetwork,
        Channel::PaidShopping,
        Channel::PaidSearch,
        Channel::PaidSocial,
        Channel::PaidVideo,
        Channel::Display,
        Channel::PaidOther,
        Channel::OrganicShopping,
        Channel::OrganicSocial,
        Channel::OrganicVideo,
        Channel::OrganicSearch,
        Channel::Referral,
        Channel::Email,
        Channel::Affiliates,
        Channel::Audio,
        Channel::Sms,
        Channel::MobilePushNotifications,
        Channel::Unassigned,
    ];

    /// The channel named `name` in any case (`paid search` is Paid Search), for names that
    /// come from outside (the generic ad spend CSV).
    pub fn from_name(name: &str) -> Option<Channel> {
        let name = name.trim();
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }

    /// The name GA4 shows, which is also what we store.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "Direct",
            Channel::CrossNetwork => "Cross-network",
            Channel::PaidShopping => "Paid Shopping",
            Channel::PaidSearch => "Paid Search",
            Channel::PaidSocial => "Paid Social",
            Channel::PaidVideo => "Paid Video",
            Channel::Display => "Display",
            Channel::PaidOther => "Paid Other",
            Channel::OrganicShopping => "Organic Shopping",
            Channel::OrganicSocial => "Organic Social",
            Channel::OrganicVideo => "Organic Video",
            Channel::OrganicSearch => "Organic Search",
            Channel::Referral => "Referral",
            Channel::Email => "Email",
            Channel::Affiliates => "Affiliates",
            Channel::Audio => "Audio",
            Channel::Sms => "SMS",
            Channel::MobilePushNotifications => "Mobile Push Notifications",
            Channel::Unassigned => "Unassigned",
        }
    }
}

/// Google's category for a source site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCategory {
    Search,
    Social,
    Video,
    Shopping,
}

/// Sources Google's list lacks that a marketer today would expect to be classified.
/// Each is a site launched or renamed after the list was last published.
const ADDITIONAL_SOURCE_CATEGORIES: &[(&str, SourceCategory)] = &[
    ("x.com", SourceCategory::Social),       // twitter.com's new name
    ("threads.net", SourceCategory::Social), // Meta's Threads
    ("threads.com", SourceCategory::Social), // Threads' newer domain
    ("bsky.app", SourceCategory::Social),    // Bluesky
    ("mastodon.social", SourceCategory::Social),
    ("search.brave.com", SourceCategory::Search),
    ("kagi.com", SourceCategory::Search),
];

static SOURCE_CATEGORIES: LazyLock<HashMap<String, SourceCategory>> = LazyLock::new(|| {
    let csv = include_str!("../../data/ga4_source_categories.csv");
    let mut map = HashMap::new();
    for line in csv.lines().skip(1) {
        let Some((source, category)) = line.split_once(',') else {
            continue;
        };
        let category = match category.trim() {
            "SOURCE_CATEGORY_SEARCH" => SourceCategory::Search,
            "SOURCE_CATEGORY_SOCIAL" => SourceCategory::Social,
            "SOURCE_CATEGORY_VIDEO" => SourceCategory::Video,
            "SOURCE_CATEGORY_SHOPPING" => SourceCategory::Shopping,
            _ => continue,
        };
        map.insert(source.trim().to_ascii_lowercase(), category);
    }
    for (source, category) in ADDITIONAL_SOURCE_CATEGORIES {
        map.insert((*source).to_string(), *category);
    }
    map
});

/// The category of a source exactly as written (`google`, `facebook.com`), if it is listed.
pub fn source_category(source: &str) -> Option<SourceCategory> {
    SOURCE_CATEGORIES.get(&source.to_ascii_lowercase()).copied()
}

/// Finds the listed name of a referring host: the host itself, then its parent domains
/// (`m.facebook.com` → `facebook.com`), then the site's bare name without a country or
/// generic suffix (`google.co.uk` → `google`). Returns the listed name and its category.
pub fn lookup_host(host: &str) -> Option<(String, SourceCategory)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    for start in 0..labels.len() {
        let candidate = labels[start..].join(".");
        if let Some(category) = source_category(&candidate) {
            return Some((candidate, category));
        }
    }
    // Strip up to two short trailing labels (".co.uk", ".com.au", ".de") and try the name.
    let mut end = labels.len();
    while end > 1 && labels.len() - end < 2 && labels[end - 1].len() <= 3 {
        end -= 1;
    }
    if end < labels.len() {
        let name = labels[end - 1];
        if let Some(category) = source_category(name) {
            return Some((name.to_string(), category));
        }
    }
    None
}

/// The medium GA4 counts as paid: `^(.*cp.*|ppc|retargeting|paid.*)$`.
fn is_paid_medium(medium: &str) -> bool {
    medium.contains("cp")
        || medium == "ppc"
        || medium == "retargeting"
        || medium.starts_with("paid")
}

/// GA4's shopping-campaign pattern: `^(.*(([^a-df-z]|^)shop|shopping).*)$`, i.e. "shop" at the
/// start or after any character that is not a lowercase letter other than `e` (so "eshop" and
/// "_shop" match, "workshop" does not), or "shopping" anywhere.
fn is_shopping_campaign(campaign: &str) -> bool {
    if campaign.contains("shopping") {
        return true;
    }
    let bytes = campaign.as_bytes();
    campaign.match_indices("shop").any(|(i, _)| {
        i == 0 || {
            let before = bytes[i - 1];
            !(before.is_ascii_lowercase() && before != b'e')
        }
    })
}

const DISPLAY_MEDIUMS: &[&str] = &["display", "banner", "expandable", "interstitial", "cpm"];
const SOCIAL_MEDIUMS: &[&str] = &[
    "social",
    "social-network",
    "social-media",
    "sm",
    "social network",
    "social media",
];
const EMAIL_NAMES: &[&str] = &["email", "e-mail", "e_mail", "e mail"];
const REFERRAL_MEDIUMS: &[&str] = &["referral", "app", "link"];

/// What the channel rules look at: a session's source, medium and campaign name.
/// `(direct)` / `(none)` is a direct visit, as in GA4.
#[derive(Debug, Clone, Copy)]
pub struct ChannelInput<'a> {
    pub source: &'a str,
    pub medium: &'a str,
    pub campaign: &'a str,
}

/// Applies GA4's default channel grouping. First matching rule wins.
pub fn classify(input: ChannelInput<'_>) -> Channel {
    let source = input.source.to_lowercase();
    let medium = input.medium.to_lowercase();
    let campaign = input.campaign.to_lowercase();
    let category = source_category(&source);
    let paid = is_paid_medium(&medium);
    let is = |c: SourceCategory| category == Some(c);

    if source == "(direct)" && (medium == "(none)" || medium == "(not set)") {
        Channel::Direct
    } else if campaign.contains("cross-network") {
        Channel::CrossNetwork
    } else if (is(SourceCategory::Shopping) || is_shopping_campaign(&campaign)) && paid {
        Channel::PaidShopping
    } else if is(SourceCategory::Search) && paid {
        Channel::PaidSearch
    } else if is(SourceCategory::Social) && paid {
        Channel::PaidSocial
    } else if is(SourceCategory::Video) && paid {
        Channel::PaidVideo
    } else if DISPLAY_MEDIUMS.contains(&medium.as_str()) {
        Channel::Display
    } else if paid {
        Channel::PaidOther
    } else if is(SourceCategory::Shopping) || is_shopping_campaign(&campaign) {
        Channel::OrganicShopping
    } else if is(SourceCategory::Social) || SOCIAL_MEDIUMS.contains(&medium.as_str()) {
        Channel::OrganicSocial
    } else if is(SourceCategory::Video) || medium.contains("video") {
        Channel::OrganicVideo
    } else if is(SourceCategory::Search) || medium == "organic" {
        Channel::OrganicSearch
    } else if REFERRAL_MEDIUMS.contains(&medium.as_str()) {
        Channel::Referral
    } else if EMAIL_NAMES.contains(&source.as_str()) || EMAIL_NAMES.contains(&medium.as_str()) {
        Channel::Email
    } else if medium == "affiliate" {
        Channel::Affiliates
    } else if medium == "audio" {
        Channel::Audio
    } else if source == "sms" || medium == "sms" {
        Channel::Sms
    } else if medium.ends_with("push")
        || medium.contains("mobile")
        || medium.contains("notification")
        || source == "firebase"
    {
        Channel::MobilePushNotifications
    } else {
        Channel::Unassigned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(source: &str, medium: &str, campaign: &str) -> Channel {
        classify(ChannelInput {
            source,
            medium,
            campaign,
        })
    }

    /// One case (at least) per GA4 rule, in the order Google evaluates them.
    #[test]
    fn every_ga4_rule_has_a_case() {
        let cases: &[(&str, &str, &str, Channel, &str)] = &[
            ("(direct)", "(none)", "", Channel::Direct, "direct, (none)"),
            (
                "(direct)",
                "(not set)",
                "",
                Channel::Direct,
                "direct, (not set)",
            ),
            (
                "google",
                "cpc",
                "pmax cross-network q3",
                Channel::CrossNetwork,
                "campaign contains cross-network",
            ),
            (
                "amazon",
                "cpc",
                "spring",
                Channel::PaidShopping,
                "shopping site + paid medium",
            ),
            (
                "newsletter",
                "paid",
                "summer_shop",
                Channel::PaidShopping,
                "shop campaign + paid medium",
            ),
            (
                "google",
                "cpc",
                "brand",
                Channel::PaidSearch,
                "search site + cpc",
            ),
            (
                "bing",
                "ppc",
                "brand",
                Channel::PaidSearch,
                "search site + ppc",
            ),
            (
                "facebook",
                "paid_social",
                "retarget",
                Channel::PaidSocial,
                "social site + paid.*",
            ),
            (
                "tiktok.com",
                "retargeting",
                "",
                Channel::PaidSocial,
                "social site + retargeting",
            ),
            (
                "youtube",
                "cpv",
                "launch",
                Channel::PaidVideo,
                "video site + .*cp.*",
            ),
            ("dv360", "display", "", Channel::Display, "display medium"),
            ("adnetwork", "banner", "", Channel::Display, "banner medium"),
            (
                "adnetwork",
                "cpm",
                "",
                Channel::Display,
                "cpm is display, tested before paid other",
            ),
            (
                "adnetwork",
                "interstitial",
                "",
                Channel::Display,
                "interstitial medium",
            ),
            (
                "partner",
                "cpc",
                "",
                Channel::PaidOther,
                "unlisted source + paid medium",
            ),
            (
                "amazon.com",
                "referral",
                "",
                Channel::OrganicShopping,
                "shopping site, unpaid",
            ),
            (
                "blog",
                "referral",
                "shopping-guide",
                Channel::OrganicShopping,
                "shopping campaign, unpaid",
            ),
            (
                "facebook.com",
                "referral",
                "",
                Channel::OrganicSocial,
                "social site",
            ),
            (
                "newsletter-x",
                "social",
                "",
                Channel::OrganicSocial,
                "social medium",
            ),
            (
                "partner",
                "social-media",
                "",
                Channel::OrganicSocial,
                "social-media medium",
            ),
            (
                "youtube.com",
                "referral",
                "",
                Channel::OrganicVideo,
                "video site",
            ),
            (
                "partner",
                "video",
                "",
                Channel::OrganicVideo,
                "medium matches video",
            ),
            (
                "google",
                "organic",
                "",
                Channel::OrganicSearch,
                "search site",
            ),
            (
                "partner",
                "organic",
                "",
                Channel::OrganicSearch,
                "medium organic",
            ),
            (
                "example.org",
                "referral",
                "",
                Channel::Referral,
                "referral medium",
            ),
            ("partner", "app", "", Channel::Referral, "app medium"),
            ("partner", "link", "", Channel::Referral, "link medium"),
            ("newsletter", "email", "", Channel::Email, "email medium"),
            ("e-mail", "(not set)", "", Channel::Email, "email source"),
            (
                "partner",
                "affiliate",
                "",
                Channel::Affiliates,
                "affiliate medium",
            ),
            ("spotify", "audio", "", Channel::Audio, "audio medium"),
            ("sms", "(not set)", "", Channel::Sms, "sms source"),
            ("attentive", "sms", "", Channel::Sms, "sms medium"),
            (
                "app",
                "push",
                "",
                Channel::MobilePushNotifications,
                "medium ends with push",
            ),
            (
                "app",
                "mobile-alert",
                "",
                Channel::MobilePushNotifications,
                "medium contains mobile",
            ),
            (
                "app",
                "notification",
                "",
                Channel::MobilePushNotifications,
                "medium contains notification",
            ),
            (
                "firebase",
                "(not set)",
                "",
                Channel::MobilePushNotifications,
                "firebase source",
            ),
            (
                "partner",
                "weird",
                "",
                Channel::Unassigned,
                "nothing matches",
            ),
            (
                "(direct)",
                "qr",
                "",
                Channel::Unassigned,
                "direct source with a medium is not direct",
            ),
        ];
        for (source, medium, campaign, expected, why) in cases {
            assert_eq!(
                channel(source, medium, campaign),
                *expected,
                "{why}: source={source} medium={medium} campaign={campaign}"
            );
        }
    }

    #[test]
    fn matching_ignores_case() {
        assert_eq!(channel("Google", "CPC", ""), Channel::PaidSearch);
        assert_eq!(channel("NEWSLETTER", "Email", ""), Channel::Email);
    }

    #[test]
    fn shop_pattern_follows_ga4_regex() {
        assert!(is_shopping_campaign("shop_now"));
        assert!(is_shopping_campaign("eshop"));
        assert!(is_shopping_campaign("black-friday-shop"));
        assert!(is_shopping_campaign("holiday shopping"));
        assert!(!is_shopping_campaign("workshop"));
        assert!(!is_shopping_campaign("brand"));
    }

    #[test]
    fn channel_names_read_back_in_any_case() {
        for channel in Channel::ALL {
            assert_eq!(Channel::from_name(channel.as_str()), Some(channel));
        }
        assert_eq!(
            Channel::from_name(" paid search "),
            Some(Channel::PaidSearch)
        );
        assert_eq!(Channel::from_name("sms"), Some(Channel::Sms));
        assert_eq!(Channel::from_name("Paid Serch"), None);
    }

    #[test]
    fn hosts_resolve_to_listed_sources() {
        assert_eq!(
            lookup_host("www.google.co.uk").map(|h| h.0),
            Some("google".into())
        );
        assert_eq!(
            lookup_host("shops.facebook.com"),
            Some(("facebook.com".into(), SourceCategory::Social))
        );
        assert_eq!(
            lookup_host("x.com").map(|h| h.1),
            Some(SourceCategory::Social)
        );
        assert_eq!(lookup_host("blog.example.org"), None);
        assert_eq!(
            lookup_host("www.youtube.com").map(|h| h.1),
            Some(SourceCategory::Video)
        );
    }
}
