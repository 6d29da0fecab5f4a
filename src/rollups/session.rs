//! What one session counts for in the rollups: engaged or not, and how far it went down each
//! funnel. Pure functions over the session's counters and its events in time order.

use super::settings::RollupSettings;

/// A session as the rollups see it.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub page_views: i32,
    /// Engagement time the snippet reported (0 when it reported none).
    pub engagement_ms: i64,
    /// From the session's first event to its last.
    pub duration_ms: i64,
    /// The names of its events, in the order they occurred (only those the rollups look at).
    pub events: Vec<String>,
}

/// Engaged (SPEC §7, GA4): engaged for at least `engaged_seconds` — the engagement time the
/// snippet reported, or else the time from first to last event — or at least
/// `engaged_page_views` page views, or at least one key event.
pub fn is_engaged(settings: &RollupSettings, session: &SessionFacts) -> bool {
    let engaged_ms = if session.engagement_ms > 0 {
        session.engagement_ms
    } else {
        session.duration_ms
    };
    engaged_ms >= i64::from(settings.engaged_seconds) * 1000
        || session.page_views >= settings.engaged_page_views as i32
        || session
            .events
            .iter()
            .any(|e| settings.key_events.contains(e))
}

/// How many steps of a funnel the session took, in order: step k counts once step k − 1 was
/// taken and an event of step k occurred after it (an event at the same moment counts: the
/// events arrive ordered). A `purchase` before any `add_to_cart` does not skip steps.
pub fn funnel_depth(steps: &[String], events: &[String]) -> usize {
    let mut depth = 0;
    for event in events {
        if depth < steps.len() && *event == steps[depth] {
            depth += 1;
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn funnel_steps_count_only_in_order() {
        let commerce = names(&["page_view", "add_to_cart", "begin_checkout", "purchase"]);
        assert_eq!(funnel_depth(&commerce, &names(&[])), 0);
        assert_eq!(funnel_depth(&commerce, &names(&["page_view"])), 1);
        assert_eq!(
            funnel_depth(
                &commerce,
                &names(&[
                    "page_view",
                    "page_view",
                    "add_to_cart",
                    "begin_checkout",
                    "purchase"
                ])
            ),
            4
        );
        // Checkout before the cart: the checkout does not count until it comes again.
        assert_eq!(
            funnel_depth(
                &commerce,
                &names(&["page_view", "begin_checkout", "add_to_cart"])
            ),
            2
        );
        assert_eq!(
            funnel_depth(
                &commerce,
                &names(&[
                    "page_view",
                    "begin_checkout",
                    "add_to_cart",
                    "begin_checkout"
                ])
            ),
            3
        );
        // No page view first: nothing, whatever follows.
        assert_eq!(
            funnel_depth(&commerce, &names(&["add_to_cart", "purchase"])),
            0
        );
    }

    #[test]
    fn engaged_by_time_page_views_or_key_event() {
        let settings = RollupSettings::default();
        let base = SessionFacts {
            page_views: 1,
            engagement_ms: 0,
            duration_ms: 9_999,
            events: names(&["page_view"]),
        };
        assert!(!is_engaged(&settings, &base));
        // First to last event, when the snippet reported no engagement time.
        assert!(is_engaged(
            &settings,
            &SessionFacts {
                duration_ms: 10_000,
                ..base.clone()
            }
        ));
        // Reported engagement wins over the span of the events.
        assert!(!is_engaged(
            &settings,
            &SessionFacts {
                engagement_ms: 4_000,
                duration_ms: 60_000,
                ..base.clone()
            }
        ));
        assert!(is_engaged(
            &settings,
            &SessionFacts {
                page_views: 2,
                ..base.clone()
            }
        ));
        assert!(is_engaged(
            &settings,
            &SessionFacts {
                events: names(&["page_view", "signup"]),
                ..base.clone()
            }
        ));
    }
}
