//! LUX Analytics: first-party, multi-tenant marketing analytics on PostgreSQL.
//!
//! One module per domain, each owning its SQL and its tests:
//! - [`analytics`]: `/e` ingestion, sessions, channels, the snippet;
//! - [`commerce`]: orders from purchase events, Stripe and WooCommerce;
//! - [`attribution`]: which sessions and channels earned each order;
//! - [`rollups`]: the daily per-company tables every report reads;
//! - [`jobs`]: derived data computed per company, scheduled and recorded;
//! - [`spend`]: ad spend imported from Google Ads, Meta Ads and generic CSV exports;
//! - [`reports`]: the metrics API, read from the rollups as `lux_reader`;
//! - [`dashboards`]: the web app under `/app` (users, sessions, the dashboard pages);
//! - [`identity`]: visitors linked to people across devices;
//! - [`creatives`]: the creative catalog (CSV and API), creative fatigue and its daily job;
//! - [`messages`]: email and SMS sends and provider events: webhook signatures, one event
//!   vocabulary, machine opens and clicks, recipients;
//! - [`privacy`]: IP and email hashing, suppression;
//! - [`tenancy`]: companies and keys;
//! - [`experiments`]: A/B test results and ops velocity (the pure core so far);
//! - [`demo`]: a realistic synthetic company (`lux demo`), and large data sets for benchmarks;
//! - [`db`]: connections, migrations, roles, the embedded cluster;
//! - [`html`]: escaping text for markup written in code (charts, alert emails);
//! - [`http`]: the toolkit every router uses (the JSON error type, reading keys);
//! - [`server`]: the app root: the shared state, the root router, running it all;
//! - [`alerts`]: six rules on the rollups, explained, delivered by email and Slack from an outbox;
//! - [`stats`]: the normal distribution, two-proportion tests, median/MAD robust z-scores;
//! - [`clock`]: the current time, fixed in tests;
//! - [`ids`]: identifiers that cross module boundaries (`CompanyId`).

pub mod alerts;
pub mod analytics;
pub mod attribution;
pub mod clock;
pub mod commerce;
pub mod creatives;
pub mod dashboards;
pub mod db;
pub mod demo;
pub mod experiments;
pub mod html;
pub mod http;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod messages;
pub mod privacy;
pub mod reports;
pub mod rollups;
pub mod server;
pub mod spend;
pub mod stats;
pub mod telemetry;
pub mod tenancy;
