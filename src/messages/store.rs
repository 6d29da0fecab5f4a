//! The SQL that writes sends and provider events (being built).
