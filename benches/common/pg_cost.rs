//! What PostgreSQL spends on a piece of work, per event: its statements' execution time
//! (`pg_stat_statements`, when the server loads it) and its processes' CPU time (from
//! `/proc`, for every server process of the database: backends, WAL writer, checkpointer,
//! autovacuum). Statement time says which statement to look at; CPU time is the cost.

use std::collections::HashMap;

use sqlx::PgPool;

/// Readings taken before the work, to subtract afterwards.
pub struct PgCost {
    cpu_ticks: HashMap<i32, u64>,
    statements: bool,
}

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

impl PgCost {
    /// Starts counting: resets `pg_stat_statements` (when loaded and allowed) and reads the
    /// server processes' CPU times.
    pub async fn start(owner: &PgPool) -> PgCost {
        let statements = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(owner)
            .await
            .is_ok()
            && sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(owner)
                .await
                .is_ok();
        // The table counters (HOT updates) count from here too.
        let _ = sqlx::query("SELECT pg_stat_reset()").execute(owner).await;
        PgCost {
            cpu_ticks: server_cpu_ticks(owner).await,
            statements,
        }
    }

    /// Prints µs per event since `start`: CPU, statement time, and the statements that took
    /// the most.
    pub async fn report(&self, owner: &PgPool, events: u64) {
        let per_event = |us: f64| us / events.max(1) as f64;
        let now = server_cpu_ticks(owner).await;
        let ticks: u64 = now
            .iter()
            .map(|(pid, t)| t.saturating_sub(*self.cpu_ticks.get(pid).unwrap_or(&0)))
            .sum();
        let cpu_us = ticks as f64 / TICKS_PER_SECOND * 1e6;
        println!(
            "  PostgreSQL CPU   {:>8.1} µs/event   (server processes, /proc)",
            per_event(cpu_us)
        );
        if !self.statements {
            println!("  statement time   n/a (pg_stat_statements not loaded on this server)");
            return;
        }
        let rows: Vec<(String, f64, i64)> = sqlx::query_as(
            "SELECT regexp_replace(left(query, 200), '\\s+', ' ', 'g'), total_exec_time, calls
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = current_database() AND query NOT LIKE '%pg_stat_statements%'
             ORDER BY total_exec_time DESC",
        )
        .fetch_all(owner)
        .await
        .unwrap_or_default();
        let total_us: f64 = rows.iter().map(|(_, ms, _)| ms * 1000.0).sum();
        let total_calls: i64 = rows.iter().map(|(_, _, calls)| calls).sum();
        println!(
            "  statements       {:>8.2} per event   ({total_calls} executed)",
            total_calls as f64 / events.max(1) as f64
        );
        println!(
            "  statement time   {:>8.1} µs/event   (pg_stat_statements; the top ones:)",
            per_event(total_us)
        );
        for (query, ms, calls) in rows.iter().take(6) {
            let short: String = query.chars().take(90).collect();
            println!(
                "    {:>7.1} µs/event {:>8} calls  {short}",
                per_event(ms * 1000.0),
                calls
            );
        }
        print_updates(owner).await;
    }
}

/// How the tables written per event were updated: a HOT update touches no index, any other
/// update writes a new entry into every index of the table.
async fn print_updates(owner: &PgPool) {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT relname::text, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
         WHERE n_tup_upd > 0 ORDER BY n_tup_upd DESC LIMIT 3",
    )
    .fetch_all(owner)
    .await
    .unwrap_or_default();
    for (table, updates, hot) in rows {
        println!(
            "  updates of {table:<12} {updates:>9}, {:.0}% HOT (no index written)",
            100.0 * hot as f64 / updates.max(1) as f64
        );
    }
}

/// User + system CPU ticks of every server process of this database's cluster, by pid
/// (processes that start later count from zero).
async fn server_cpu_ticks(owner: &PgPool) -> HashMap<i32, u64> {
    let pids: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity")
        .fetch_all(owner)
        .await
        .unwrap_or_default();
    pids.into_iter()
        .filter_map(|pid| Some((pid, cpu_ticks(pid)?)))
        .collect()
}

fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields, 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
