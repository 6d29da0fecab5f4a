//! Where a visit came from: UTM parameters and ad click ids read from the page URL, and the
//! referrer, turned into GA4-style source / medium / campaign and then a channel.

use url::Url;

use super::channel::{self, Channel, ChannelInput, SourceCategory};

/// The `utm_*` parameters of a landing URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

/// Ad platforms' click ids, appended to landing URLs by auto-tagging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickIds {
    pub gclid: Option<String>,
    pub gbraid: Option<String>,
    pub wbraid: Option<String>,
    pub fbclid: Option<String>,
    pub msclkid: Option<String>,
    pub ttclid: Option<String>,
    pub li_fat_id: Option<String>,
}

impl ClickIds {
    fn first(&self) -> Option<&str> {
        [
            &self.gclid,
            &self.gbraid,
            &self.wbraid,
            &self.msclkid,
            &self.ttclid,
            &self.li_fat_id,
            &self.fbclid,
        ]
        .into_iter()
        .find_map(|v| v.as_deref())
    }
}

/// Everything the page URL says about how the visitor arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LandingParams {
    pub utm: Utm,
    pub click_ids: ClickIds,
    /// `lux_mid`: the id of the email/SMS message whose link was clicked.
    pub message_id: Option<String>,
}

/// Query values longer than this are cut: they are labels, not payloads.
const MAX_PARAM_LEN: usize = 512;

impl LandingParams {
    pub fn from_url(url: &Url) -> Self {
        let mut params = LandingParams::default();
        for (key, value) in url.query_pairs() {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let value: String = value.chars().take(MAX_PARAM_LEN).collect();
            let slot = match key.to_ascii_lowercase().as_str() {
                "utm_source" => &mut params.utm.source,
                "utm_medium" => &mut params.utm.medium,
                "utm_campaign" => &mut params.utm.campaign,
                "utm_term" => &mut params.utm.term,
                "utm_content" => &mut params.utm.content,
                "gclid" => &mut params.click_ids.gclid,
                "gbraid" => &mut params.click_ids.gbraid,
                "wbraid" => &mut params.click_ids.wbraid,
                "fbclid" => &mut params.click_ids.fbclid,
                "msclkid" => &mut params.click_ids.msclkid,
                "ttclid" => &mut params.click_ids.ttclid,
                "li_fat_id" => &mut params.click_ids.li_fat_id,
                "lux_mid" => &mut params.message_id,
                _ => continue,
            };
            // The first occurrence wins, as in every analytics tool.
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        params
    }

    /// A key that changes when the visitor arrives through a different campaign or ad click.
    /// `None` when the URL carries no campaign markers at all (an internal navigation, say),
    /// which never starts a new session by itself.
    pub fn campaign_key(&self) -> Option<String> {
        let u = &self.utm;
        let has_utm = u.source.is_some() || u.medium.is_some() || u.campaign.is_some();
        let click = self.click_ids.first();
        if !has_utm && click.is_none() {
            return None;
        }
        Some(format!(
            "{}|{}|{}|{}",
            u.source.as_deref().unwrap_or(""),
            u.medium.as_deref().unwrap_or(""),
            u.campaign.as_deref().unwrap_or(""),
            click.unwrap_or("")
        ))
    }
}

/// The source / medium / campaign of a session, and its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSource {
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    pub channel: Channel,
}

/// Works out a session's traffic source the way GA4 does:
/// 1. UTM parameters win (a missing one is "(not set)");
/// 2. else an ad click id: Google's (gclid, gbraid, wbraid) is google / cpc, Microsoft's
///    msclkid bing / cpc, TikTok's ttclid tiktok / cpc, LinkedIn's li_fat_id linkedin / cpc.
///    fbclid is *not* paid: Facebook adds it to every outbound link, organic ones too;
/// 3. else an external referrer: a listed search engine is `<engine>` / organic, anything else
///    `<host>` / referral (social and video sites then classify by their source category);
/// 4. else (direct) / (none).
pub fn traffic_source(
    landing: &LandingParams,
    page_host: Option<&str>,
    referrer: Option<&Url>,
) -> TrafficSource {
    let (source, medium) = source_and_medium(landing, page_host, referrer);
    let campaign = landing.utm.campaign.clone();
    let channel = channel::classify(ChannelInput {
        source: &source,
        medium: &medium,
        campaign: campaign.as_deref().unwrap_or(""),
    });
    TrafficSource {
        source,
        medium,
        campaign,
        channel,
    }
}

fn source_and_medium(
    landing: &LandingParams,
    page_host: Option<&str>,
    referrer: Option<&Url>,
) -> (String, String) {
    let utm = &landing.utm;
    if utm.source.is_some() || utm.medium.is_some() || utm.campaign.is_some() {
        let not_set = || "(not set)".to_string();
        return (
            utm.source
                .as_deref()
                .map(str::to_lowercase)
                .unwrap_or_else(not_set),
            utm.medium
                .as_deref()
                .map(str::to_lowercase)
                .unwrap_or_else(not_set),
        );
    }
    let ids = &landing.click_ids;
    let paid = |source: &str| (source.to_string(), "cpc".to_string());
    if ids.gclid.is_some() || ids.gbraid.is_some() || ids.wbraid.is_some() {
        return paid("google");
    }
    if ids.msclkid.is_some() {
        return paid("bing");
    }
    if ids.ttclid.is_some() {
        return paid("tiktok");
    }
    if ids.li_fat_id.is_some() {
        return paid("linkedin");
    }
    if let Some(host) = external_referrer_host(page_host, referrer) {
        return match channel::lookup_host(&host) {
            Some((name, SourceCategory::Search)) => (name, "organic".to_string()),
            _ => (host, "referral".to_string()),
        };
    }
    ("(direct)".to_string(), "(none)".to_string())
}

