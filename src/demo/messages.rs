//! The demo's email and SMS campaigns: sends and provider events around the visits that
//! landed from a message link (`lux_mid`), written in SQL once the visits are committed.
//!
//! Each landing's message becomes a send of its campaign, sent some time before the first
//! landing, to the visitor's person (their email hash when they gave one), delivered, opened
//! by a person and clicked (email, SendGrid) or clicked through a short link (SMS, Twilio and
//! `/r/`). Around it, the rest of the blast: sibling sends at the same moment to people who
//! never came (10 sends per email, 5 per SMS, the landing's included), with the usual
//! outcomes: most delivered, a few bounces, human opens, Apple Mail Privacy Protection's
//! machine opens, a link scanner now and then, unsubscribes, and a complaint or two. The orders those visits made are credited to
//! their messages by the attribution job, like real ones.
//!
//! Random draws are hashes of the message id, so the same visits give the same messages.

use sqlx::PgPool;
use uuid::Uuid;

/// Sends per landing email (the landing's own included): a 10 % click rate, as an engaged
/// list's flows get; a bigger blast would double the demo's rows.
const EMAIL_BLAST: i32 = 10;
/// Sends per landing text: SMS is clicked more (20 %).
const SMS_BLAST: i32 = 5;

/// What was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct MessageCounts {
    pub sends: u64,
    pub events: u64,
}

/// Writes the company's demo sends and events (as the owner, in one transaction).
pub async fn generate(owner: &PgPool, company_id: Uuid) -> Result<MessageCounts, sqlx::Error> {
    let mut tx = owner.begin().await?;
    // u(x): a uniform draw in [0, 1) from a text. A function of this session only.
    sqlx::query(
        "CREATE OR REPLACE FUNCTION pg_temp.u(t text) RETURNS float8 LANGUAGE sql IMMUTABLE
         AS $$ SELECT (hashtext(t) & 2147483647)::float8 / 2147483648 $$",
    )
    .execute(&mut *tx)
    .await?;
    let sends = sqlx::query(
        "WITH landings AS (
             SELECT s.message_id, lower(s.channel) AS channel, s.campaign,
                    min(s.started_at) AS first_landing,
                    (array_agg(s.visitor_id ORDER BY s.started_at))[1] AS visitor_id
             FROM sessions s
             WHERE s.company_id = $1 AND s.message_id IS NOT NULL
               AND s.channel IN ('Email', 'SMS') AND NOT s.is_bot
             GROUP BY 1, 2, 3),
         recipients AS (
             SELECT l.*, (SELECT decode(e.key_value, 'hex') FROM identity_keys v
                          JOIN identity_keys e ON e.company_id = $1 AND e.person_id = v.person_id
                                              AND e.key_kind = 'email'
                          WHERE v.company_id = $1 AND v.key_kind = 'visitor'
                            AND v.key_value = l.visitor_id::text
                          ORDER BY e.key_value LIMIT 1) AS email_hash
             FROM landings l),
         blasts AS (
             SELECT r.*, n,
                    r.first_landing - CASE r.channel
                        WHEN 'email' THEN interval '20 minutes'
                                          + interval '30 hours' * pg_temp.u(r.message_id || ':lag')
                        ELSE interval '1 minute'
                             + interval '3 hours' * pg_temp.u(r.message_id || ':lag') END
                        AS sent_at
             FROM recipients r,
                  generate_series(0, CASE r.channel WHEN 'email' THEN $2 ELSE $3 END - 1) n)
         INSERT INTO message_sends (company_id, message_id, channel, provider,
             provider_message_id, campaign, recipient_hash, sent_at, origin, created_at)
         SELECT $1, CASE n WHEN 0 THEN message_id ELSE message_id || '-' || n END, channel,
                CASE channel WHEN 'email' THEN 'sendgrid' ELSE 'twilio' END,
                md5(message_id || n), campaign,
                CASE WHEN n = 0 AND email_hash IS NOT NULL AND channel = 'email' THEN email_hash
                     ELSE sha256(convert_to(message_id || ':' || n, 'UTF8')) END,
                sent_at, 'api', sent_at
         FROM blasts",
    )
    .bind(company_id)
    .bind(EMAIL_BLAST)
    .bind(SMS_BLAST)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let events = sqlx::query(EVENTS)
        .bind(company_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    sqlx::query("ANALYZE message_sends, message_events")
        .execute(owner)
        .await?;
    Ok(MessageCounts { sends, events })
}

