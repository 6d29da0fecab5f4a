//! The embedded default: with no DATABASE_URL, `lux` runs its own PostgreSQL cluster.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{BROWSER_UA, wait_healthy};

fn lux(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lux"));
    cmd.env_remove("DATABASE_URL").env("LUX_DATA_DIR", data_dir);
    cmd
}

#[tokio::test]
async fn without_database_url_lux_runs_its_own_cluster_end_to_end() {
    let data_dir = std::env::temp_dir().join(format!("lux-embedded-{}", uuid::Uuid::new_v4()));
    let output = lux(&data_dir)
        .args([
            "company",
            "create",
            "--name",
            "Embedded Shop",
            "--timezone",
            "America/New_York",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let write_key = created["write_key"].as_str().unwrap().to_string();
    assert!(
        created["secret_key"]
            .as_str()
            .unwrap()
            .starts_with("lux_sk_")
    );
    assert!(
        data_dir.join("pg/PG_VERSION").exists(),
        "the cluster lives in the data folder"
    );
    assert!(
        !data_dir.join("pg/postmaster.pid").exists(),
        "the cluster was stopped after the command"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = lux(&data_dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let response = reqwest::Client::new()
        .post(format!("{base}/e?key={write_key}"))
        .header("user-agent", BROWSER_UA)
        .body(json!({"event_name": "page_view", "page_url": "https://shop.test/"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // While serve runs, another command joins the same cluster (and leaves it running).
    let list = lux(&data_dir).args(["company", "list"]).output().unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains("Embedded Shop"));
    assert!(data_dir.join("pg/postmaster.pid").exists());

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "serve exits cleanly on SIGTERM");
    assert!(
        !data_dir.join("pg/postmaster.pid").exists(),
        "serve stopped its cluster"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
