//! Sends: `POST /api/v1/messages` and `lux import sends` (being built).

use axum::Router;

use super::MessagesState;

pub fn router() -> Router<MessagesState> {
    Router::new()
}
