//! The test harness: a fresh database per test, the real app on port 0, typed helpers.

use std::time::Duration;

use lux::analytics::IngestOptions;
use lux::server::{RunningServer, ServeOptions};
use lux::tenancy::{CreatedCompany, NewCompany};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A browser's user agent, so events are not flagged as bots.
pub const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The installation key the test servers use for webhook secrets.
pub fn secrets_key() -> lux::commerce::secrets::SecretsKey {
    lux::commerce::secrets::SecretsKey::parse_hex(&"7e".repeat(32)).expect("valid key")
}

/// The server URL tests create their databases on (`scripts/test` sets it).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must point at a PostgreSQL server for the tests; ./scripts/test starts one",
    )
}

/// A fresh, empty database on the test server.
pub struct TestDb {
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let server = server_url();
        let name = format!("lux_test_{}", Uuid::new_v4().simple());
        let admin = PgPool::connect(&server)
            .await
            .expect("connect to test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let mut url = url::Url::parse(&server).expect("DATABASE_URL is a URL");
        url.set_path(&name);
        TestDb {
            url: url.to_string(),
            name,
        }
    }

    /// A pool connected as the owner (bypasses row-level security: for assertions).
    pub async fn owner(&self) -> PgPool {
        PgPool::connect(&self.url).await.expect("connect as owner")
    }
}

pub struct Company {
    pub id: Uuid,
    pub write_key: String,
    pub secret_key: String,
}

impl From<CreatedCompany> for Company {
    fn from(c: CreatedCompany) -> Self {
        Company {
            id: c.company_id.uuid(),
            write_key: c.write_key,
            secret_key: c.secret_key,
        }
    }
}

pub struct TestApp {
    #[allow(dead_code)]
    pub db: TestDb,
    pub owner: PgPool,
    pub base: String,
    pub client: reqwest::Client,
    pub company: Company,
    server: Option<RunningServer>,
}