/// Every send's provider events. A send with a landing (`landed`) is delivered, and its
/// reader opened (email) and clicked a moment before landing; the others draw their fate.
const EVENTS: &str = "
WITH landings AS (
    SELECT message_id, min(started_at) AS landed FROM sessions
    WHERE company_id = $1 AND message_id IS NOT NULL
    GROUP BY message_id),
sends AS (
    SELECT m.message_id, m.channel, m.recipient_hash, m.sent_at, l.landed,
           pg_temp.u(m.message_id || ':fate') AS fate,
           pg_temp.u(m.message_id || ':open') AS open,
           pg_temp.u(m.message_id || ':machine') AS machine,
           pg_temp.u(m.message_id || ':leave') AS leave
    FROM message_sends m
    LEFT JOIN landings l ON l.message_id = m.message_id
    WHERE m.company_id = $1),
outcomes AS (
    SELECT *, landed IS NOT NULL OR fate >= CASE channel WHEN 'email' THEN 0.02 ELSE 0.03 END
              AS delivered
    FROM sends),
events (message_id, channel, recipient_hash, kind, at, machine, reason, provider) AS (
    SELECT message_id, channel, recipient_hash,
           CASE WHEN delivered THEN 'delivered' ELSE 'bounced' END,
           sent_at + interval '4 seconds', false, NULL::text,
           CASE channel WHEN 'email' THEN 'sendgrid' ELSE 'twilio' END
    FROM outcomes
    UNION ALL
    -- A person opens: every landing's reader, and 22 % of the rest.
    SELECT message_id, channel, recipient_hash, 'opened',
           coalesce(landed - interval '2 minutes', sent_at + interval '1 hour' * (1 + 40 * open)),
           false, NULL, 'sendgrid'
    FROM outcomes WHERE channel = 'email' AND delivered AND (landed IS NOT NULL OR open < 0.22)
    UNION ALL
    -- Apple's proxy fetches the images on delivery for the 35 % who read on Apple Mail.
    SELECT message_id, channel, recipient_hash, 'opened', sent_at + interval '5 seconds', true,
           'apple_proxy_user_agent', 'sendgrid'
    FROM outcomes WHERE channel = 'email' AND delivered AND machine < 0.35
    UNION ALL
    -- A mail gateway's link scanner walks 1 % of the messages.
    SELECT message_id, channel, recipient_hash, 'clicked', sent_at + interval '6 seconds', true,
           'clicked_at_delivery', 'sendgrid'
    FROM outcomes WHERE channel = 'email' AND delivered AND machine >= 0.99
    UNION ALL
    -- The click that brought the reader to the shop: SendGrid's click tracking, or a /r/
    -- short link for a text.
    SELECT message_id, channel, recipient_hash, 'clicked', landed - interval '3 seconds', false,
           NULL, CASE channel WHEN 'email' THEN 'sendgrid' ELSE 'link' END
    FROM outcomes WHERE landed IS NOT NULL
    UNION ALL
    -- Unsubscribes (0.3 % of emails, 1 % of texts: STOP) and complaints (0.05 %, and the
    -- first email of the lot, so the demo has one).
    SELECT message_id, channel, recipient_hash, 'unsubscribed', sent_at + interval '3 hours',
           false, NULL, CASE channel WHEN 'email' THEN 'sendgrid' ELSE 'twilio' END
    FROM outcomes
    WHERE delivered AND landed IS NULL
      AND leave < CASE channel WHEN 'email' THEN 0.003 ELSE 0.01 END
    UNION ALL
    SELECT message_id, channel, recipient_hash, 'complained', sent_at + interval '5 hours',
           false, NULL, 'sendgrid'
    FROM outcomes
    WHERE channel = 'email' AND delivered AND landed IS NULL
      AND (leave >= 0.9995
           OR message_id = (SELECT min(message_id) FROM outcomes
                            WHERE channel = 'email' AND delivered AND landed IS NULL)))
INSERT INTO message_events (company_id, event_id, provider, provider_event_id, message_id, kind,
    provider_status, occurred_at, received_at, recipient_hash, is_machine, machine_reason)
SELECT $1, gen_random_uuid(), provider, message_id || ':' || kind || ':' || machine, message_id,
       kind, kind, at, at + interval '1 second', recipient_hash, machine, reason
FROM events";
