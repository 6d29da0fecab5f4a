//! Short tracked links: `POST /api/v1/links`, `GET /r/{code}` (being built).

use axum::Router;

use super::MessagesState;

pub fn router() -> Router<MessagesState> {
    Router::new()
}
