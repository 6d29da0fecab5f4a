//! Every metric a page shows: its label, its definition (the hover text; the wording of
//! docs/metrics.md), and which way is good.

pub struct Metric {
    pub label: &'static str,
    pub definition: &'static str,
    pub higher_is_better: bool,
}

const fn m(label: &'static str, definition: &'static str, higher_is_better: bool) -> Metric {
    Metric {
        label,
        definition,
        higher_is_better,
    }
}

/// The metric named `key`. An unknown key is a bug in a page module: caught by the test
/// that renders every page.
pub fn metric(key: &str) -> &'static Metric {
    METRICS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, metric)| metric)
        .unwrap_or(&UNKNOWN)
}

static UNKNOWN: Metric = m("?", "", true);

static METRICS: &[(&str, Metric)] = &[
    (
        "revenue",
        m(
            "Revenue",
            "Net revenue: gross paid minus refunds, of orders placed in the range (cancelled and failed orders excluded).",
            true,
        ),
    ),
    (
        "orders",
        m(
            "Orders",
            "Orders placed in the range, not cancelled or failed (credit-weighted per channel under the model).",
            true,
        ),
    ),
    (
        "aov",
        m("AOV", "Average order value = net revenue ÷ orders.", true),
    ),
    (
        "new_customers",
        m(
            "New customers",
            "Orders in the range that were their customer's first order.",
            true,
        ),
    ),
    (
        "cac",
        m(
            "CAC",
            "Customer acquisition cost = ad spend ÷ new customers (blended: all spend over every channel's new customers).",
            false,
        ),
    ),
    (
        "blended_roas",
        m(
            "Blended ROAS",
            "Revenue attributed (under the model) to the channels with ad spend in the range ÷ that spend.",
            true,
        ),
    ),
    (
        "mer",
        m(
            "MER",
            "Marketing efficiency ratio = all net revenue ÷ all ad spend, whatever the channel.",
            true,
        ),
    ),
    (
        "conversion_rate",
        m(
            "Conversion rate",
            "Orders ÷ sessions (bots excluded).",
            true,
        ),
    ),
    (
        "owned_revenue",
        m(
            "Owned-channel revenue",
            "Revenue attributed (under the model) to owned channels: Email, SMS and mobile push.",
            true,
        ),
    ),
    (
        "spend",
        m(
            "Ad spend",
            "Spend imported from the ad platforms (Google Ads, Meta Ads, generic CSV) for the range.",
            false,
        ),
    ),
    (
        "sessions",
        m(
            "Sessions",
            "Visits: a visitor's events with no gap over 30 minutes and no change of campaign (bots excluded).",
            true,
        ),
    ),
    (
        "engaged_sessions",
        m(
            "Engaged sessions",
            "Sessions with ≥ 10 s engaged, ≥ 2 page views or a key event (add to cart, checkout, purchase, lead, signup).",
            true,
        ),
    ),
    (
        "qualified_rate",
        m(
            "Qualified session rate",
            "Engaged sessions ÷ sessions.",
            true,
        ),
    ),
    (
        "page_views",
        m("Page views", "page_view events of the sessions.", true),
    ),
    (
        "roas",
        m(
            "ROAS",
            "Return on ad spend = attributed revenue ÷ ad spend.",
            true,
        ),
    ),
    (
        "impressions",
        m(
            "Impressions",
            "Ad impressions reported by the ad platforms.",
            true,
        ),
    ),
    (
        "clicks",
        m("Clicks", "Ad clicks reported by the ad platforms.", true),
    ),
    (
        "funnel_start",
        m(
            "Sessions at step 1",
            "Sessions that reached the funnel's first step.",
            true,
        ),
    ),
    (
        "funnel_end",
        m(
            "Completed",
            "Sessions that reached the funnel's last step, every step before it in order.",
            true,
        ),
    ),
    (
        "funnel_conversion",
        m(
            "Funnel conversion",
            "Sessions at the last step ÷ sessions at the first step.",
            true,
        ),
    ),
    (
        "step_sessions",
        m(
            "Sessions",
            "Sessions that reached this step, the earlier steps in order.",
            true,
        ),
    ),
    (
        "conversion_from_previous",
        m(
            "From previous step",
            "Sessions at this step ÷ sessions at the step before.",
            true,
        ),
    ),
    (
        "conversion_from_start",
        m(
            "From start",
            "Sessions at this step ÷ sessions at step 1.",
            true,
        ),
    ),
    (
        "drop_off",
        m(
            "Drop-off",
            "Sessions at the step before − sessions at this step.",
            false,
        ),
    ),
    (
        "drop_off_rate",
        m(
            "Drop-off rate",
            "Drop-off ÷ sessions at the step before.",
            false,
        ),
    ),
    (
        "median_time_to_convert",
        m(
            "Median time to convert",
            "Median time from the first touch to the purchase (nearest rank), orders placed in the range.",
            false,
        ),
    ),
    (
        "p90_time_to_convert",
        m(
            "90th percentile",
            "90 % of orders converted within this time of their first touch.",
            false,
        ),
    ),
    (
        "bucket_orders",
        m(
            "Orders",
            "Orders whose time from first touch to purchase falls in the bucket.",
            true,
        ),
    ),
    (
        "share",
        m("Share", "Part of all orders of the range.", true),
    ),
    (
        "customers",
        m(
            "Customers",
            "Customers with an order on a day in the range.",
            true,
        ),
    ),
    (
        "repeat_customers",
        m(
            "Repeat customers",
            "Customers with 2 or more orders on days in the range.",
            true,
        ),
    ),
    (
        "repeat_rate",
        m(
            "Repeat purchase rate",
            "Customers with ≥ 2 orders ÷ customers with ≥ 1 (cohorts: orders at any time since).",
            true,
        ),
    ),
    (
        "cohort_customers",
        m(
            "Customers",
            "Customers whose first order was in the cohort's month (and in the range).",
            true,
        ),
    ),
    (
        "ltv_30",
        m(
            "LTV 30 days",
            "Net revenue per customer within 30 days of their first order, customers first ordering in the range whose 30 days have passed (— until one has).",
            true,
        ),
    ),
    (
        "ltv_90",
        m(
            "LTV 90 days",
            "Net revenue per customer within 90 days of their first order, customers first ordering in the range whose 90 days have passed.",
            true,
        ),
    ),
    (
        "ltv_365",
        m(
            "LTV 365 days",
            "Net revenue per customer within 365 days of their first order, customers whose year has passed.",
            true,
        ),
    ),
    (
        "ltv",
        m(
            "LTV",
            "Cumulative net revenue per customer of the cohort, from the first order to the end of the month.",
            true,
        ),
    ),
    (
        "cohort_revenue",
        m(
            "Revenue",
            "Cumulative net revenue of the cohort's customers.",
            true,
        ),
    ),
    (
        "attributed_orders",
        m(
            "Orders",
            "Orders credited to the channel under the model (fractional models split an order).",
            true,
        ),
    ),
    (
        "path_orders",
        m(
            "Orders",
            "Orders whose touches followed this path of channels.",
            true,
        ),
    ),
    (
        "path_revenue",
        m(
            "Revenue",
            "Net revenue of the orders that followed this path.",
            true,
        ),
    ),
    (
        "touches_per_order",
        m(
            "Channels per path",
            "Average number of channels in an order's path (repeats counted once).",
            false,
        ),
    ),
    (
        "multi_channel_share",
        m(
            "Multi-channel orders",
            "Orders whose path has two or more channels ÷ all orders.",
            true,
        ),
    ),
    (
        "steps",
        m(
            "Channels",
            "Channels in the path, repeats counted once.",
            false,
        ),
    ),
    (
        "sent",
        m(
            "Sent",
            "Email and SMS messages sent on days in the range (one send to one recipient).",
            true,
        ),
    ),
    (
        "delivery_rate",
        m("Delivery rate", "Delivered ÷ sent.", true),
    ),
    (
        "open_rate",
        m(
            "Open rate (human)",
            "Email sends opened by a person (machine opens such as Apple Mail Privacy Protection excluded) ÷ email delivered. SMS has no opens.",
            true,
        ),
    ),
    (
        "message_click_rate",
        m("Click rate", "Sends with a human click ÷ delivered.", true),
    ),
    (
        "unsubscribe_rate",
        m(
            "Unsubscribe rate",
            "Sends that led to an unsubscribe ÷ delivered.",
            false,
        ),
    ),
    (
        "complaint_rate",
        m("Complaint rate", "Sends marked as spam ÷ delivered.", false),
    ),
    (
        "message_orders",
        m(
            "Orders",
            "Orders credited to the sends (the message attribution window).",
            true,
        ),
    ),
    (
        "message_revenue",
        m(
            "Revenue",
            "Net revenue of the orders credited to the sends of the range, whenever the order came.",
            true,
        ),
    ),
    (
        "revenue_per_send",
        m(
            "Revenue per send",
            "Message revenue ÷ sent, rounded to the cent.",
            true,
        ),
    ),
    (
        "alerts",
        m(
            "Alerts",
            "Alerts firing on a day of the range (fired in it, or before it and not yet resolved).",
            false,
        ),
    ),
    (
        "alerts_firing",
        m(
            "Still firing",
            "Of those alerts, the ones not resolved yet.",
            false,
        ),
    ),
    (
        "alerts_critical",
        m(
            "Critical",
            "Of those alerts, the ones of critical severity.",
            false,
        ),
    ),
    (
        "ctr",
        m("CTR", "Click-through rate = ad clicks ÷ impressions.", true),
    ),
    (
        "cpa",
        m(
            "CPA",
            "Cost per acquisition = spend ÷ orders credited (under the model) to the creative.",
            false,
        ),
    ),
    (
        "creative_revenue",
        m(
            "Revenue",
            "Net revenue credited under the model to the touches that carried the creative.",
            true,
        ),
    ),
    (
        "experiments_run",
        m(
            "Experiments run",
            "Experiments running on a day of the range (started on or before its end, not ended before its start).",
            true,
        ),
    ),
    (
        "experiments_launched",
        m(
            "Launched",
            "Experiments started in the months the range touches.",
            true,
        ),
    ),
    (
        "experiments_concluded",
        m(
            "Concluded",
            "Experiments ended in the months the range touches.",
            true,
        ),
    ),
    (
        "experiments_win_rate",
        m("Win rate", "Concluded with a winner ÷ concluded.", true),
    ),
    (
        "experiment_exposed",
        m(
            "Exposed",
            "Visitors exposed to the variant over the whole experiment.",
            true,
        ),
    ),
    (
        "experiment_converted",
        m(
            "Converted",
            "Exposed visitors who did the primary event after their exposure.",
            true,
        ),
    ),
    (
        "experiment_rate",
        m("Conversion rate", "Converted ÷ exposed.", true),
    ),
    (
        "experiment_uplift",
        m(
            "Uplift",
            "(Variant rate − control rate) ÷ control rate.",
            true,
        ),
    ),
    (
        "experiment_p_value",
        m(
            "p-value",
            "Two-sided pooled two-proportion z-test against the control.",
            false,
        ),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_a_label_and_a_definition() {
        for (key, metric) in METRICS {
            assert!(
                !metric.label.is_empty() && metric.definition.len() > 10,
                "{key}"
            );
        }
        assert_eq!(metric("no such").label, "?");
    }
}