pub fn test_options() -> ServeOptions {
    ServeOptions {
        bind: ([127, 0, 0, 1], 0).into(),
        ingest: IngestOptions {
            trust_proxy: true,
            dev_page: true,
        },
        // Settings changes (tracking off) must show at once in tests.
        key_cache_ttl: Duration::ZERO,
        pool_size: 4,
        secrets_key: Some(secrets_key()),
        // Tests run jobs themselves, when their data is in place.
        jobs_interval: None,
        // Tests deliver alerts themselves (or give the worker their SMTP server).
        alerts: None,
        ..ServeOptions::default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(test_options()).await
    }

    pub async fn spawn_with(options: ServeOptions) -> TestApp {
        let db = TestDb::new().await;
        let url = db.url.clone();
        Self::spawn_on(db, &url, options).await
    }

    /// Starts the service on `db`, reaching it through `service_url` (a proxy, say).
    pub async fn spawn_on(db: TestDb, service_url: &str, options: ServeOptions) -> TestApp {
        let server = lux::server::start(service_url, options)
            .await
            .expect("start the service");
        let owner = db.owner().await;
        let company = create_company(&owner, "Acme").await;
        TestApp {
            base: format!("http://{}", server.addr),
            db,
            owner,
            client: reqwest::Client::new(),
            company,
            server: Some(server),
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("clean stop");
        }
    }

    /// GET on the service.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// Posts events with the write key, as a browser would, and returns the raw response.
    pub async fn send_events(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/e?key={}", self.base, self.company.write_key))
            .header("user-agent", BROWSER_UA)
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    /// Posts a JSON body with a write key, as a browser would.
    pub async fn post_events(&self, body: &Value) -> (StatusCode, Value) {
        self.post_with_key(&self.company.write_key, body).await
    }

    pub async fn post_with_key(&self, write_key: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/e?key={write_key}", self.base))
            .header("content-type", "text/plain")
            .header("user-agent", BROWSER_UA)
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    /// Posts with the secret key, as a server would.
    pub async fn post_server_events(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/e", self.base))
            .bearer_auth(&self.company.secret_key)
            .header("user-agent", BROWSER_UA)
            .json(body)
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&self.owner)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("answer is not JSON ({status}): {text}"));
    (status, json)
}

pub async fn create_company(owner: &PgPool, name: &str) -> Company {
    let new = NewCompany::parse(name, "Europe/Paris", "EUR", vec![]).expect("valid company");
    lux::tenancy::create_company(owner, new)
        .await
        .expect("create company")
        .into()
}

/// A page view at `at` (RFC 3339) for `visitor` on `url`, for server-side posting.
pub fn page_view(visitor: Uuid, url: &str, at: &str) -> Value {
    json!({
        "event_id": Uuid::now_v7(),
        "event_name": "page_view",
        "visitor_id": visitor,
        "page_url": url,
        "occurred_at": at,
    })
}

/// RFC 3339 time `minutes` after a fixed base one day ago (inside the backfill window).
pub fn at_minute(minutes: i64) -> String {
    let base = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        - chrono::Duration::days(1);
    (base + chrono::Duration::minutes(minutes)).to_rfc3339()
}

/// `lux serve` as a separate process (the real binary), killed when dropped.
pub struct ServeProcess {
    child: std::process::Child,
    pub base: String,
}

impl ServeProcess {
    /// Starts the binary on a free port against `database_url`; stderr (the logs) goes to
    /// `log` when given.
    pub async fn spawn(database_url: &str, args: &[&str], log: Option<&std::path::Path>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stderr = match log {
            Some(path) => std::process::Stdio::from(std::fs::File::create(path).unwrap()),
            None => std::process::Stdio::null(),
        };
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_lux"))
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--key-cache-seconds",
                "0",
            ])
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", if log.is_some() { "debug" } else { "warn" })
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn lux serve");
        let base = format!("http://127.0.0.1:{port}");
        wait_healthy(&base).await;
        ServeProcess { child, base }
    }

    /// SIGTERM, then wait: the graceful path.
    pub fn terminate(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn wait_healthy(base: &str) {
    for _ in 0..400 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not become healthy");
}

/// The database's data as SQL inserts, as an attacker with a backup would see it.
pub fn pg_dump(url: &str) -> String {
    let output = std::process::Command::new("pg_dump")
        .args(["--data-only", "--inserts", url])
        .output()
        .expect("pg_dump (postgresql-client) is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Makes an open transaction act as the service: role `lux_app`, company `company`.
pub async fn act_as_service(conn: &mut sqlx::PgConnection, company: Uuid) {
    sqlx::query("SET LOCAL ROLE lux_app")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SELECT set_config('lux.company_id', $1, true)")
        .bind(company.to_string())
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Runs the `lux` binary against `database_url`, as an operator would.
pub fn lux_command(database_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lux"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run lux")
}

/// Runs `lux`, which must succeed, and returns what it printed as JSON.
pub fn lux_json(database_url: &str, args: &[&str]) -> Value {
    let output = lux_command(database_url, args);
    assert!(
        output.status.success(),
        "lux {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// Runs `lux`, which must fail, and returns what it said on stderr.
pub fn lux_error(database_url: &str, args: &[&str]) -> String {
    let output = lux_command(database_url, args);
    assert!(!output.status.success(), "lux {args:?} should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits until the order inbox's worker has written order `order` of `company`.
pub async fn wait_for_order(owner: &PgPool, company: Uuid, order: &str) {
    for _ in 0..200 {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders WHERE company_id = $1 AND order_number = $2",
        )
        .bind(company)
        .bind(order)
        .fetch_one(owner)
        .await
        .unwrap();
        if n == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("order {order} never appeared");
}

/// Writes `text` to a temporary CSV file (named after `what`) and returns its path.
pub fn temp_csv(what: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("{what}-{}.csv", Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs `lux import KIND PATH --company ID`: (succeeded, the printed JSON summary, stderr).
pub fn lux_import(
    db: &TestDb,
    company: &Company,
    kind: &str,
    path: &str,
) -> (bool, serde_json::Value, String) {
    let company = company.id.to_string();
    let output = lux_command(
        &db.url,
        &["import", kind, path, "--company", company.as_str()],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), summary, stderr)
}
