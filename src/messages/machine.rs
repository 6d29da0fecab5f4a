//! Was an open or click made by a machine? Apple Mail Privacy Protection fetches every image of
//! every message it downloads, security gateways follow every link before the recipient sees
//! the mail, link previews fetch SMS links: counted as people, they make open rates meaningless
//! and could earn a message credit for a sale. [`detect`] answers with the first rule that
//! fires, in this order:
//!
//! 1. the provider's own verdict (SendGrid `sg_machine_open`, Mailgun `client-info.bot`);
//! 2. a bot or link-preview user agent (`isbot`'s patterns, WhatsApp's preview fetcher), except
//!    the mail providers' image proxies, which fetch when a person opens;
//! 3. opens only: Apple's proxy user agent, a bare `Mozilla/5.0`;
//! 4. opens only: an address in Apple's network (17.0.0.0/8);
//! 5. an open within [`OPEN_AFTER_DELIVERY`] of delivery, a click within
//!    [`CLICK_AFTER_DELIVERY`] (or either before delivery was logged);
//! 6. clicks only: [`BURST_LINKS`] different links within [`BURST_WINDOW`];
//! 7. clicks only: every link of the message within [`EVERY_LINK_WINDOW`].
//!
//! `docs/messages.md` argues each threshold. Pure: the caller supplies the delivery time and
//! the other opens and clicks of the same send. A later click can reveal a burst that an
//! earlier one was part of, so when a click arrives the caller should re-run [`detect`] on the
//! clicks of the same send within [`EVERY_LINK_WINDOW`] of it: the windows look both ways.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};

use crate::messages::normalize::{EventKind, IpHint, ProviderEvent};

/// An open this soon after delivery (or before it) was fetched on arrival, by a gateway or a
/// prefetching client: a person needs longer to notice a message and open it.
pub const OPEN_AFTER_DELIVERY: TimeDelta = TimeDelta::seconds(2);
/// A click this soon after delivery (or before it) is a link scanner: a person must open the
/// message, read it and find the link first.
pub const CLICK_AFTER_DELIVERY: TimeDelta = TimeDelta::seconds(5);
/// This many different links clicked within [`BURST_WINDOW`] is a scanner following links.
pub const BURST_LINKS: usize = 3;
/// Each click takes a person to a browser; three different links in five seconds is not a
/// person. Repeated clicks on one link (an impatient person) do not count.
pub const BURST_WINDOW: TimeDelta = TimeDelta::seconds(5);
/// Every link of a message (two or more) clicked within this span is a scanner: people follow
/// the link they want, not the footer's, and not all within ten seconds.
pub const EVERY_LINK_WINDOW: TimeDelta = TimeDelta::seconds(10);

/// Why an event is a machine's. [`MachineReason::code`] is a stable short name for storage;
/// `Display` gives the sentence shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineReason {
    /// The provider said so; the text names the flag.
    ProviderFlag(String),
    BotUserAgent,
    AppleProxyUserAgent,
    AppleNetwork,
    OpenedAtDelivery {
        seconds: i64,
    },
    ClickedAtDelivery {
        seconds: i64,
    },
    ClickBurst {
        links: usize,
    },
    EveryLinkClicked {
        links: usize,
    },
}

impl MachineReason {
    pub fn code(&self) -> &'static str {
        match self {
            MachineReason::ProviderFlag(_) => "provider_flag",
            MachineReason::BotUserAgent => "bot_user_agent",
            MachineReason::AppleProxyUserAgent => "apple_proxy_user_agent",
            MachineReason::AppleNetwork => "apple_network",
            MachineReason::OpenedAtDelivery { .. } => "opened_at_delivery",
            MachineReason::ClickedAtDelivery { .. } => "clicked_at_delivery",
            MachineReason::ClickBurst { .. } => "click_burst",
            MachineReason::EveryLinkClicked { .. } => "every_link_clicked",
        }
    }
}

impl fmt::Display for MachineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineReason::ProviderFlag(flag) => write!(f, "the provider flagged it ({flag})"),
            MachineReason::BotUserAgent => f.write_str("bot or link-preview user agent"),
            MachineReason::AppleProxyUserAgent => {
                f.write_str("Apple Mail Privacy Protection proxy (user agent \"Mozilla/5.0\")")
            }
            MachineReason::AppleNetwork => f.write_str("opened from Apple's network (17.0.0.0/8)"),
            MachineReason::OpenedAtDelivery { seconds } => {
                write!(f, "opened {seconds} s after delivery")
            }
            MachineReason::ClickedAtDelivery { seconds } => {
                write!(f, "clicked {seconds} s after delivery")
            }
            MachineReason::ClickBurst { links } => write!(
                f,
                "{links} different links clicked within {} s",
                BURST_WINDOW.num_seconds()
            ),
            MachineReason::EveryLinkClicked { links } => write!(
                f,
                "all {links} links clicked within {} s",
                EVERY_LINK_WINDOW.num_seconds()
            ),
        }
    }
}

