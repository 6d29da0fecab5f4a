//! Provider webhooks: SendGrid, Mailgun, SES through SNS, Twilio (being built).

use axum::Router;

use super::MessagesState;

pub fn router() -> Router<MessagesState> {
    Router::new()
}
