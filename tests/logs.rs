//! The slow-statement log, in a test binary of its own: tracing caches per call site whether
//! anyone listens, process-wide, so in the shared API binary another test's earlier calls
//! (made with no subscriber) left sqlx's call sites switched off for this test's scoped
//! subscriber. In its own process the test sees exactly what a service would log.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use chrono::Utc;

use helpers::TestApp;

/// Every event logged while it is the thread's subscriber: level, target, fields as text.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<(tracing::Level, String, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((*meta.level(), meta.target().to_string(), fields.0));
    }
}

/// A statement slower than sqlx's threshold is not logged with its SQL at WARN (nor at
/// DEBUG or INFO): sqlx's statement log is at TRACE only. A report logs its name and how long
/// it took.
#[tokio::test]
async fn a_slow_statement_does_not_log_its_sql_and_a_report_logs_its_name_and_duration() {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    // The test's runtime has one thread: everything below logs to this subscriber.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
    let app = TestApp::spawn().await;
    let pool = lux::db::connect_app(&app.db.url, 1).unwrap();
    let slow = lux::db::SLOW_STATEMENT + std::time::Duration::from_millis(100);
    sqlx::query("SELECT pg_sleep($1)")
        .bind(slow.as_secs_f64())
        .execute(&pool)
        .await
        .unwrap();
    let reader = lux::db::connect_reader(&app.db.url, 1).unwrap();
    let request = lux::reports::ReportRequest::parse(
        "repeat_purchase",
        Some("from=2026-01-01&to=2026-01-31"),
    )
    .unwrap();
    lux::reports::run(&reader, &pool, Utc::now(), app.company.id, &request)
        .await
        .unwrap();
    let events = captured.0.lock().unwrap().clone();

    let sql_events: Vec<_> = events.iter().filter(|e| e.1 == "sqlx::query").collect();
    // Logged, so this test would see the SQL if it were logged at another level...
    assert!(
        sql_events.iter().any(|e| e.2.contains("pg_sleep")
            && e.2.contains("slow statement")
            && e.0 == tracing::Level::TRACE),
        "{sql_events:?}"
    );
    // ... but at TRACE only.
    for (level, target, fields) in &events {
        assert!(
            *level == tracing::Level::TRACE || !fields.contains("SELECT"),
            "{level} {target}: {fields}"
        );
    }
    let report: Vec<_> = events
        .iter()
        .filter(|e| e.1 == "lux::reports" && e.2.contains("report=\"repeat_purchase\""))
        .collect();
    assert_eq!(report.len(), 1, "{events:?}");
    assert_eq!(report[0].0, tracing::Level::DEBUG, "{report:?}");
    assert!(report[0].2.contains("elapsed_ms="), "{report:?}");
    assert!(!report[0].2.contains("SELECT"), "{report:?}");
    app.stop().await;
}