/// An open or click of the same send, as the timing rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engagement {
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub url: Option<String>,
}

impl Engagement {
    pub fn of(event: &ProviderEvent) -> Engagement {
        Engagement {
            kind: event.kind,
            at: event.occurred_at,
            url: event.url.clone(),
        }
    }
}

/// What [`detect`] needs beyond the event itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// When the message was delivered (its `delivered` event); when none has arrived, the
    /// caller may pass when it was sent, which only makes the timing rules stricter.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The other opens and clicks of the same send (same message, same recipient), earlier and
    /// later. The event itself may be among them; it is not counted twice.
    pub others: &'a [Engagement],
    /// How many distinct tracked links the message has, when known.
    pub links_in_message: Option<usize>,
}

/// The first rule that says `event` was a machine's, or `None` for a person (and for every
/// event that is not an open or a click).
pub fn detect(event: &ProviderEvent, context: &Context<'_>) -> Option<MachineReason> {
    if !event.kind.is_engagement() {
        return None;
    }
    if let Some(flag) = &event.provider_machine_flag {
        return Some(MachineReason::ProviderFlag(flag.clone()));
    }
    let user_agent = event.user_agent.as_deref().map(str::trim).unwrap_or("");
    if is_bot_user_agent(user_agent) {
        return Some(MachineReason::BotUserAgent);
    }
    let open = event.kind == EventKind::Opened;
    if open && user_agent == "Mozilla/5.0" {
        return Some(MachineReason::AppleProxyUserAgent);
    }
    if open && event.ip_hint == IpHint::AppleNetwork {
        return Some(MachineReason::AppleNetwork);
    }
    if let Some(delivered_at) = context.delivered_at {
        let after = event.occurred_at - delivered_at;
        let seconds = after.num_seconds();
        if open && after <= OPEN_AFTER_DELIVERY {
            return Some(MachineReason::OpenedAtDelivery { seconds });
        }
        if !open && after <= CLICK_AFTER_DELIVERY {
            return Some(MachineReason::ClickedAtDelivery { seconds });
        }
    }
    if open {
        return None;
    }
    let this = Engagement::of(event);
    let clicks: Vec<&Engagement> = context
        .others
        .iter()
        .filter(|other| other.kind == EventKind::Clicked && **other != this)
        .chain(std::iter::once(&this))
        .collect();
    let links = most_links_in_a_span(&clicks, event.occurred_at, BURST_WINDOW);
    if links >= BURST_LINKS {
        return Some(MachineReason::ClickBurst { links });
    }
    if let Some(total) = context.links_in_message.filter(|n| *n >= 2) {
        let links = most_links_in_a_span(&clicks, event.occurred_at, EVERY_LINK_WINDOW);
        if links >= total {
            return Some(MachineReason::EveryLinkClicked { links: total });
        }
    }
    None
}

/// The most distinct links clicked within any span of `width` that contains `at`.
fn most_links_in_a_span(clicks: &[&Engagement], at: DateTime<Utc>, width: TimeDelta) -> usize {
    clicks
        .iter()
        .map(|start| start.at)
        .filter(|start| *start <= at && at - *start <= width)
        .map(|start| {
            clicks
                .iter()
                .filter(|c| c.at >= start && c.at - start <= width)
                .filter_map(|c| c.url.as_deref())
                .collect::<HashSet<&str>>()
                .len()
        })
        .max()
        .unwrap_or(0)
}

