//! Orders: what each source (purchase event, Stripe, WooCommerce) says about an order,
//! merged into one row per real order.
//!
//! Every source names the order by the identifiers it knows ("refs"): the store's order
//! number, Stripe's PaymentIntent / Checkout Session / Charge ids, WooCommerce's order id.
//! Sources sharing any ref share the order; a fact that joins two orders merges them. Each
//! source's latest snapshot is kept in `order_sources`; the `orders` row is recomputed from
//! them with a fixed precedence (WooCommerce, then Stripe, then the purchase event), refunds
//! taken as the largest any source reports (they describe the same money).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::money::Currency;
use crate::privacy::EmailHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Event,
    Stripe,
    WooCommerce,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Event => "event",
            Source::Stripe => "stripe",
            Source::WooCommerce => "woocommerce",
        }
    }

    fn parse(s: &str) -> Source {
        match s {
            "stripe" => Source::Stripe,
            "woocommerce" => Source::WooCommerce,
            _ => Source::Event,
        }
    }

    /// Lower is more trusted for amounts and status: the commerce platform, then the
    /// payment processor, then the browser.
    fn rank(self) -> u8 {
        match self {
            Source::WooCommerce => 0,
            Source::Stripe => 1,
            Source::Event => 2,
        }
    }
}

/// A source's view of the payment state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Pending,
    Paid,
    /// The source says fully refunded (the amount may not be known yet).
    Refunded,
    Cancelled,
    Failed,
}

impl PaymentState {
    fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Paid => "paid",
            PaymentState::Refunded => "refunded",
            PaymentState::Cancelled => "cancelled",
            PaymentState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<PaymentState> {
        Some(match s {
            "pending" => PaymentState::Pending,
            "paid" => PaymentState::Paid,
            "refunded" => PaymentState::Refunded,
            "cancelled" => PaymentState::Cancelled,
            "failed" => PaymentState::Failed,
            _ => return None,
        })
    }
}

/// What one source said about one order, in one message.
#[derive(Debug, Clone)]
pub struct OrderFact {
    pub source: Source,
    /// Identifiers of the order, namespaced: `order:1001`, `stripe:pi_…`, `woo:723`.
    pub refs: Vec<String>,
    pub order_number: Option<String>,
    pub state: Option<PaymentState>,
    pub currency: Option<Currency>,
    pub gross_minor: Option<i64>,
    pub discount_minor: Option<i64>,
    pub tax_minor: Option<i64>,
    pub shipping_minor: Option<i64>,
    /// Everything refunded so far, as far as this source knows.
    pub refunded_minor: Option<i64>,
    pub placed_at: Option<DateTime<Utc>>,
    /// The source's last-modified time, to ignore snapshots older than one already applied.
    pub source_updated_at: Option<DateTime<Utc>>,
    pub email_hash: Option<EmailHash>,
    pub user_id: Option<String>,
    pub visitor_id: Option<Uuid>,
    /// Set by purchase events: the session the purchase happened in.
    pub session_id: Option<Uuid>,
}

impl OrderFact {
    pub fn new(source: Source) -> Self {
        OrderFact {
            source,
            refs: Vec::new(),
            order_number: None,
            state: None,
            currency: None,
            gross_minor: None,
            discount_minor: None,
            tax_minor: None,
            shipping_minor: None,
            refunded_minor: None,
            placed_at: None,
            source_updated_at: None,
            email_hash: None,
            user_id: None,
            visitor_id: None,
            session_id: None,
        }
    }

    /// The ref of a store order number, plus Stripe's when the number is a Stripe id (a
    /// purchase event may carry the PaymentIntent or Checkout Session id as its order id).
    pub fn add_order_number(&mut self, number: &str) {
        let number = number.trim();
        if number.is_empty() {
            return;
        }
        self.refs.push(format!("order:{number}"));
        if ["pi_", "cs_", "ch_"].iter().any(|p| number.starts_with(p)) {
            self.refs.push(format!("stripe:{number}"));
        }
        if self.order_number.is_none() {
            self.order_number = Some(number.to_string());
        }
    }
}

