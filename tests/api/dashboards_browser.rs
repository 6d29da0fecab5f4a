//! The dashboards in a real headless Chromium, driven over WebDriver (Debian's chromium and
//! chromium-driver): sign in through the form, open every page on demo data, and check there
//! is no console error, no failed request, and data in every chart. A screenshot of each
//! page is saved (`$LUX_SCREENSHOTS` or `<target dir>/screenshots`; the final ones are copied
//! to docs/screenshots/), the executive page at 1280 and 390 px wide.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::dashboards::{PASSWORD, demo_site};
use crate::snippet::profile_dir;

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver is required for the dashboard tests: apt-get install chromium-driver",
        );
    // Owned by the guard from here on, so every way out (the panic included) reaps it.
    let driver = Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if let Ok(answer) = reqwest::get(format!("{}/status", driver.base)).await
            && answer.status() == 200
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// One WebDriver session.
struct Browser {
    http: reqwest::Client,
    url: String,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("webdriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn go(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// The browser's console messages since the last call (errors are `SEVERE`; a request
    /// that failed shows there too, as "Failed to load resource").
    async fn console(&self) -> Vec<Value> {
        self.post("/se/log", json!({ "type": "browser" }))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Presses and releases one key (a WebDriver key code, such as [`TAB`]).
    async fn key(&self, key: &str) {
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        )
        .await;
        self.call(reqwest::Method::DELETE, "/actions", None).await;
    }

    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
            .await
    }

    /// The viewport `width` px wide (a phone's when narrow), then the whole page as PNG.
    async fn screenshot(&self, width: u32, path: &std::path::Path) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(900.0)
            .ceil();
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("LUX_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
            target.join("screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// WebDriver's code for the Tab key.
const TAB: &str = "\u{E004}";

/// Requests of the page that failed or answered 400 or more (Resource Timing's status).
const FAILED_REQUESTS: &str = "return performance.getEntries()
    .filter(e => e.responseStatus !== undefined && (e.responseStatus === 0 || e.responseStatus >= 400))
    .map(e => e.name + ' ' + e.responseStatus);";

/// Per chart: its caption and the data marks drawn.
const CHART_MARKS: &str = "return Array.from(document.querySelectorAll('figure.card'))
    .map(f => [f.querySelector('figcaption').textContent, f.querySelectorAll('svg .mark').length,
               !!f.querySelector('svg > title')]);";

/// Per chart: its caption, how many of its drawings are shown (a chart drawn for the
/// desktop and for a phone shows one), and whether each shown drawing fits inside its card.
const CHARTS_FIT: &str = "return Array.from(document.querySelectorAll('figure.card')).map(f => {
    const card = f.getBoundingClientRect();
    const shown = Array.from(f.querySelectorAll('svg.chart'))
        .filter(s => getComputedStyle(s).display !== 'none');
    return [f.querySelector('figcaption').textContent, shown.length,
            shown.every(s => { const r = s.getBoundingClientRect();
                               return r.left >= card.left - 0.5 && r.right <= card.right + 0.5; })];
});";

/// Asserts every chart of the page shows one drawing that fits its card.
async fn assert_charts_fit(browser: &Browser, page: &str, width: u32) {
    let charts = browser.script(CHARTS_FIT).await;
    for chart in charts.as_array().unwrap() {
        assert_eq!(
            chart[1], 1,
            "{page} at {width} px: one drawing shown: {chart}"
        );
        assert_eq!(
            chart[2], true,
            "{page} at {width} px: the chart fits its card: {chart}"
        );
    }
}

#[tokio::test]
async fn a_browser_signs_in_and_every_dashboard_shows_its_charts_without_errors() {
    let site = demo_site(120).await;
    let driver = start_driver().await;
    let profile = profile_dir("dashboards");
    let http = reqwest::Client::new();
    let session: Value = http
        .post(format!("{}/session", driver.base))
        .json(&json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--window-size=1280,900", "--hide-scrollbars",
                         format!("--user-data-dir={}", profile.display())]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("{session}"));
    let browser = Browser {
        http: http.clone(),
        url: format!("{}/session/{id}", driver.base),
    };
    let base = &site.app.base;

    // A page without a session goes to the login form, which comes back after signing in.
    let executive = format!("{base}/app/{}/executive?range=90d", site.company);
    browser.go(&executive).await;
    let at = browser.script("return location.pathname").await;
    assert_eq!(at, "/app/login");
    browser.type_into("#email", &site.email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    // The click returns once the form is submitted; on a loaded machine the redirect (after
    // argon2 verifies the password) can land after it: wait for the page to leave the form.
    for _ in 0..100 {
        let path = browser.script("return location.pathname").await;
        if path != "/app/login" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let at = browser
        .script("return location.pathname + location.search")
        .await;
    assert_eq!(
        at.as_str().unwrap(),
        format!("/app/{}/executive?range=90d", site.company)
    );

    // The demo's alerts run on a schedule the test does not wait for: one alert, so the
    // history page has a row and a chart.
    crate::dashboards::seed_alert(
        &site.app,
        site.company,
        site.today - chrono::Days::new(2),
        "Net revenue drop",
    )
    .await;
    let dir = screenshots_dir();
    for page in [
        "executive",
        "acquisition",
        "funnel",
        "retention",
        "attribution",
        "messages",
        "creatives",
        "experiments",
        "alerts",
    ] {
        browser
            .go(&format!("{base}/app/{}/{page}?range=90d", site.company))
            .await;
        let title = browser.script("return document.title").await;
        assert!(title.as_str().unwrap().contains("LUX"), "{page}: {title}");
        let charts = browser.script(CHART_MARKS).await;
        let charts = charts.as_array().unwrap();
        assert!(!charts.is_empty(), "{page} has charts");
        for chart in charts {
            assert!(
                chart[1].as_u64().unwrap() > 0,
                "{page}: a chart without data: {chart}"
            );
            assert_eq!(chart[2], true, "{page}: every chart has a <title>: {chart}");
        }
        let failed = browser.script(FAILED_REQUESTS).await;
        assert_eq!(failed, json!([]), "{page}: failed requests");
        let errors: Vec<Value> = browser
            .console()
            .await
            .into_iter()
            .filter(|m| m["level"] == "SEVERE")
            .collect();
        assert!(errors.is_empty(), "{page}: console errors {errors:?}");
        browser
            .screenshot(1280, &dir.join(format!("{page}.png")))
            .await;
        assert_charts_fit(&browser, page, 1280).await;
        if page == "executive" {
            browser
                .screenshot(390, &dir.join("executive-390.png"))
                .await;
            assert_charts_fit(&browser, page, 390).await;
            let overflow = browser
                .script("return document.documentElement.scrollWidth")
                .await;
            assert!(
                overflow.as_u64().unwrap() <= 390,
                "no sideways scrolling at 390 px: {overflow}"
            );
            browser
                .cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                .await;
        }
        // (After the screenshots, which show the page as it opens.)
        // Keyboard: the first Tab reaches the skip link, which leads to the content.
        browser.key(TAB).await;
        let focused = browser
            .script("return [document.activeElement.className, document.activeElement.getAttribute('href')]")
            .await;
        assert_eq!(focused, json!(["skip", "#main"]), "{page}");
        let as_of = browser
            .script("return document.getElementById('as-of').textContent")
            .await;
        assert!(
            !as_of.as_str().unwrap().starts_with("never"),
            "{page}: data as of {as_of}"
        );
    }
    println!("dashboard screenshots in {}", dir.display());
    let _ = http
        .delete(format!("{}/session/{id}", driver.base))
        .send()
        .await;
    drop(driver);
    site.app.stop().await;
}