/// Crawlers, scanners and link previews by user agent. The mail providers' image proxies are
/// not bots here: Gmail's and Yahoo's fetch an image when a person opens the message (and
/// cache it), so they are the opens of Gmail and Yahoo readers.
pub fn is_bot_user_agent(user_agent: &str) -> bool {
    static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);
    const MAIL_IMAGE_PROXIES: [&str; 2] = ["GoogleImageProxy", "YahooMailProxy"];
    // WhatsApp fetches a link to draw its preview; its user agent is its own name.
    const PREVIEWS: [&str; 1] = ["WhatsApp/"];
    if user_agent.is_empty() || MAIL_IMAGE_PROXIES.iter().any(|p| user_agent.contains(p)) {
        return false;
    }
    PREVIEWS.iter().any(|p| user_agent.starts_with(p)) || BOTS.is_bot(user_agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Provider;

    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const APPLE_MAIL: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 (KHTML, like Gecko) Mobile/14G60";

    fn delivered() -> DateTime<Utc> {
        "2026-11-02T09:00:00Z".parse().unwrap()
    }

    fn after(seconds: i64) -> DateTime<Utc> {
        delivered() + TimeDelta::seconds(seconds)
    }

    fn event(kind: EventKind, seconds: i64, user_agent: &str) -> ProviderEvent {
        ProviderEvent {
            provider: Provider::SendGrid,
            provider_event_id: format!("e{seconds}"),
            kind,
            provider_status: kind.as_str().to_owned(),
            occurred_at: after(seconds),
            provider_message_id: Some("m1".into()),
            lux_message_id: None,
            recipient: None,
            several_destinations: false,
            url: (kind == EventKind::Clicked).then(|| "https://shop.example/a".to_owned()),
            user_agent: Some(user_agent.to_owned()),
            ip_hint: IpHint::OtherNetwork,
            provider_machine_flag: None,
            reason: None,
            payload: serde_json::Value::Null,
        }
    }

    fn click(seconds: i64, url: &str) -> Engagement {
        Engagement {
            kind: EventKind::Clicked,
            at: after(seconds),
            url: Some(url.to_owned()),
        }
    }

    fn with_delivery<'a>() -> Context<'a> {
        Context {
            delivered_at: Some(delivered()),
            ..Context::default()
        }
    }

    #[test]
    fn a_person_opening_and_clicking_later_is_a_person() {
        let open = event(EventKind::Opened, 600, APPLE_MAIL);
        assert_eq!(detect(&open, &with_delivery()), None);
        let click = event(EventKind::Clicked, 640, SAFARI_IPHONE);
        assert_eq!(detect(&click, &with_delivery()), None);
        assert_eq!(detect(&click, &Context::default()), None);
    }

    #[test]
    fn only_opens_and_clicks_can_be_machines() {
        let mut delivery = event(EventKind::Delivered, 0, "python-requests/2.31");
        delivery.provider_machine_flag = Some("x".into());
        assert_eq!(detect(&delivery, &with_delivery()), None);
    }

    #[test]
    fn the_providers_flag_comes_first() {
        let mut open = event(EventKind::Opened, 3600, SAFARI_IPHONE);
        open.provider_machine_flag = Some("sendgrid sg_machine_open".into());
        let reason = detect(&open, &with_delivery()).unwrap();
        assert_eq!(
            reason,
            MachineReason::ProviderFlag("sendgrid sg_machine_open".into())
        );
        assert_eq!(reason.code(), "provider_flag");
        assert_eq!(
            reason.to_string(),
            "the provider flagged it (sendgrid sg_machine_open)"
        );
    }

    #[test]
    fn bot_and_link_preview_user_agents_are_machines_but_mail_image_proxies_are_not() {
        for ua in [
            "python-requests/2.31",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "WhatsApp/2.23.20.0 A",
            "curl/8.0",
        ] {
            for kind in [EventKind::Opened, EventKind::Clicked] {
                assert_eq!(
                    detect(&event(kind, 3600, ua), &with_delivery()),
                    Some(MachineReason::BotUserAgent),
                    "{kind} by {ua}"
                );
            }
        }
        for ua in [
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            "",
        ] {
            assert_eq!(
                detect(&event(EventKind::Opened, 3600, ua), &with_delivery()),
                None,
                "{ua}"
            );
        }
    }

    #[test]
    fn apples_proxy_user_agent_marks_opens_only() {
        let open = event(EventKind::Opened, 3600, " Mozilla/5.0 ");
        assert_eq!(
            detect(&open, &with_delivery()),
            Some(MachineReason::AppleProxyUserAgent)
        );
        let click = event(EventKind::Clicked, 3600, "Mozilla/5.0");
        assert_eq!(detect(&click, &with_delivery()), None);
        let full = event(
            EventKind::Opened,
            3600,
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
        );
        assert_eq!(detect(&full, &with_delivery()), None);
    }

    #[test]
    fn an_open_from_apples_network_is_a_machine() {
        let mut open = event(EventKind::Opened, 3600, APPLE_MAIL);
        open.ip_hint = IpHint::AppleNetwork;
        assert_eq!(
            detect(&open, &with_delivery()),
            Some(MachineReason::AppleNetwork)
        );
        let mut click = event(EventKind::Clicked, 3600, SAFARI_IPHONE);
        click.ip_hint = IpHint::AppleNetwork;
        assert_eq!(detect(&click, &with_delivery()), None);
    }

    #[test]
    fn an_open_within_two_seconds_of_delivery_is_a_machine() {
        for (seconds, expected) in [
            (-30, Some(MachineReason::OpenedAtDelivery { seconds: -30 })),
            (0, Some(MachineReason::OpenedAtDelivery { seconds: 0 })),
            (2, Some(MachineReason::OpenedAtDelivery { seconds: 2 })),
            (3, None),
        ] {
            let open = event(EventKind::Opened, seconds, APPLE_MAIL);
            assert_eq!(detect(&open, &with_delivery()), expected, "{seconds} s");
        }
        let open = event(EventKind::Opened, 0, APPLE_MAIL);
        assert_eq!(
            detect(&open, &Context::default()),
            None,
            "no delivery time, no timing rule"
        );
        assert_eq!(
            detect(&open, &with_delivery()).unwrap().to_string(),
            "opened 0 s after delivery"
        );
    }

    #[test]
    fn a_click_within_five_seconds_of_delivery_is_a_scanner() {
        for (seconds, expected) in [
            (1, Some(MachineReason::ClickedAtDelivery { seconds: 1 })),
            (5, Some(MachineReason::ClickedAtDelivery { seconds: 5 })),
            (6, None),
        ] {
            let click = event(EventKind::Clicked, seconds, SAFARI_IPHONE);
            assert_eq!(detect(&click, &with_delivery()), expected, "{seconds} s");
        }
    }

    #[test]
    fn three_different_links_within_five_seconds_is_a_burst_either_way_in_time() {
        let others = [
            click(100, "https://shop.example/a"),
            click(102, "https://shop.example/b"),
            click(104, "https://shop.example/unsubscribe"),
        ];
        let context = Context {
            delivered_at: Some(delivered()),
            others: &others,
            links_in_message: None,
        };
        // The first click, re-checked once the later ones arrived, and the last one.
        for seconds in [100, 104] {
            let mut this = event(EventKind::Clicked, seconds, SAFARI_IPHONE);
            this.url = others
                .iter()
                .find(|c| c.at == after(seconds))
                .unwrap()
                .url
                .clone();
            assert_eq!(
                detect(&this, &context),
                Some(MachineReason::ClickBurst { links: 3 }),
                "{seconds}"
            );
        }
        let spread = [
            click(100, "https://shop.example/a"),
            click(103, "https://shop.example/b"),
            click(106, "https://shop.example/c"),
        ];
        let mut middle = event(EventKind::Clicked, 103, SAFARI_IPHONE);
        middle.url = Some("https://shop.example/b".into());
        assert_eq!(
            detect(
                &middle,
                &Context {
                    others: &spread,
                    ..with_delivery()
                }
            ),
            None,
            "three links over six seconds"
        );
    }

    #[test]
    fn repeated_clicks_on_one_link_are_an_impatient_person_not_a_burst() {
        let others = [
            click(100, "https://shop.example/a"),
            click(101, "https://shop.example/a"),
            click(101, "https://shop.example/a"),
            click(102, "https://shop.example/a"),
        ];
        let this = event(EventKind::Clicked, 102, SAFARI_IPHONE);
        let context = Context {
            others: &others,
            ..with_delivery()
        };
        assert_eq!(detect(&this, &context), None);
    }

    #[test]
    fn every_link_of_a_message_within_ten_seconds_is_a_scanner() {
        let others = [
            click(200, "https://shop.example/a"),
            click(208, "https://shop.example/unsubscribe"),
        ];
        let mut this = event(EventKind::Clicked, 208, SAFARI_IPHONE);
        this.url = Some("https://shop.example/unsubscribe".into());
        let context = Context {
            delivered_at: Some(delivered()),
            others: &others,
            links_in_message: Some(2),
        };
        let reason = detect(&this, &context).unwrap();
        assert_eq!(reason, MachineReason::EveryLinkClicked { links: 2 });
        assert_eq!(reason.to_string(), "all 2 links clicked within 10 s");
        let three_links = Context {
            links_in_message: Some(3),
            ..context
        };
        assert_eq!(detect(&this, &three_links), None, "one link left unclicked");
        let slower = [
            click(200, "https://shop.example/a"),
            click(211, "https://shop.example/unsubscribe"),
        ];
        this.occurred_at = after(211);
        let context = Context {
            others: &slower,
            ..context
        };
        assert_eq!(detect(&this, &context), None, "eleven seconds apart");
    }

    #[test]
    fn reason_codes_are_distinct() {
        let reasons = [
            MachineReason::ProviderFlag(String::new()),
            MachineReason::BotUserAgent,
            MachineReason::AppleProxyUserAgent,
            MachineReason::AppleNetwork,
            MachineReason::OpenedAtDelivery { seconds: 0 },
            MachineReason::ClickedAtDelivery { seconds: 0 },
            MachineReason::ClickBurst { links: 3 },
            MachineReason::EveryLinkClicked { links: 2 },
        ];
        let codes: HashSet<&str> = reasons.iter().map(MachineReason::code).collect();
        assert_eq!(codes.len(), reasons.len());
    }
}