/// Records a fact inside the caller's transaction (company already set) and returns the
/// order it belongs to.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    fact: &OrderFact,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let stripped;
    let fact = if names_suppressed_person(tx, company_id, fact).await? {
        stripped = OrderFact {
            email_hash: None,
            user_id: None,
            visitor_id: None,
            session_id: None,
            ..fact.clone()
        };
        &stripped
    } else {
        fact
    };
    lock(tx, company_id).await?;
    let (order_id, is_new) = resolve_order(tx, company_id, &fact.refs).await?;
    sqlx::query(
        "INSERT INTO order_refs (company_id, ref, order_id)
         SELECT $1, r, $3 FROM unnest($2::text[]) AS r
         ON CONFLICT (company_id, ref) DO NOTHING",
    )
    .bind(company_id)
    .bind(&fact.refs)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    // A new order has no sources and no customer yet: the reads that would find them are
    // skipped (most purchases are new orders, and the order worker merges them one by one).
    upsert_source(tx, company_id, order_id, fact, is_new).await?;
    recompute(tx, company_id, order_id, (fact.session_id, is_new), now).await?;
    Ok(order_id)
}

/// Whether the fact names a suppressed (or erased) person by any of its identifiers: the
/// order is then kept for accounting with none of them, so nothing links it to the person.
async fn names_suppressed_person(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    fact: &OrderFact,
) -> Result<bool, sqlx::Error> {
    let mut kinds: Vec<&str> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    if let Some(email) = &fact.email_hash {
        kinds.push("email");
        values.push(email.to_hex());
    }
    if let Some(user) = &fact.user_id {
        kinds.push("user");
        values.push(user.clone());
    }
    if let Some(visitor) = fact.visitor_id {
        kinds.push("visitor");
        values.push(visitor.to_string());
    }
    if kinds.is_empty() {
        return Ok(false);
    }
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM companies c, unnest($2::text[], $3::text[]) AS a(kind, value)
             JOIN suppressions s ON s.company_id = $1 AND s.kind = a.kind
             WHERE c.company_id = $1
               AND s.value = lux_suppression_key(c.hash_key, a.kind, a.value))",
    )
    .bind(company_id)
    .bind(&kinds)
    .bind(&values)
    .fetch_one(&mut **tx)
    .await
}

/// Takes the company's order lock for the caller's transaction. Merging orders and moving
/// them between customers read, then rewrite several rows: one writer at a time per company.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, company_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(orders_lock_key(company_id))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn orders_lock_key(company_id: Uuid) -> i64 {
    let (hi, lo) = company_id.as_u64_pair();
    (hi ^ lo ^ 0x0D3E_5000_0000_0002) as i64
}

/// The order the refs name: an existing one, a merge of several, or a new one (then `true`).
async fn resolve_order(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    refs: &[String],
) -> Result<(Uuid, bool), sqlx::Error> {
    let found: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT order_id FROM order_refs
         WHERE company_id = $1 AND ref = ANY($2) ORDER BY order_id",
    )
    .bind(company_id)
    .bind(refs)
    .fetch_all(&mut **tx)
    .await?;
    let Some((&keep, others)) = found.split_first() else {
        return Ok((Uuid::now_v7(), true));
    };
    for &other in others {
        merge_into(tx, company_id, keep, other).await?;
    }
    Ok((keep, false))
}

