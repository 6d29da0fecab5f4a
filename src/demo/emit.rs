//! Writing visits out: the raw events of each visit and its session row, and what the
//! purchases, sign-ups and logins among them leave behind (orders, customers, identity
//! links), each the way ingestion and commerce would have written it. Ad spend is added up
//! per day from the paid visits at the end.
//!
//! A visit is written whole, so its session's counters (page views, events, engaged time,
//! last seen) are the sums of the events written just before it.

use std::collections::HashMap;
use std::io::Write as _;

use chrono::DateTime;
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use uuid::Uuid;

use super::catalog::{self, Click, Landing, PRODUCTS, Template};
use super::copy::{CopyBuf, Table};
use super::world::{self, Person, SECOND, Visit, World, flag};
use crate::analytics::sessions::session_id_for;
use crate::analytics::traffic::{ClickIds, LandingParams};
use crate::privacy::EmailHash;

/// Chunks go to the database when a table's buffer reaches this size.
const FLUSH_BYTES: usize = 4 << 20;

/// Share of orders refunded, fully or in part.
const REFUND_RATE: f64 = 0.08;

/// One complete binary COPY stream for a table.
pub struct Chunk {
    pub table: Table,
    pub bytes: Vec<u8>,
}

/// Where chunks go: the database writers (raw events to one, the rest to the other), or
/// nowhere (a dry run that only counts).
pub enum Sink {
    Discard,
    Channels {
        events: tokio::sync::mpsc::Sender<Chunk>,
        rest: tokio::sync::mpsc::Sender<Chunk>,
    },
}

impl Sink {
    fn send(&mut self, chunk: Chunk) -> anyhow::Result<()> {
        let channel = match self {
            Sink::Discard => return Ok(()),
            Sink::Channels { events, .. } if chunk.table == Table::RawEvents => events,
            Sink::Channels { rest, .. } => rest,
        };
        channel
            .blocking_send(chunk)
            .map_err(|_| anyhow::anyhow!("the database writer stopped"))
    }
}

/// What was written.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub persons: u64,
    pub visitors: u64,
    pub bot_visitors: u64,
    pub two_device_persons: u64,
    pub identified_persons: u64,
    pub sessions: u64,
    pub bot_sessions: u64,
    pub events: u64,
    pub page_views: u64,
    pub identity_keys: u64,
    pub orders: u64,
    pub refunded_orders: u64,
    pub partially_refunded_orders: u64,
    pub customers: u64,
    pub repeat_customers: u64,
    pub gross_minor: i64,
    pub net_minor: i64,
    pub spend_rows: u64,
    pub spend_cents: u64,
}

struct Customer {
    id: Uuid,
    email_hash: [u8; 32],
    user_id: Option<String>,
    first_order_at: i64,
    orders: u32,
}

/// Something a visitor does on a page besides viewing it: an event of its own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Login,
    Lead,
    Signup,
    AddToCart,
    BeginCheckout,
    Purchase,
}

struct Page {
    path: String,
    title: String,
    actions: Vec<Action>,
    /// The product shown, for product pages.
    product: Option<usize>,
}

/// A visit's random streams. What decides how many rows a visit writes (engaged-time
/// reports, refunds) draws from streams whose sequence never depends on the landing page or
/// the campaign, which move with the date: the same seed gives the same counts any day.
struct Rngs {
    /// Pages, products, ids.
    layout: Xoshiro256PlusPlus,
    /// Times on the current page; seeded again for each page.
    timing: Xoshiro256PlusPlus,
    /// Coupons, refunds, order ids.
    commerce: Xoshiro256PlusPlus,
}

/// What a visit's events share.
struct VisitContext<'a> {
    session_id: Uuid,
    visitor_id: Uuid,
    user_agent: &'static str,
    ip_hash: [u8; 32],
    is_bot: bool,
    template: &'a Template,
    click: Option<String>,
    message_id: Option<String>,
}

/// The running totals of the session being written.
#[derive(Default)]
struct SessionTotals {
    events: i32,
    page_views: i32,
    engagement_ms: i64,
    last_seen: i64,
}

pub struct Emitter<'w> {
    world: &'w World,
    sink: Sink,
    buffers: Vec<CopyBuf>,
    counts: Counts,
    customers: Vec<Customer>,
    next_order_number: u64,
    /// Paid visits per (local day, template).
    paid_visits: HashMap<(usize, u16), u32>,
}

const TABLES: [Table; 8] = [
    Table::RawEvents,
    Table::Sessions,
    Table::IdentityKeys,
    Table::Orders,
    Table::OrderRefs,
    Table::OrderSources,
    Table::Customers,
    Table::AdSpend,
];

