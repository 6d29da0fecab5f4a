//! A leaf toolkit for the HTTP surface, shared by every domain's router: the one error type
//! ([`ApiError`]) and reading keys from requests ([`key`]). It imports no domain and no app
//! state; the app root builds the app from the domains' routers.

pub mod error;
pub mod key;

pub use error::ApiError;