/// Moves everything of `other` into `keep` (the older order id) and deletes `other`.
async fn merge_into(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    keep: Uuid,
    other: Uuid,
) -> Result<(), sqlx::Error> {
    for sql in [
        "UPDATE order_refs SET order_id = $2 WHERE company_id = $1 AND order_id = $3",
        // A source that spoke about both keeps its snapshot on `keep`; the other is merged
        // field by field in the recompute that follows.
        "INSERT INTO order_sources
             SELECT company_id, $2, source, status, currency, gross_minor, discount_minor,
                    tax_minor, shipping_minor, refunded_minor, placed_at, source_updated_at,
                    order_number, email_hash, user_id, visitor_id, updated_at
             FROM order_sources WHERE company_id = $1 AND order_id = $3
         ON CONFLICT (company_id, order_id, source) DO UPDATE SET
             gross_minor = coalesce(order_sources.gross_minor, excluded.gross_minor),
             refunded_minor = greatest(order_sources.refunded_minor, excluded.refunded_minor),
             placed_at = least(order_sources.placed_at, excluded.placed_at),
             email_hash = coalesce(order_sources.email_hash, excluded.email_hash),
             user_id = coalesce(order_sources.user_id, excluded.user_id),
             visitor_id = coalesce(order_sources.visitor_id, excluded.visitor_id)",
        "DELETE FROM order_sources WHERE company_id = $1 AND order_id = $3",
        "DELETE FROM orders WHERE company_id = $1 AND order_id = $3",
    ] {
        sqlx::query(sql)
            .bind(company_id)
            .bind(keep)
            .bind(other)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn upsert_source(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    order_id: Uuid,
    f: &OrderFact,
    is_new: bool,
) -> Result<(), sqlx::Error> {
    // Fields a message does not mention keep their earlier value; refunds only grow; a
    // snapshot older than the stored one ($17 false) changes neither status nor amounts, but
    // its links (visitor, email, user) still fill what is missing: a late redelivery of the
    // checkout event must not lose the visitor it names.
    let fresh: Option<bool> = if is_new {
        None
    } else {
        sqlx::query_scalar(
            "SELECT $4::timestamptz IS NULL OR source_updated_at IS NULL OR $4 >= source_updated_at
             FROM order_sources WHERE company_id = $1 AND order_id = $2 AND source = $3",
        )
        .bind(company_id)
        .bind(order_id)
        .bind(f.source.as_str())
        .bind(f.source_updated_at)
        .fetch_optional(&mut **tx)
        .await?
    };
    sqlx::query(
        "INSERT INTO order_sources (company_id, order_id, source, status, currency, gross_minor,
             discount_minor, tax_minor, shipping_minor, refunded_minor, placed_at,
             source_updated_at, order_number, email_hash, user_id, visitor_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (company_id, order_id, source) DO UPDATE SET
             status = CASE WHEN $17 THEN coalesce(excluded.status, order_sources.status)
                           ELSE order_sources.status END,
             currency = coalesce(excluded.currency, order_sources.currency),
             gross_minor = CASE WHEN $17
                 THEN coalesce(excluded.gross_minor, order_sources.gross_minor)
                 ELSE coalesce(order_sources.gross_minor, excluded.gross_minor) END,
             discount_minor = CASE WHEN $17
                 THEN coalesce(excluded.discount_minor, order_sources.discount_minor)
                 ELSE coalesce(order_sources.discount_minor, excluded.discount_minor) END,
             tax_minor = CASE WHEN $17
                 THEN coalesce(excluded.tax_minor, order_sources.tax_minor)
                 ELSE coalesce(order_sources.tax_minor, excluded.tax_minor) END,
             shipping_minor = CASE WHEN $17
                 THEN coalesce(excluded.shipping_minor, order_sources.shipping_minor)
                 ELSE coalesce(order_sources.shipping_minor, excluded.shipping_minor) END,
             refunded_minor = greatest(excluded.refunded_minor, order_sources.refunded_minor),
             placed_at = least(excluded.placed_at, order_sources.placed_at),
             source_updated_at = greatest(excluded.source_updated_at, order_sources.source_updated_at),
             order_number = coalesce(order_sources.order_number, excluded.order_number),
             email_hash = coalesce(excluded.email_hash, order_sources.email_hash),
             user_id = coalesce(excluded.user_id, order_sources.user_id),
             visitor_id = coalesce(excluded.visitor_id, order_sources.visitor_id),
             updated_at = now()",
    )
    .bind(company_id)
    .bind(order_id)
    .bind(f.source.as_str())
    .bind(f.state.map(PaymentState::as_str))
    .bind(f.currency.map(|c| c.code().to_string()))
    .bind(f.gross_minor)
    .bind(f.discount_minor)
    .bind(f.tax_minor)
    .bind(f.shipping_minor)
    .bind(f.refunded_minor)
    .bind(f.placed_at)
    .bind(f.source_updated_at)
    .bind(&f.order_number)
    .bind(f.email_hash.as_ref().map(|h| h.as_bytes().to_vec()))
    .bind(&f.user_id)
    .bind(f.visitor_id)
    .bind(fresh.unwrap_or(true))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    source: String,
    status: Option<String>,
    currency: Option<String>,
    gross_minor: Option<i64>,
    discount_minor: Option<i64>,
    tax_minor: Option<i64>,
    shipping_minor: Option<i64>,
    refunded_minor: Option<i64>,
    placed_at: Option<DateTime<Utc>>,
    order_number: Option<String>,
    email_hash: Option<Vec<u8>>,
    user_id: Option<String>,
    visitor_id: Option<Uuid>,
}

/// The merged view of an order.
#[derive(Debug, PartialEq, Eq)]
pub struct MergedOrder {
    pub status: &'static str,
    pub currency: String,
    pub gross_minor: Option<i64>,
    pub discount_minor: i64,
    pub tax_minor: i64,
    pub shipping_minor: i64,
    pub refunded_minor: i64,
    pub net_minor: Option<i64>,
}

fn merge(rows: &mut [SourceRow], fallback_currency: &str) -> MergedOrder {
    rows.sort_by_key(|r| Source::parse(&r.source).rank());
    let first = |f: fn(&SourceRow) -> Option<i64>| rows.iter().find_map(f);
    let gross = first(|r| r.gross_minor);
    let refunded_reported = rows
        .iter()
        .filter_map(|r| r.refunded_minor)
        .max()
        .unwrap_or(0);
    let state = rows
        .iter()
        .find_map(|r| r.status.as_deref().and_then(PaymentState::parse))
        .unwrap_or(PaymentState::Pending);
    // A source that says "refunded" without the amounts means all of it.
    let refunded = match (state, gross) {
        (PaymentState::Refunded, Some(g)) => refunded_reported.max(g),
        _ => refunded_reported,
    };
    let status = match state {
        PaymentState::Cancelled => "cancelled",
        PaymentState::Failed => "failed",
        PaymentState::Pending if refunded == 0 => "pending",
        _ => match gross {
            Some(g) if refunded >= g && g > 0 => "refunded",
            _ if refunded > 0 => "partially_refunded",
            _ => "paid",
        },
    };
    let net = match status {
        "cancelled" | "failed" => Some(0),
        _ => gross.map(|g| g - refunded),
    };
    MergedOrder {
        status,
        currency: rows
            .iter()
            .find_map(|r| r.currency.clone())
            .unwrap_or_else(|| fallback_currency.to_string()),
        gross_minor: gross,
        discount_minor: first(|r| r.discount_minor).unwrap_or(0),
        tax_minor: first(|r| r.tax_minor).unwrap_or(0),
        shipping_minor: first(|r| r.shipping_minor).unwrap_or(0),
        refunded_minor: refunded,
        net_minor: net,
    }
}

/// Rewrites the `orders` row from its sources, then its customer and first-order flags. An
/// order no source gives a time is placed `now` (the time of receipt, from the clock).
async fn recompute(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    order_id: Uuid,
    (session_hint, is_new): (Option<Uuid>, bool),
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut rows: Vec<SourceRow> = sqlx::query_as(
        "SELECT source, status, currency::text AS currency, gross_minor, discount_minor,
                tax_minor, shipping_minor, refunded_minor, placed_at, order_number,
                email_hash, user_id, visitor_id
         FROM order_sources WHERE company_id = $1 AND order_id = $2",
    )
    .bind(company_id)
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let company_currency: String =
        sqlx::query_scalar("SELECT currency::text FROM companies WHERE company_id = $1")
            .bind(company_id)
            .fetch_one(&mut **tx)
            .await?;
    let merged = merge(&mut rows, &company_currency);
    // Rows are in precedence order now. A verified source (the store, the processor) wins
    // over the browser: anyone holding the public write key could send a purchase event
    // naming someone else's order number.
    let visitor = rows.iter().find_map(|r| r.visitor_id);
    let email = rows.iter().find_map(|r| r.email_hash.clone());
    let user = rows.iter().find_map(|r| r.user_id.clone());
    let verified_time = rows
        .iter()
        .filter(|r| r.source != Source::Event.as_str())
        .filter_map(|r| r.placed_at)
        .min();
    let placed_at = verified_time
        .or_else(|| rows.iter().filter_map(|r| r.placed_at).min())
        .unwrap_or(now);
    let number = rows
        .iter()
        .find_map(|r| r.order_number.clone())
        .unwrap_or_else(|| order_id.to_string());
    let sources: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    let previous_customer: Option<Uuid> = if is_new {
        None
    } else {
        sqlx::query_scalar("SELECT customer_id FROM orders WHERE company_id = $1 AND order_id = $2")
            .bind(company_id)
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?
            .flatten()
    };
    let buyer = Buyer {
        email: email.as_deref(),
        user: user.as_deref(),
        visitor,
    };
    let (customer, created) =
        resolve_customer(tx, company_id, &buyer, previous_customer, placed_at).await?;
    // A customer created for a new order that is revenue has it as their only order: it is
    // their first, and their `first_order_at` (set at creation) is its time. Nothing to
    // refresh (two statements fewer for most guest purchases).
    let sole_first = created && is_new && !matches!(merged.status, "cancelled" | "failed");

    sqlx::query(
        "INSERT INTO orders (company_id, order_id, order_number, status, currency, gross_minor,
             discount_minor, tax_minor, shipping_minor, refunded_minor, net_minor, placed_at,
             email_hash, user_id, visitor_id, session_id, customer_id, sources, is_first_order)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
             coalesce($16, (SELECT s.session_id FROM sessions s
                            WHERE s.company_id = $1 AND s.visitor_id = $15
                              AND s.started_at <= $12
                              AND $12 <= s.last_seen_at + interval '30 minutes'
                            ORDER BY s.started_at DESC LIMIT 1)),
             $17, $18, $19)
         ON CONFLICT (company_id, order_id) DO UPDATE SET
             order_number = excluded.order_number, status = excluded.status,
             currency = excluded.currency, gross_minor = excluded.gross_minor,
             discount_minor = excluded.discount_minor, tax_minor = excluded.tax_minor,
             shipping_minor = excluded.shipping_minor, refunded_minor = excluded.refunded_minor,
             net_minor = excluded.net_minor, placed_at = excluded.placed_at,
             email_hash = excluded.email_hash, user_id = excluded.user_id,
             visitor_id = excluded.visitor_id,
             session_id = coalesce(orders.session_id, excluded.session_id),
             customer_id = excluded.customer_id, sources = excluded.sources, updated_at = now()",
    )
    .bind(company_id)
    .bind(order_id)
    .bind(number)
    .bind(merged.status)
    .bind(&merged.currency)
    .bind(merged.gross_minor)
    .bind(merged.discount_minor)
    .bind(merged.tax_minor)
    .bind(merged.shipping_minor)
    .bind(merged.refunded_minor)
    .bind(merged.net_minor)
    .bind(placed_at)
    .bind(email)
    .bind(user)
    .bind(visitor)
    .bind(session_hint)
    .bind(customer)
    .bind(&sources)
    .bind(sole_first)
    .execute(&mut **tx)
    .await?;

    let to_refresh = customer.filter(|_| !sole_first);
    settle_customers(tx, company_id, to_refresh, previous_customer).await
}

