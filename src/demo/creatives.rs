//! The demo's creative library: the catalog of its Meta ads (each ad id is the `utm_content`
//! of its visits and the `ad_id` of its spend rows) over three concepts and four angles, and
//! two ads whose delivery tells a story the fatigue job finds:
//!
//! - [`FATIGUING`] (the fall launch's hero video): impressions rise every day while its CTR
//!   decays by 3 % a day from 2 %, the way an ad shown more and more to the same people wears
//!   out: `fatigued` once its second week is in;
//! - [`FRESH`] (a prospecting UGC ad): steady impressions at a steady 1.2 % CTR: `fresh`.
//!
//! Written in SQL once the visits and spend are committed, as the owner, in one transaction.
//! Clicks are only ever raised (never below the visits the ad brought, as the spend rows of
//! every ad are); impressions follow the story. Random draws are hashes of the day, so the
//! same visits give the same numbers.

use sqlx::PgPool;
use uuid::Uuid;

/// The ad that fatigues.
pub const FATIGUING: &str = "120210000000201";
/// The ad that stays fresh.
pub const FRESH: &str = "120210000000101";

/// (ad id, name, format, concept, angle) of every Meta ad of the demo's traffic.
const LIBRARY: [(&str, &str, &str, &str, &str); 7] = [
    (
        FRESH,
        "Trail boots: customer unboxing",
        "video",
        "ugc",
        "social_proof",
    ),
    (
        "120210000000102",
        "Rain jacket storm test",
        "video",
        "product_demo",
        "quality",
    ),
    (
        "120210000000103",
        "Campfire evening",
        "image",
        "lifestyle",
        "quality",
    ),
    (
        "120210000000301",
        "Free returns, 60 days",
        "image",
        "ugc",
        "price",
    ),
    (
        "120210000000302",
        "Reviews carousel",
        "carousel",
        "ugc",
        "social_proof",
    ),
    (
        FATIGUING,
        "Fall launch hero video",
        "video",
        "lifestyle",
        "urgency",
    ),
    (
        "120210000000202",
        "Fall launch: first-week price",
        "image",
        "product_demo",
        "price",
    ),
];

/// Writes the catalog (launch day: each ad's first spend day) and reshapes the two story
/// ads' delivery. Returns the creatives written.
pub async fn generate(owner: &PgPool, company_id: Uuid) -> Result<u64, sqlx::Error> {
    let mut tx = owner.begin().await?;
    let written = sqlx::query(
        "INSERT INTO creatives (company_id, creative_id, name, platform, campaign, concept,
             angle, format, launched_on)
         SELECT $1, l.id, l.name, 'meta_ads', a.campaign, l.concept, l.angle, l.format, a.first
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
              AS l(id, name, format, concept, angle)
         JOIN (SELECT ad_id, min(campaign) AS campaign, min(day) AS first FROM ad_spend
               WHERE company_id = $1 AND platform = 'meta_ads' GROUP BY ad_id) a
           ON a.ad_id = l.id
         ON CONFLICT (company_id, creative_id) DO NOTHING",
    )
    .bind(company_id)
    .bind(LIBRARY.map(|c| c.0))
    .bind(LIBRARY.map(|c| c.1))
    .bind(LIBRARY.map(|c| c.2))
    .bind(LIBRARY.map(|c| c.3))
    .bind(LIBRARY.map(|c| c.4))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Day k of the ad's life (k = 0 on its first spend day); noise of ±5 % from the day.
    // Fatiguing: 3,000 + 150·k impressions at 2 % × 0.97^k. Fresh: about 5,000 at 1.2 %.
    sqlx::query(
        "WITH days AS (
             SELECT ad_id, day, clicks,
                    day - min(day) OVER (PARTITION BY ad_id) AS k,
                    0.95 + 0.1 * (hashtext(ad_id || day::text) & 65535) / 65536.0 AS noise
             FROM ad_spend
             WHERE company_id = $1 AND platform = 'meta_ads' AND ad_id IN ($2, $3)),
         shaped AS (
             SELECT ad_id, day, clicks,
                    CASE WHEN ad_id = $2 THEN round((3000 + 150 * k) * noise)
                         ELSE round(5000 * noise) END AS impressions,
                    CASE WHEN ad_id = $2 THEN 0.02 * power(0.97, k) ELSE 0.012 END AS ctr
             FROM days)
         UPDATE ad_spend a
            SET impressions = s.impressions,
                clicks = greatest(a.clicks, round(s.impressions * s.ctr)::bigint)
           FROM shaped s
          WHERE a.company_id = $1 AND a.platform = 'meta_ads' AND a.ad_id = s.ad_id
            AND a.day = s.day",
    )
    .bind(company_id)
    .bind(FATIGUING)
    .bind(FRESH)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(written)
}
