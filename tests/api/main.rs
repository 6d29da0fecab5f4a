//! API tests: the real service on a free port, against a fresh PostgreSQL database per test.
//! All in one binary, so the crate links once.

mod alerts;
mod alerts_delivery;
mod append_only;
mod attribution;
mod bad_input;
mod catalog;
mod commerce;
mod crash;
mod creatives;
mod creatives_report;
mod customers;
mod dashboards;
mod dashboards_browser;
mod demo;
mod embedded;
mod experiments;
mod helpers;
mod identity;
mod ingest;
mod messages_e2e;
mod messages_report;
mod messages_sends;
mod messages_webhooks;
mod privacy;
mod privacy_ops;
mod replica;
mod reports;
mod resilience;
mod rollups;
mod scale;
mod sessions;
mod snippet;
mod spend;
mod tenancy;