/// After an order moved from `previous` to `customer` (or stayed): the order's customer, and
/// the one it had before if another (an email seen later moves it), may both have a new
/// first order; a guest customer left without orders is deleted.
async fn settle_customers(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    customer: Option<Uuid>,
    previous: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    let mut customers: Vec<Uuid> = customer.into_iter().chain(previous).collect();
    customers.dedup();
    for customer in customers {
        refresh_first_order(tx, company_id, customer).await?;
    }
    if let Some(previous) = previous.filter(|p| Some(*p) != customer) {
        sqlx::query(
            "DELETE FROM customers c WHERE c.company_id = $1 AND c.customer_id = $2
               AND c.email_hash IS NULL AND c.user_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM orders o
                               WHERE o.company_id = $1 AND o.customer_id = $2)",
        )
        .bind(company_id)
        .bind(previous)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Marks the customer's first order: the earliest that is revenue.
async fn refresh_first_order(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    customer: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH first AS (
             SELECT order_id FROM orders
             WHERE company_id = $1 AND customer_id = $2 AND status NOT IN ('cancelled', 'failed')
             ORDER BY placed_at, order_id LIMIT 1)
         UPDATE orders SET is_first_order = (order_id = (SELECT order_id FROM first)),
                           updated_at = now()
         WHERE company_id = $1 AND customer_id = $2
           -- Only the orders whose flag changes: their days' new-customer counts move, and
           -- the rollups job finds them by `updated_at`.
           AND is_first_order IS DISTINCT FROM (order_id = (SELECT order_id FROM first))",
    )
    .bind(company_id)
    .bind(customer)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE customers SET first_order_at = (
             SELECT min(placed_at) FROM orders WHERE company_id = $1 AND customer_id = $2
               AND status NOT IN ('cancelled', 'failed'))
         WHERE company_id = $1 AND customer_id = $2",
    )
    .bind(company_id)
    .bind(customer)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What an order says about its buyer: the keys its sources gave (verified ones first) and