/// The referrer's host without `www.`, unless it is the site itself (an internal link is not
/// a source) or not a web page at all.
fn external_referrer_host(page_host: Option<&str>, referrer: Option<&Url>) -> Option<String> {
    let referrer = referrer?;
    if !matches!(referrer.scheme(), "http" | "https" | "android-app") {
        return None;
    }
    let host = referrer.host_str()?.to_ascii_lowercase();
    let bare = |h: &str| h.trim_start_matches("www.").to_string();
    let host = bare(&host);
    if page_host.map(|p| bare(&p.to_ascii_lowercase())) == Some(host.clone()) {
        return None;
    }
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_of(page: &str, referrer: Option<&str>) -> TrafficSource {
        let page = Url::parse(page).unwrap();
        let referrer = referrer.map(|r| Url::parse(r).unwrap());
        traffic_source(
            &LandingParams::from_url(&page),
            page.host_str(),
            referrer.as_ref(),
        )
    }

    #[test]
    fn utm_parameters_are_parsed_and_win_over_the_referrer() {
        let t = source_of(
            "https://shop.test/?utm_source=Newsletter&utm_medium=email&utm_campaign=bf",
            Some("https://www.google.com/"),
        );
        assert_eq!(
            (t.source.as_str(), t.medium.as_str()),
            ("newsletter", "email")
        );
        assert_eq!(t.campaign.as_deref(), Some("bf"));
        assert_eq!(t.channel, Channel::Email);
    }

    #[test]
    fn referrer_only_cases() {
        let cases = [
            (
                "https://www.google.com/search?q=x",
                "google",
                "organic",
                Channel::OrganicSearch,
            ),
            (
                "https://www.bing.com/",
                "bing",
                "organic",
                Channel::OrganicSearch,
            ),
            (
                "https://duckduckgo.com/",
                "duckduckgo",
                "organic",
                Channel::OrganicSearch,
            ),
            (
                "https://l.facebook.com/l.php",
                "l.facebook.com",
                "referral",
                Channel::OrganicSocial,
            ),
            (
                "https://t.co/abc",
                "t.co",
                "referral",
                Channel::OrganicSocial,
            ),
            (
                "https://www.youtube.com/watch",
                "youtube.com",
                "referral",
                Channel::OrganicVideo,
            ),
            (
                "https://blog.example.org/post",
                "blog.example.org",
                "referral",
                Channel::Referral,
            ),
        ];
        for (referrer, source, medium, channel) in cases {
            let t = source_of("https://shop.test/p", Some(referrer));
            assert_eq!(
                (t.source.as_str(), t.medium.as_str(), t.channel),
                (source, medium, channel),
                "referrer {referrer}"
            );
        }
    }

    #[test]
    fn no_referrer_or_an_internal_one_is_direct() {
        for referrer in [None, Some("https://www.shop.test/cart")] {
            let t = source_of("https://shop.test/", referrer);
            assert_eq!(t.channel, Channel::Direct, "referrer {referrer:?}");
            assert_eq!(t.source, "(direct)");
        }
    }

    #[test]
    fn click_ids_without_utms_mean_paid_traffic_except_fbclid() {
        assert_eq!(
            source_of("https://shop.test/?gclid=abc", None).channel,
            Channel::PaidSearch
        );
        assert_eq!(
            source_of("https://shop.test/?msclkid=abc", None).channel,
            Channel::PaidSearch
        );
        assert_eq!(
            source_of("https://shop.test/?ttclid=abc", None).channel,
            Channel::PaidSocial
        );
        let fb = source_of(
            "https://shop.test/?fbclid=abc",
            Some("https://m.facebook.com/"),
        );
        assert_eq!(fb.channel, Channel::OrganicSocial);
    }

    #[test]
    fn campaign_key_ignores_pages_without_markers() {
        let plain = LandingParams::from_url(&Url::parse("https://s.test/a?x=1").unwrap());
        assert_eq!(plain.campaign_key(), None);
        let a = LandingParams::from_url(&Url::parse("https://s.test/?utm_campaign=a").unwrap());
        let b = LandingParams::from_url(&Url::parse("https://s.test/?utm_campaign=b").unwrap());
        assert_ne!(a.campaign_key(), b.campaign_key());
        let g = LandingParams::from_url(&Url::parse("https://s.test/?gclid=1&lux_mid=m9").unwrap());
        assert_eq!(g.click_ids.gclid.as_deref(), Some("1"));
        assert_eq!(g.message_id.as_deref(), Some("m9"));
    }
}