impl<'w> Emitter<'w> {
    pub fn new(world: &'w World, sink: Sink) -> Self {
        Emitter {
            world,
            sink,
            buffers: TABLES
                .iter()
                .map(|t| {
                    let big = matches!(t, Table::RawEvents | Table::Sessions);
                    CopyBuf::new(
                        *t,
                        if big {
                            FLUSH_BYTES + (64 << 10)
                        } else {
                            64 << 10
                        },
                    )
                })
                .collect(),
            counts: Counts::default(),
            customers: Vec::new(),
            next_order_number: 10_001,
            paid_visits: HashMap::new(),
        }
    }

    fn buf(&mut self, table: Table) -> &mut CopyBuf {
        let i = TABLES.iter().position(|t| *t == table).expect("listed");
        &mut self.buffers[i]
    }

    /// Sends a table's rows if its buffer is full enough (or `all`).
    fn flush(&mut self, table: Table, all: bool) -> anyhow::Result<()> {
        let buf = self.buf(table);
        if buf.rows() > 0 && (all || buf.len() >= FLUSH_BYTES) {
            let bytes = buf.take();
            self.sink.send(Chunk { table, bytes })?;
        }
        Ok(())
    }

    /// Writes one visit: its events, then its session.
    pub fn visit(&mut self, person: &Person, visit: &Visit) -> anyhow::Result<()> {
        let mut rngs = Rngs {
            layout: world::rng(visit.seed, 1, 0),
            timing: world::rng(visit.seed, 2, 0),
            commerce: world::rng(visit.seed, 3, 0),
        };
        let rng = &mut rngs.layout;
        let world = self.world;
        let template = &world.templates[visit.template as usize];
        let device = usize::from(visit.device);
        let is_bot = visit.flags & flag::BOT != 0;
        {
            let mut state = person.state.borrow_mut();
            if state.seen == 0 && !is_bot {
                self.counts.persons += 1;
            }
            if state.seen & (1 << device) == 0 {
                state.seen |= 1 << device;
                self.counts.visitors += 1;
                self.counts.bot_visitors += u64::from(is_bot);
                self.counts.two_device_persons += u64::from(device == 1);
            }
        }
        let pages = plan_pages(rng, visit, template, is_bot);
        let click = match template.click {
            Click::None => None,
            Click::Gclid => Some(format!("Cj0KCQiA{}", token(rng, 40))),
            Click::Fbclid => Some(format!("IwAR{}", token(rng, 52))),
        };
        let message_id = template.message.then(|| format!("m_{}", token(rng, 16)));
        let first_event = world::uuid4(rng);
        let context = VisitContext {
            session_id: session_id_for(
                world.company_id,
                first_event,
                DateTime::from_timestamp_micros(visit.start).expect("visits start in range"),
            ),
            visitor_id: person.visitors[device],
            user_agent: if is_bot {
                catalog::BOTS[person.user_agents[device]]
            } else {
                catalog::BROWSERS[person.user_agents[device]].0
            },
            ip_hash: rng.random(),
            is_bot,
            template,
            click,
            message_id,
        };
        let mut totals = SessionTotals::default();
        let mut t = visit.start;
        let mut first_id = Some(first_event);
        let mut cart: Vec<(usize, i64)> = Vec::new();
        let mut landing_url = String::new();
        let mut previous_url: Option<String> = None;
        for (p, page) in pages.iter().enumerate() {
            let url = if p == 0 {
                let mut url = format!("{}{}", catalog::SITE, page.path);
                let mut sep = '?';
                if !template.query.is_empty() {
                    url.push(sep);
                    url.push_str(&template.query);
                    sep = '&';
                }
                if let Some(click) = &context.click {
                    let name = if template.click == Click::Gclid {
                        "gclid"
                    } else {
                        "fbclid"
                    };
                    url.push(sep);
                    url.push_str(&format!("{name}={click}"));
                    sep = '&';
                }
                if let Some(mid) = &context.message_id {
                    url.push(sep);
                    url.push_str(&format!("lux_mid={mid}"));
                }
                landing_url = url.clone();
                url
            } else {
                format!("{}{}", catalog::SITE, page.path)
            };
            let referrer = if p == 0 {
                template.referrer.map(str::to_string)
            } else {
                previous_url.clone()
            };
            let on_landing = p == 0;
            let page_ref = PageRef {
                url: &url,
                referrer: referrer.as_deref(),
                landing: on_landing,
            };
            // The page's times, drawn before anything whose number varies, so that whether
            // engaged time is reported depends on the seed and the page's place only.
            rngs.timing = world::rng(visit.seed, 2, p as u64 + 1);
            let report = rngs.timing.random::<f64>();
            let dwell = if is_bot {
                rngs.timing.random_range(SECOND..6 * SECOND)
            } else if visit.flags & flag::BOUNCE != 0 {
                rngs.timing.random_range(2 * SECOND..60 * SECOND)
            } else {
                // Mostly short looks, now and then a long read.
                5 * SECOND + (115.0 * SECOND as f64 * rngs.timing.random::<f64>().powf(2.5)) as i64
            };
            let engaged = (dwell as f64 * rngs.timing.random_range(0.55..0.95) / 1000.0) as i64;
            let next_page = rngs.timing.random_range(300_000..2_500_000);
            let id = first_id
                .take()
                .unwrap_or_else(|| world::uuid4(&mut rngs.layout));
            let title = page.title.as_str();
            self.event(
                &mut rngs.timing,
                &context,
                &mut totals,
                id,
                "page_view",
                t,
                &page_ref,
                None,
                None,
                |json| {
                    write!(json, r#""title":"{title}""#).expect("vec");
                },
            );
            let mut at = t;
            for action in &page.actions {
                at += rngs
                    .timing
                    .random_range(2 * SECOND..(dwell / 4).max(3 * SECOND));
                self.action(
                    &mut rngs,
                    &context,
                    &mut totals,
                    person,
                    visit,
                    *action,
                    at,
                    &page_ref,
                    page,
                    &mut cart,
                )?;
            }
            let last = p + 1 == pages.len();
            let reported = if last { 0.75 } else { 0.3 };
            if !is_bot && dwell > SECOND && report < reported {
                let at = (t + dwell).max(at + SECOND);
                let id = world::uuid4(&mut rngs.layout);
                totals.engagement_ms += engaged;
                self.event(
                    &mut rngs.timing,
                    &context,
                    &mut totals,
                    id,
                    "engagement",
                    at,
                    &page_ref,
                    None,
                    None,
                    |json| {
                        write!(json, r#""engaged_ms":{engaged}"#).expect("vec");
                    },
                );
            }
            t = (t + dwell).max(totals.last_seen) + next_page;
            previous_url = Some(url);
        }
        self.session_row(visit, &context, &totals, &landing_url)?;
        if template.ad.is_some() {
            let day = world.days.index(visit.start);
            *self.paid_visits.entry((day, visit.template)).or_default() += 1;
        }
        self.counts.sessions += 1;
        self.counts.bot_sessions += u64::from(is_bot);
        self.flush(Table::RawEvents, false)?;
        self.flush(Table::Sessions, false)
    }

    /// Writes one raw event. `props` writes the properties object's members.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
        context: &VisitContext<'_>,
        totals: &mut SessionTotals,
        id: Uuid,
        name: &str,
        t: i64,
        page: &PageRef<'_>,
        user_id: Option<&str>,
        email_hash: Option<&[u8]>,
        props: impl FnOnce(&mut Vec<u8>),
    ) {
        let company = self.world.company_id;
        let received = t + rng.random_range(20_000..1_500_000);
        let landing = page.landing;
        let utm = &context.template.utm;
        fn on_landing(v: &Option<String>, landing: bool) -> Option<&str> {
            v.as_deref().filter(|_| landing)
        }
        let (gclid, fbclid) = match (landing, context.template.click) {
            (true, Click::Gclid) => (context.click.as_deref(), None),
            (true, Click::Fbclid) => (None, context.click.as_deref()),
            _ => (None, None),
        };
        let message_id = context.message_id.as_deref();
        let buf = self.buf(Table::RawEvents);
        buf.row();
        buf.uuid(&company);
        buf.uuid(&id);
        buf.text(name);
        buf.timestamptz(t);
        buf.timestamptz(received);
        buf.uuid(&context.visitor_id);
        buf.uuid(&context.session_id);
        buf.opt_text(user_id);
        buf.opt_bytea(email_hash);
        buf.text(page.url);
        buf.opt_text(page.referrer);
        buf.text(context.user_agent);
        buf.bytea(&context.ip_hash);
        buf.opt_text(on_landing(&utm.source, landing));
        buf.opt_text(on_landing(&utm.medium, landing));
        buf.opt_text(on_landing(&utm.campaign, landing));
        buf.opt_text(on_landing(&utm.term, landing));
        buf.opt_text(on_landing(&utm.content, landing));
        buf.opt_text(gclid);
        buf.opt_text(fbclid);
        buf.bool(true);
        buf.bool(context.is_bot);
        buf.text("write");
        buf.jsonb_with(|json| {
            json.push(b'{');
            let before = json.len();
            props(json);
            // The snippet adds the message id of the link that opened the tab to every event.
            if let Some(mid) = message_id {
                if json.len() > before {
                    json.push(b',');
                }
                write!(json, r#""lux_mid":"{mid}""#).expect("vec");
            }
            json.push(b'}');
        });
        totals.events += 1;
        if name == "page_view" {
            totals.page_views += 1;
            self.counts.page_views += 1;
        }
        totals.last_seen = totals.last_seen.max(t);
        self.counts.events += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn action(
        &mut self,
        rngs: &mut Rngs,
        context: &VisitContext<'_>,
        totals: &mut SessionTotals,
        person: &Person,
        visit: &Visit,
        action: Action,
        t: i64,
        page: &PageRef<'_>,
        shown: &Page,
        cart: &mut Vec<(usize, i64)>,
    ) -> anyhow::Result<()> {
        let id = world::uuid4(&mut rngs.layout);
        let device = usize::from(visit.device);
        let user_id = person.user_id();
        let world = self.world;
        let email_hash = || {
            let hash = EmailHash::of(&world.hash_key, &person.email())
                .expect("synthetic addresses are valid");
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(hash.as_bytes());
            bytes
        };
        let currency = world.currency.as_str();
        match action {
            Action::Login => {
                let method = if rngs.layout.random::<f64>() < 0.7 {
                    "email"
                } else {
                    "google"
                };
                self.event(
                    &mut rngs.timing,
                    context,
                    totals,
                    id,
                    "login",
                    t,
                    page,
                    Some(&user_id),
                    None,
                    |json| {
                        write!(json, r#""method":"{method}""#).expect("vec");
                    },
                );
                self.link(&mut rngs.layout, person, device, t, Some(&user_id), None);
            }
            Action::Lead => {
                let email = email_hash();
                self.event(
                    &mut rngs.timing,
                    context,
                    totals,
                    id,
                    "lead_submit",
                    t,
                    page,
                    None,
                    Some(&email),
                    |json| {
                        json.extend_from_slice(br#""form_id":"newsletter_popup""#);
                    },
                );
                self.link(&mut rngs.layout, person, device, t, None, Some(&email));
            }
            Action::Signup => {
                let email = email_hash();
                let method = if rngs.layout.random::<f64>() < 0.75 {
                    "email"
                } else {
                    "google"
                };
                self.event(
                    &mut rngs.timing,
                    context,
                    totals,
                    id,
                    "signup",
                    t,
                    page,
                    Some(&user_id),
                    Some(&email),
                    |json| {
                        write!(json, r#""method":"{method}""#).expect("vec");
                    },
                );
                self.link(
                    &mut rngs.layout,
                    person,
                    device,
                    t,
                    Some(&user_id),
                    Some(&email),
                );
            }
            Action::AddToCart => {
                let product = shown.product.unwrap_or(0);
                let quantity = if rngs.layout.random::<f64>() < 0.1 {
                    2
                } else {
                    1
                };
                cart.push((product, quantity));
                // Now and then a second item, added from the same page.
                if rngs.layout.random::<f64>() < 0.3 {
                    let other = rngs.layout.random_range(0..PRODUCTS.len());
                    if other != product {
                        cart.push((other, 1));
                    }
                }
                let items = cart.clone();
                let value: i64 = items
                    .iter()
                    .map(|(p, q)| PRODUCTS[*p].price_cents * q)
                    .sum();
                self.event(
                    &mut rngs.timing,
                    context,
                    totals,
                    id,
                    "add_to_cart",
                    t,
                    page,
                    None,
                    None,
                    |json| {
                        write_items(json, &items);
                        write!(
                            json,
                            r#","value":"{}","currency":"{currency}""#,
                            money(value)
                        )
                        .expect("vec");
                    },
                );
            }
            Action::BeginCheckout => {
                let value: i64 = cart.iter().map(|(p, q)| PRODUCTS[*p].price_cents * q).sum();
                self.event(
                    &mut rngs.timing,
                    context,
                    totals,
                    id,
                    "begin_checkout",
                    t,
                    page,
                    None,
                    None,
                    |json| {
                        write!(
                            json,
                            r#""value":"{}","currency":"{currency}""#,
                            money(value)
                        )
                        .expect("vec");
                    },
                );
            }
            Action::Purchase => {
                let subtotal: i64 = cart.iter().map(|(p, q)| PRODUCTS[*p].price_cents * q).sum();
                let coupon = rngs.commerce.random::<f64>() < 0.15;
                let discount = if coupon { subtotal / 10 } else { 0 };
                let tax = ((subtotal - discount) as f64 * 0.07).round() as i64;
                let shipping = if subtotal >= 7_500 { 0 } else { 695 };
                let gross = subtotal - discount + tax + shipping;
                let number = self.next_order_number.to_string();
                self.next_order_number += 1;
                let email = email_hash();
                let user = (visit.flags & flag::ACCOUNT != 0).then_some(user_id.as_str());
                let items = cart.clone();
                self.event(&mut rngs.timing, context, totals, id, "purchase", t, page, user, Some(&email), |json| {
                    write!(
                        json,
                        r#""order_id":"{number}","value":"{}","currency":"{currency}","tax":"{}","shipping":"{}","#,
                        money(gross),
                        money(tax),
                        money(shipping)
                    )
                    .expect("vec");
                    if coupon {
                        write!(json, r#""coupon":"WELCOME10","discount":"{}","#, money(discount)).expect("vec");
                    }
                    write_items(json, &items);
                });
                self.link(&mut rngs.layout, person, device, t, user, Some(&email));
                let order = NewOrder {
                    number,
                    placed_at: t,
                    gross,
                    discount: coupon.then_some(discount),
                    tax,
                    shipping,
                    email_hash: email,
                    user_id: user.map(str::to_string),
                    visitor_id: context.visitor_id,
                    session_id: context.session_id,
                };
                self.order(&mut rngs.commerce, person, &order)?;
            }
        }
        Ok(())
    }

    /// Links the visitor (and the user id and email given) to the person, as ingestion does
    /// for `signup`, `login`, `lead_submit` and `purchase`: each key is written the first
    /// time it is seen, with that time.
    fn link(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
        person: &Person,
        device: usize,
        t: i64,
        user_id: Option<&str>,
        email_hash: Option<&[u8; 32]>,
    ) {
        let mut state = person.state.borrow_mut();
        let person_id = match state.person_id {
            Some(id) => id,
            None => {
                let id = world::uuid7(t, rng);
                state.person_id = Some(id);
                self.counts.identified_persons += 1;
                id
            }
        };
        let visitor = person.visitors[device].to_string();
        let email_hex = email_hash.map(hex::encode);
        let keys = [
            (1u8 << device, "visitor", Some(visitor.as_str())),
            (1 << 2, "user", user_id),
            (1 << 3, "email", email_hex.as_deref()),
        ];
        let company = self.world.company_id;
        for (bit, kind, value) in keys {
            let Some(value) = value else { continue };
            if state.linked & bit != 0 {
                continue;
            }
            state.linked |= bit;
            self.counts.identity_keys += 1;
            let buf = self.buf(Table::IdentityKeys);
            buf.row();
            buf.uuid(&company);
            buf.text(kind);
            buf.text(value);
            buf.uuid(&person_id);
            buf.timestamptz(t);
        }
    }

    /// The order of a purchase event, as commerce merges it: an `event` source, the
    /// `order:NUMBER` ref, the customer (by email hash) and its first-order flag. A refunded
    /// order also has what Stripe's `charge.refunded` (with `metadata.order_id`) would add:
    /// a `stripe` source with the refund, and the charge and payment intent refs.
    fn order(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
        person: &Person,
        o: &NewOrder,
    ) -> anyhow::Result<()> {
        let company = self.world.company_id;
        let end = self.world.end;
        let order_id = world::uuid7(o.placed_at, rng);
        let refund = (rng.random::<f64>() < REFUND_RATE).then(|| {
            let full = rng.random::<f64>() < 0.55;
            let amount = if full {
                o.gross
            } else {
                ((o.gross as f64) * rng.random_range(0.2..0.5)).round() as i64
            };
            let after = rng.random_range(SECOND * 3600..14 * world::DAY);
            let at = o.placed_at
                + after.min(((end - o.placed_at) as f64 * rng.random_range(0.3..0.9)) as i64);
            let payment = format!("pi_3{}", token(rng, 21));
            let charge = format!("ch_3{}", token(rng, 21));
            (amount, at, payment, charge)
        });
        // Stripe times are whole seconds; its charge is the verified time of the order.
        let placed_at = match &refund {
            Some(_) => o.placed_at - o.placed_at.rem_euclid(SECOND),
            None => o.placed_at,
        };

        let (customer, first) = {
            let mut state = person.state.borrow_mut();
            match state.customer {
                Some(c) => (c, false),
                None => {
                    self.customers.push(Customer {
                        id: world::uuid7(placed_at, rng),
                        email_hash: o.email_hash,
                        user_id: None,
                        first_order_at: placed_at,
                        orders: 0,
                    });
                    state.customer = Some(self.customers.len() - 1);
                    (self.customers.len() - 1, true)
                }
            }
        };
        let customer = &mut self.customers[customer];
        customer.orders += 1;
        if customer.user_id.is_none() {
            customer.user_id = o.user_id.clone();
        }
        let customer_id = customer.id;

        let refunded = refund.as_ref().map_or(0, |r| r.0);
        let status = match refunded {
            0 => "paid",
            r if r >= o.gross => "refunded",
            _ => "partially_refunded",
        };
        self.counts.orders += 1;
        self.counts.refunded_orders += u64::from(status == "refunded");
        self.counts.partially_refunded_orders += u64::from(status == "partially_refunded");
        self.counts.gross_minor += o.gross;
        self.counts.net_minor += o.gross - refunded;
        let currency = self.world.currency.clone();
        let sources: &[&str] = if refund.is_some() {
            &["stripe", "event"]
        } else {
            &["event"]
        };

        let buf = self.buf(Table::Orders);
        buf.row();
        buf.uuid(&company);
        buf.uuid(&order_id);
        buf.text(&o.number);
        buf.text(status);
        buf.text(&currency);
        buf.int8(o.gross);
        buf.int8(o.discount.unwrap_or(0));
        buf.int8(o.tax);
        buf.int8(o.shipping);
        buf.int8(refunded);
        buf.int8(o.gross - refunded);
        buf.timestamptz(placed_at);
        buf.bytea(&o.email_hash);
        buf.opt_text(o.user_id.as_deref());
        buf.uuid(&o.visitor_id);
        buf.uuid(&o.session_id);
        buf.uuid(&customer_id);
        buf.bool(first);
        buf.text_array(sources);

        let buf = self.buf(Table::OrderSources);
        buf.row();
        buf.uuid(&company);
        buf.uuid(&order_id);
        buf.text("event");
        buf.text("paid");
        buf.text(&currency);
        buf.int8(o.gross);
        buf.opt_int8(o.discount);
        buf.int8(o.tax);
        buf.int8(o.shipping);
        buf.null();
        buf.timestamptz(o.placed_at);
        buf.null();
        buf.text(&o.number);
        buf.bytea(&o.email_hash);
        buf.opt_text(o.user_id.as_deref());
        buf.uuid(&o.visitor_id);
        if let Some((amount, at, _, _)) = &refund {
            let buf = self.buf(Table::OrderSources);
            buf.row();
            buf.uuid(&company);
            buf.uuid(&order_id);
            buf.text("stripe");
            buf.text("paid");
            buf.text(&currency);
            buf.int8(o.gross);
            buf.null();
            buf.null();
            buf.null();
            buf.int8(*amount);
            buf.timestamptz(placed_at);
            buf.timestamptz(at - at.rem_euclid(SECOND));
            buf.text(&o.number);
            buf.bytea(&o.email_hash);
            buf.null();
            buf.null();
        }

        let mut refs = vec![format!("order:{}", o.number)];
        if let Some((_, _, payment, charge)) = &refund {
            refs.push(format!("stripe:{charge}"));
            refs.push(format!("stripe:{payment}"));
        }
        let buf = self.buf(Table::OrderRefs);
        for r in &refs {
            buf.row();
            buf.uuid(&company);
            buf.text(r);
            buf.uuid(&order_id);
        }
        for table in [
            Table::Orders,
            Table::OrderSources,
            Table::OrderRefs,
            Table::IdentityKeys,
        ] {
            self.flush(table, false)?;
        }
        Ok(())
    }

    fn session_row(
        &mut self,
        visit: &Visit,
        context: &VisitContext<'_>,
        totals: &SessionTotals,
        landing_url: &str,
    ) -> anyhow::Result<()> {
        let template = context.template;
        let company = self.world.company_id;
        let click_ids = ClickIds {
            gclid: context
                .click
                .clone()
                .filter(|_| template.click == Click::Gclid),
            fbclid: context
                .click
                .clone()
                .filter(|_| template.click == Click::Fbclid),
            ..ClickIds::default()
        };
        let landing = LandingParams {
            utm: template.utm.clone(),
            click_ids,
            message_id: context.message_id.clone(),
        };
        let traffic = &template.traffic;
        let buf = self.buf(Table::Sessions);
        buf.row();
        buf.uuid(&company);
        buf.uuid(&context.session_id);
        buf.uuid(&context.visitor_id);
        buf.timestamptz(visit.start);
        buf.timestamptz(totals.last_seen);
        buf.text(landing_url);
        buf.opt_text(template.referrer);
        buf.text(&traffic.source);
        buf.text(&traffic.medium);
        buf.opt_text(traffic.campaign.as_deref());
        buf.text(traffic.channel.as_str());
        buf.opt_text(landing.utm.source.as_deref());
        buf.opt_text(landing.utm.medium.as_deref());
        buf.opt_text(landing.utm.campaign.as_deref());
        buf.opt_text(landing.utm.term.as_deref());
        buf.opt_text(landing.utm.content.as_deref());
        buf.opt_text(landing.click_ids.gclid.as_deref());
        buf.opt_text(landing.click_ids.fbclid.as_deref());
        buf.opt_text(landing.message_id.as_deref());
        buf.opt_text(landing.campaign_key().as_deref());
        buf.int4(totals.page_views);
        buf.int4(totals.events);
        buf.int8(totals.engagement_ms);
        buf.bool(context.is_bot);
        Ok(())
    }

    /// Writes the customers and the ad spend, sends what is left, and returns the counts.
    pub fn finish(mut self) -> anyhow::Result<Counts> {
        let company = self.world.company_id;
        let currency = self.world.currency.clone();
        let customers = std::mem::take(&mut self.customers);
        for c in &customers {
            self.counts.customers += 1;
            self.counts.repeat_customers += u64::from(c.orders >= 2);
            let buf = self.buf(Table::Customers);
            buf.row();
            buf.uuid(&company);
            buf.uuid(&c.id);
            buf.bytea(&c.email_hash);
            buf.opt_text(c.user_id.as_deref());
            buf.timestamptz(c.first_order_at);
        }
        self.ad_spend(&currency)?;
        for table in TABLES {
            self.flush(table, true)?;
        }
        Ok(self.counts)
    }

    /// One row per paid campaign (Google) or ad (Meta) and local day it ran: clicks a little
    /// above the visits that arrived (some clicks never load the page), impressions from a
    /// click-through rate, spend from a cost per click.
    fn ad_spend(&mut self, currency: &str) -> anyhow::Result<()> {
        let world = self.world;
        let mut rng = world::rng(world.seed, 0x0053_5045_4e44, 0);
        let first = world.days.index(world.start);
        let last = world.days.index(world.end - 1);
        for (i, template) in world.templates.iter().enumerate() {
            let Some(ad) = &template.ad else { continue };
            for day in first..=last {
                let (from, to) = (world.days.midnights[day], world.days.midnights[day + 1]);
                let (from, to) = (from.max(world.start), to.min(world.end));
                if !(template.active.0 < to && from < template.active.1) {
                    continue;
                }
                let visits = self.paid_visits.get(&(day, i as u16)).copied().unwrap_or(0);
                let clicks = (f64::from(visits) * rng.random_range(1.05..1.25)).round() as u64
                    + rng.random_range(0..3);
                let ctr = rng.random_range(ad.ctr.0..ad.ctr.1);
                let impressions = ((clicks.max(1) as f64) / ctr).round() as u64;
                let mut cpc = rng.random_range(ad.cpc.0..ad.cpc.1);
                // The story the alerts tell (SPEC §8.4, `cpa_wow`): in the last complete week
                // Meta's auction got dearer (a competitor's holiday push), so paid social buys
                // the same clicks for 60 % more. Applied after the draw: the random streams,
                // and with them every other count of a seed, stay as they were.
                if ad.platform == "meta_ads" && day < last && day + 7 >= last {
                    cpc *= 1.6;
                }
                let cents = (clicks as f64 * cpc * 100.0).round() as u64;
                self.counts.spend_rows += 1;
                self.counts.spend_cents += cents;
                let date = world.days.dates[day];
                let buf = self.buf(Table::AdSpend);
                buf.row();
                buf.uuid(&world.company_id);
                buf.date(date);
                buf.text(ad.platform);
                buf.opt_text(template.utm.campaign.as_deref());
                buf.text(if ad.platform == "meta_ads" {
                    template.utm.content.as_deref().unwrap_or("")
                } else {
                    ""
                });
                buf.text(template.traffic.channel.as_str());
                buf.text(&template.traffic.source);
                buf.text(&template.traffic.medium);
                buf.text(currency);
                buf.numeric_cents(cents);
                buf.int8(impressions as i64);
                buf.int8(clicks as i64);
            }
        }
        Ok(())
    }
}

struct PageRef<'a> {
    url: &'a str,
    referrer: Option<&'a str>,
    /// The landing page: its events carry the visit's UTM values and click id.
    landing: bool,
}

struct NewOrder {
    number: String,
    placed_at: i64,
    gross: i64,
    discount: Option<i64>,
    tax: i64,
    shipping: i64,
    email_hash: [u8; 32],
    user_id: Option<String>,
    visitor_id: Uuid,
    session_id: Uuid,
}

/// The pages of a visit, and what happens on each.
fn plan_pages(
    rng: &mut Xoshiro256PlusPlus,
    visit: &Visit,
    template: &Template,
    is_bot: bool,
) -> Vec<Page> {
    let f = |bit: u16| visit.flags & bit != 0;
    let mut pages = Vec::with_capacity(usize::from(visit.pages) + 4);
    let landing = if is_bot {
        Landing::Any
    } else {
        template.landing
    };
    pages.push(page_for(rng, landing));
    if f(flag::LOGIN) {
        pages.push(fixed("/account/login", "Sign in", Action::Login));
    }
    for _ in 1..visit.pages {
        let next = if rng.random::<f64>() < 0.6 {
            Landing::Product(rng.random_range(0..PRODUCTS.len()))
        } else {
            Landing::Collection(rng.random_range(0..catalog::COLLECTIONS.len()))
        };
        pages.push(page_for(rng, next));
    }
    if f(flag::CART) && !pages.iter().any(|p| p.product.is_some()) {
        // Something to put in the cart: the last page browsed shows a product. (Replaced,
        // not added: the number of pages stays what the plan says.)
        let product = rng.random_range(0..PRODUCTS.len());
        *pages.last_mut().expect("a landing page") = page_for(rng, Landing::Product(product));
    }
    if f(flag::LEAD) {
        // The newsletter pop-up, on one of the pages browsed.
        let i = rng.random_range(0..pages.len());
        pages[i].actions.push(Action::Lead);
    }
    if f(flag::SIGNUP) {
        pages.push(fixed(
            "/account/signup",
            "Create an account",
            Action::Signup,
        ));
    }
    if f(flag::CART) {
        let shown = pages
            .iter()
            .rposition(|p| p.product.is_some())
            .expect("a product page");
        pages[shown].actions.push(Action::AddToCart);
        pages.push(Page {
            path: "/cart".into(),
            title: "Your cart – Northwind Outfitters".into(),
            actions: Vec::new(),
            product: None,
        });
    }
    if f(flag::CHECKOUT) {
        let mut checkout = fixed("/checkout", "Checkout", Action::BeginCheckout);
        if f(flag::SIGNUP_AT_CHECKOUT) {
            checkout.actions.push(Action::Signup);
        }
        pages.push(checkout);
    }
    if f(flag::PURCHASE) {
        pages.push(fixed(
            "/checkout/thank-you",
            "Thank you for your order",
            Action::Purchase,
        ));
    }
    pages
}

fn fixed(path: &str, title: &str, action: Action) -> Page {
    Page {
        path: path.into(),
        title: format!("{title} – Northwind Outfitters"),
        actions: vec![action],
        product: None,
    }
}

fn page_for(rng: &mut Xoshiro256PlusPlus, landing: Landing) -> Page {
    let landing = match landing {
        Landing::Any => match rng.random_range(0..10) {
            0..2 => Landing::Home,
            2..5 => Landing::Collection(rng.random_range(0..catalog::COLLECTIONS.len())),
            5..8 => Landing::Product(rng.random_range(0..PRODUCTS.len())),
            _ => {
                let post = catalog::BLOG_POSTS[rng.random_range(0..catalog::BLOG_POSTS.len())];
                return Page {
                    path: format!("/blog/{post}"),
                    title: format!("{} – Northwind Journal", post.replace('-', " ")),
                    actions: Vec::new(),
                    product: None,
                };
            }
        },
        other => other,
    };
    match landing {
        Landing::Product(i) => Page {
            path: format!("/products/{}", PRODUCTS[i].slug),
            title: format!("{} – Northwind Outfitters", PRODUCTS[i].name),
            actions: Vec::new(),
            product: Some(i),
        },
        Landing::Collection(i) => Page {
            path: format!("/collections/{}", catalog::COLLECTIONS[i].0),
            title: format!("{} – Northwind Outfitters", catalog::COLLECTIONS[i].1),
            actions: Vec::new(),
            product: None,
        },
        _ => Page {
            path: "/".into(),
            title: "Northwind Outfitters – Gear for wet trails".into(),
            actions: Vec::new(),
            product: None,
        },
    }
}

fn write_items(json: &mut Vec<u8>, items: &[(usize, i64)]) {
    json.extend_from_slice(br#""items":["#);
    for (i, (p, quantity)) in items.iter().enumerate() {
        let p = &PRODUCTS[*p];
        if i > 0 {
            json.push(b',');
        }
        write!(
            json,
            r#"{{"sku":"{}","name":"{}","quantity":{quantity},"price":"{}"}}"#,
            p.sku,
            p.name,
            money(p.price_cents)
        )
        .expect("vec");
    }
    json.push(b']');
}

/// Cents as a decimal string: `1234` → `"12.34"`.
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Random letters and digits, the look of ad-platform ids.
fn token(rng: &mut Xoshiro256PlusPlus, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::world::DAY;

    /// The campaign a visit comes from depends on the date (campaigns start and stop), so
    /// for the same seed to give the same counts any day, what a visit writes must not
    /// depend on it.
    #[test]
    fn how_much_a_visit_writes_does_not_depend_on_its_campaign() {
        let end = 1_790_000_000_000_000;
        let tz = chrono_tz::America::New_York;
        let world = World::new(Uuid::nil(), "USD".into(), vec![7; 32], tz, 1, 30, end);
        let plans = [
            flag::BOUNCE,
            0,
            flag::CART,
            flag::CART | flag::CHECKOUT,
            flag::CART | flag::CHECKOUT | flag::PURCHASE,
            flag::LEAD | flag::SIGNUP,
            flag::LOGIN | flag::CART | flag::CHECKOUT | flag::PURCHASE | flag::ACCOUNT,
            flag::CART | flag::CHECKOUT | flag::PURCHASE | flag::SIGNUP_AT_CHECKOUT | flag::ACCOUNT,
        ];
        for seed in 0..25u64 {
            for flags in plans {
                let mut first = None;
                for template in 0..world.templates.len() {
                    let person = Person {
                        index: 1,
                        visitors: [Uuid::from_u128(1), Uuid::from_u128(2)],
                        user_agents: [0, 0],
                        state: Default::default(),
                    };
                    let visit = Visit {
                        start: end - DAY,
                        device: 0,
                        template: template as u16,
                        pages: if flags & flag::BOUNCE != 0 {
                            1
                        } else {
                            2 + (seed % 5) as u8
                        },
                        flags,
                        seed,
                    };
                    let mut emitter = Emitter::new(&world, Sink::Discard);
                    emitter.visit(&person, &visit).unwrap();
                    let c = &emitter.counts;
                    let written = (
                        c.events,
                        c.page_views,
                        c.identity_keys,
                        c.orders,
                        c.refunded_orders + c.partially_refunded_orders,
                    );
                    assert_eq!(
                        *first.get_or_insert(written),
                        written,
                        "seed {seed}, flags {flags:#b}, template {}",
                        world.templates[template].query
                    );
                }
            }
        }
    }

    #[test]
    fn money_is_a_decimal_string() {
        assert_eq!(money(1234), "12.34");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(0), "0.00");
    }
}