/// the visitor it came from.
struct Buyer<'a> {
    email: Option<&'a [u8]>,
    user: Option<&'a str>,
    visitor: Option<Uuid>,
}

/// What [`resolve_customer`] reads in one statement.
#[derive(sqlx::FromRow)]
struct CustomerLookup {
    /// The keys the customer is looked up by: the order's own, else its visitor's person's
    /// (email hashes first seen first, the person's user id).
    emails: Vec<Vec<u8>>,
    user_id: Option<String>,
    /// The customer those keys name: by email hash first (in that order), else by user id.
    matched: Option<Uuid>,
    /// The customer created for the order's visitor as a guest, and whether it still is one
    /// (has neither an email hash nor a user id).
    by_visitor: Option<Uuid>,
    visitor_is_guest: Option<bool>,
    /// Whether the order's current customer has an email hash or a user id.
    current_identified: Option<bool>,
}

/// The customer of an order, created when new (see docs/decisions.md, "Customers through the
/// identity graph"):
/// - the order's own email hash, else its own user id (what a verified source or a
///   server-side event says) decides, as it always did;
/// - without them, the keys of the person the order's visitor belongs to (the snippet's
///   purchase carries none, the identify before it linked them);
/// - without a person (a guest checkout), the guest customer of the visitor.
///
/// A guest customer learns the keys once known (its visitor identifies, a webhook brings the
/// email) or, when they already have a customer, merges into that one with all its orders.
/// Keys learned through the identity graph never take an order from an identified customer:
/// a device that changes hands (two people logging in on one laptop) leaves the orders
/// placed on it before with the customer they had.
async fn resolve_customer(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    buyer: &Buyer<'_>,
    current: Option<Uuid>,
    placed_at: DateTime<Utc>,
) -> Result<(Option<Uuid>, bool), sqlx::Error> {
    let own = buyer.email.is_some() || buyer.user.is_some();
    if buyer.visitor.is_none() && !own {
        return Ok((current, false));
    }
    let own_emails: Vec<Vec<u8>> = buyer.email.map(|e| vec![e.to_vec()]).unwrap_or_default();
    let found: CustomerLookup = sqlx::query_as(
        "WITH person AS (
             SELECT k.key_kind, k.key_value, k.first_seen_at FROM identity_keys v
             JOIN identity_keys k ON k.company_id = v.company_id AND k.person_id = v.person_id
             WHERE NOT $2 AND v.company_id = $1 AND v.key_kind = 'visitor'
               AND v.key_value = ($5::uuid)::text AND k.key_kind IN ('user', 'email')),
         keys AS (
             SELECT CASE WHEN $2 THEN $3::bytea[]
                         ELSE coalesce((SELECT array_agg(decode(key_value, 'hex')
                                                         ORDER BY first_seen_at, key_value)
                                        FROM person WHERE key_kind = 'email'), '{}')
                    END AS emails,
                    CASE WHEN $2 THEN $4::text
                         ELSE (SELECT min(key_value) FROM person WHERE key_kind = 'user')
                    END AS user_id)
         SELECT keys.emails, keys.user_id,
                (SELECT c.customer_id FROM customers c
                 WHERE c.company_id = $1
                   AND (c.email_hash = ANY(keys.emails) OR c.user_id = keys.user_id)
                 ORDER BY array_position(keys.emails, c.email_hash) NULLS LAST, c.created_at
                 LIMIT 1) AS matched,
                g.customer_id AS by_visitor,
                g.email_hash IS NULL AND g.user_id IS NULL AS visitor_is_guest,
                (SELECT c.email_hash IS NOT NULL OR c.user_id IS NOT NULL FROM customers c
                 WHERE c.company_id = $1 AND c.customer_id = $6) AS current_identified
         FROM keys
         LEFT JOIN customers g ON g.company_id = $1 AND g.visitor_id = $5::uuid",
    )
    .bind(company_id)
    .bind(own)
    .bind(&own_emails)
    .bind(buyer.user)
    .bind(buyer.visitor)
    .bind(current)
    .fetch_one(&mut **tx)
    .await?;

    let identified = !found.emails.is_empty() || found.user_id.is_some();
    if !own && found.current_identified == Some(true) {
        return Ok((current, false));
    }
    if !identified {
        // A guest: the customer it already has, else its visitor's, else a new one.
        if current.is_some() {
            return Ok((current, false));
        }
        if found.by_visitor.is_some() {
            return Ok((found.by_visitor, false));
        }
        let Some(visitor) = buyer.visitor else {
            return Ok((None, false));
        };
        let id = insert_customer(tx, company_id, None, None, Some(visitor), placed_at).await?;
        return Ok((Some(id), true));
    }
    let email = found.emails.first().map(Vec::as_slice);
    let user = found.user_id.as_deref();
    let guest = found
        .by_visitor
        .filter(|_| found.visitor_is_guest == Some(true));
    if let Some(id) = found.matched {
        if user.is_some() {
            // Learn the user id of a customer first known by email (unless taken).
            sqlx::query(
                "UPDATE customers SET user_id = $3 WHERE company_id = $1 AND customer_id = $2
                   AND user_id IS NULL
                   AND NOT EXISTS (SELECT 1 FROM customers WHERE company_id = $1 AND user_id = $3)",
            )
            .bind(company_id)
            .bind(id)
            .bind(user)
            .execute(&mut **tx)
            .await?;
        }
        if let Some(guest) = guest.filter(|g| *g != id) {
            merge_guest(tx, company_id, guest, id, buyer.visitor).await?;
        }
        return Ok((Some(id), false));
    }
    if let Some(guest) = guest {
        // The guest's keys are learned: it is the customer they name from now on. Neither
        // names a customer (`matched` is none), so both are free.
        sqlx::query(
            "UPDATE customers SET email_hash = $3, user_id = $4
             WHERE company_id = $1 AND customer_id = $2",
        )
        .bind(company_id)
        .bind(guest)
        .bind(email)
        .bind(user)
        .execute(&mut **tx)
        .await?;
        return Ok((Some(guest), false));
    }
    // Neither key names a customer, so both are free.
    let id = insert_customer(tx, company_id, email, user, None, placed_at).await?;
    Ok((Some(id), true))
}

