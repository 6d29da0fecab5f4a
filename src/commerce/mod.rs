//! Commerce: orders from purchase events, Stripe and WooCommerce (webhooks and imports),
//! merged into one row per real order, with customers and first-order flags.
//!
//! Webhooks are verified on the raw bytes before anything is parsed ([`webhook`]), every
//! delivery is kept as received (append-only) with its verification result
//! ([`deliveries`]), and applying is idempotent ([`apply`]).

pub mod apply;
pub mod deliveries;
pub mod import;
pub mod inbox;
pub mod money;
pub mod orders;
pub mod secrets;
pub mod stripe;
pub mod webhook;
pub mod woocommerce;

pub use apply::{Applied, ApplyError, apply_verified};
pub use webhook::{WebhookState, router};
