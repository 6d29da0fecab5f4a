//! Id locality benchmark: `cargo bench --bench id_locality [-- --existing 6000000 --rows 200000]`.
//!
//! Why the snippet sends UUIDv7 event ids and session ids lead with their start time: every
//! stored event adds an entry to the idempotency index `event_ids (company_id, event_id)`,
//! which holds every event ever received and soon outgrows memory. With random (v4) ids each
//! insert lands on a random leaf page: read it into shared buffers, dirty it, and after each
//! checkpoint write it whole into the WAL again. With time-ordered (v7) ids the inserts all
//! land at the right edge, on a few pages that stay in memory.
//!
//! On a fresh database (a new one on `DATABASE_URL`'s server, else a private cluster at
//! PostgreSQL's default durability) it fills two tables shaped like `event_ids` with
//! `--existing` ids each, one with time-ordered ids and one with random ids (the steady state
//! of each kind), then inserts `--rows` more of the same kind into each, in batches of
//! `--batch`, one transaction each, with the writer's own statement; the runs alternate and
//! each starts after a checkpoint. It prints rows/s, the index pages read from outside shared
//! buffers and the WAL written per row. Figures, not assertions.

use std::time::Instant;

use sqlx::{Connection as _, PgConnection, PgPool};
use uuid::Uuid;

mod common;
use common::{flag, fresh_database};

struct Args {
    existing: u64,
    rows: usize,
    batch: usize,
}

fn args() -> Args {
    Args {
        existing: flag("--existing", 6_000_000),
        rows: flag("--rows", 200_000),
        batch: flag("--batch", 1_000usize).max(1),
    }
}

/// What the database did during one run.
#[derive(Clone, Copy)]
struct Counters {
    index_reads: i64,
    wal_bytes: f64,
    wal_full_pages: i64,
}

async fn counters(pool: &PgPool, table: &str) -> Counters {
    let (index_reads,): (i64,) = sqlx::query_as(
        "SELECT coalesce(idx_blks_read, 0) FROM pg_statio_user_indexes
         WHERE indexrelname = $1 || '_pkey'",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .expect("index statistics");
    let (wal_bytes, wal_full_pages): (f64, i64) =
        sqlx::query_as("SELECT wal_bytes::float8, wal_fpi FROM pg_stat_wal")
            .fetch_one(pool)
            .await
            .expect("WAL statistics");
    Counters {
        index_reads,
        wal_bytes,
        wal_full_pages,
    }
}

fn table(v7: bool) -> &'static str {
    if v7 { "ids_ordered" } else { "ids_random" }
}

async fn insert_run(conn: &mut PgConnection, company: Uuid, args: &Args, v7: bool) {
    let mut rows = 0;
    while rows < args.rows {
        let mut ids: Vec<Uuid> = (0..args.batch)
            .map(|_| if v7 { Uuid::now_v7() } else { Uuid::new_v4() })
            .collect();
        let received = vec![chrono::Utc::now(); ids.len()];
        let mut tx = conn.begin().await.expect("begin");
        // The writer's statement (`claim_event_ids`), ids sorted as it sorts them.
        ids.sort_unstable();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (company_id, event_id, received_at)
             SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[])
             ON CONFLICT (company_id, event_id) DO NOTHING
             RETURNING event_id",
            table(v7)
        )))
        .bind(company)
        .bind(&ids)
        .bind(&received)
        .fetch_all(&mut *tx)
        .await
        .expect("insert");
        tx.commit().await.expect("commit");
        rows += args.batch;
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (url, cluster) = fresh_database().await;
        let pool = PgPool::connect(&url).await.expect("connect");
        let company = Uuid::now_v7();
        let started = Instant::now();
        for v7 in [true, false] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {} (company_id uuid NOT NULL, event_id uuid NOT NULL,
                     received_at timestamptz NOT NULL, PRIMARY KEY (company_id, event_id))",
                table(v7)
            )))
            .execute(&pool)
            .await
            .expect("table");
            // The past: one id per millisecond before now, as v7 ids would be, or random ids.
            let id = if v7 {
                "(lpad(to_hex((extract(epoch FROM now()) * 1000)::int8 - $2 + i), 12, '0')
                  || '7' || substr(md5(i::text), 1, 3) || '8' || substr(md5(i::text), 4, 15))::uuid"
            } else {
                "gen_random_uuid()"
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {} SELECT $1, {id}, now() FROM generate_series(1, $2) AS i",
                table(v7)
            )))
            .bind(company)
            .bind(args.existing as i64)
            .execute(&pool)
            .await
            .expect("existing ids");
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {}", table(v7))))
                .execute(&pool)
                .await
                .expect("vacuum");
        }
        let (ordered_size, random_size, shared_buffers): (String, String, String) = sqlx::query_as(
            "SELECT pg_size_pretty(pg_relation_size('ids_ordered_pkey')),
                        pg_size_pretty(pg_relation_size('ids_random_pkey')),
                        current_setting('shared_buffers')",
        )
        .fetch_one(&pool)
        .await
        .expect("sizes");
        println!(
            "id locality: {} existing ids per kind, loaded in {:.0} s; indexes {ordered_size} \
             (ordered) and {random_size} (random); shared_buffers {shared_buffers}",
            args.existing,
            started.elapsed().as_secs_f64()
        );
        println!(
            "\n{:<14} {:>10} {:>18} {:>14} {:>20}",
            "ids", "rows/s", "index pages read", "WAL bytes/row", "WAL full pages/row"
        );
        let mut conn = PgConnection::connect(&url).await.expect("connection");
        for v7 in [true, false, true, false] {
            sqlx::query("CHECKPOINT")
                .execute(&pool)
                .await
                .expect("checkpoint");
            let before = counters(&pool, table(v7)).await;
            let run = Instant::now();
            insert_run(&mut conn, company, &args, v7).await;
            let seconds = run.elapsed().as_secs_f64();
            // Make the inserting backend publish its statistics (PostgreSQL 15 and later;
            // older servers publish them within a second of going idle).
            let _ = sqlx::query("SELECT pg_stat_force_next_flush()")
                .execute(&mut conn)
                .await;
            let _ = sqlx::query("SELECT 1").execute(&mut conn).await;
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let after = counters(&pool, table(v7)).await;
            let rows = args.rows as f64;
            println!(
                "{:<14} {:>10.0} {:>18} {:>14.0} {:>20.3}",
                if v7 { "v7 (ordered)" } else { "v4 (random)" },
                rows / seconds,
                after.index_reads - before.index_reads,
                (after.wal_bytes - before.wal_bytes) / rows,
                (after.wal_full_pages - before.wal_full_pages) as f64 / rows,
            );
        }
        drop(conn);
        pool.close().await;
        drop(cluster);
    });
}