async fn insert_customer(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    email: Option<&[u8]>,
    user: Option<&str>,
    visitor: Option<Uuid>,
    placed_at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO customers (company_id, customer_id, email_hash, user_id, visitor_id,
             first_order_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(company_id)
    .bind(id)
    .bind(email)
    .bind(user)
    .bind(visitor)
    .bind(placed_at)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// A guest customer turns out to be `into`: its orders move there (their days' rollups are
/// redone, found by `updated_at`), its visitor too when `into` has none, and it is deleted.
/// The caller refreshes `into`'s first order.
async fn merge_guest(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    guest: Uuid,
    into: Uuid,
    visitor: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET customer_id = $3, updated_at = now()
         WHERE company_id = $1 AND customer_id = $2",
    )
    .bind(company_id)
    .bind(guest)
    .bind(into)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM customers WHERE company_id = $1 AND customer_id = $2")
        .bind(company_id)
        .bind(guest)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE customers SET visitor_id = $3
         WHERE company_id = $1 AND customer_id = $2 AND visitor_id IS NULL",
    )
    .bind(company_id)
    .bind(into)
    .bind(visitor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Gives the orders known only by their visitor (no email hash, no user id of their own)
/// the customer they resolve to now: those of the visitors of `persons`, or every such
/// order without a customer (`None`). Called by the order worker for the persons whose
/// identity keys changed, with the order lock held. Returns how many orders changed customer.
pub async fn reresolve_customers(
    tx: &mut Transaction<'_, Postgres>,
    company_id: Uuid,
    persons: Option<&[Uuid]>,
) -> Result<u64, sqlx::Error> {
    // Orders with an identified customer keep it (see `resolve_customer`): only those
    // without one or with a guest customer can change.
    let orders: Vec<(Uuid, Uuid, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT o.order_id, o.visitor_id, o.customer_id, o.placed_at FROM orders o
         WHERE o.company_id = $1
           AND o.email_hash IS NULL AND o.user_id IS NULL AND o.visitor_id IS NOT NULL
           AND CASE WHEN $2::uuid[] IS NULL THEN o.customer_id IS NULL
                    ELSE o.visitor_id IN (
                        SELECT k.key_value::uuid FROM identity_keys k
                        WHERE k.company_id = $1 AND k.key_kind = 'visitor'
                          AND k.person_id = ANY($2))
                     AND (o.customer_id IS NULL OR EXISTS (
                        SELECT 1 FROM customers c
                        WHERE c.company_id = $1 AND c.customer_id = o.customer_id
                          AND c.email_hash IS NULL AND c.user_id IS NULL))
               END
         ORDER BY o.placed_at, o.order_id",
    )
    .bind(company_id)
    .bind(persons)
    .fetch_all(&mut **tx)
    .await?;
    let mut changed = 0;
    for (order_id, visitor, previous, placed_at) in orders {
        // An earlier order of this round may have merged this one's guest away.
        let previous: Option<Uuid> = match previous {
            None => None,
            Some(_) => {
                sqlx::query_scalar(
                    "SELECT customer_id FROM orders WHERE company_id = $1 AND order_id = $2",
                )
                .bind(company_id)
                .bind(order_id)
                .fetch_one(&mut **tx)
                .await?
            }
        };
        let buyer = Buyer {
            email: None,
            user: None,
            visitor: Some(visitor),
        };
        let (customer, _) = resolve_customer(tx, company_id, &buyer, previous, placed_at).await?;
        if customer == previous {
            continue;
        }
        sqlx::query(
            "UPDATE orders SET customer_id = $3, updated_at = now()
             WHERE company_id = $1 AND order_id = $2",
        )
        .bind(company_id)
        .bind(order_id)
        .bind(customer)
        .execute(&mut **tx)
        .await?;
        settle_customers(tx, company_id, customer, previous).await?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &str, status: &str, gross: Option<i64>, refunded: Option<i64>) -> SourceRow {
        SourceRow {
            source: source.into(),
            status: Some(status.into()),
            currency: Some("USD".into()),
            gross_minor: gross,
            discount_minor: None,
            tax_minor: None,
            shipping_minor: None,
            refunded_minor: refunded,
            placed_at: None,
            order_number: None,
            email_hash: None,
            user_id: None,
            visitor_id: None,
        }
    }

    #[test]
    fn refunds_change_net_and_status() {
        let m = merge(
            &mut [row("woocommerce", "paid", Some(3900), Some(1900))],
            "USD",
        );
        assert_eq!((m.status, m.net_minor), ("partially_refunded", Some(2000)));
        let m = merge(&mut [row("stripe", "paid", Some(100), Some(100))], "USD");
        assert_eq!((m.status, m.net_minor), ("refunded", Some(0)));
        let m = merge(
            &mut [row("woocommerce", "refunded", Some(2935), None)],
            "USD",
        );
        assert_eq!(
            (m.status, m.refunded_minor, m.net_minor),
            ("refunded", 2935, Some(0))
        );
    }

    #[test]
    fn cancelled_and_failed_orders_are_not_revenue() {
        let m = merge(
            &mut [row("woocommerce", "cancelled", Some(5000), None)],
            "USD",
        );
        assert_eq!((m.status, m.net_minor), ("cancelled", Some(0)));
    }

    #[test]
    fn the_platform_wins_over_the_browser_and_refunds_are_not_added_twice() {
        let m = merge(
            &mut [
                row("event", "paid", Some(9999), None),
                row("stripe", "paid", Some(5000), Some(1000)),
                row("woocommerce", "paid", Some(5000), Some(1000)),
            ],
            "USD",
        );
        assert_eq!(
            (m.gross_minor, m.refunded_minor, m.net_minor),
            (Some(5000), 1000, Some(4000))
        );
    }
}
