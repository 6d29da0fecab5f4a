//! The embedded default: with no `DATABASE_URL`, `lux` runs a private PostgreSQL cluster from
//! the machine's PostgreSQL binaries under its data folder, on a free loopback port.
//!
//! PostgreSQL refuses to run as root, so when `lux` itself runs as root (CI does) the cluster
//! runs as the `postgres` system user through `runuser`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running private cluster. Stopped on [`EmbeddedPostgres::stop`] if this process started it.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    pgdata: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
    started_here: bool,
}

const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. \
Install them (Debian/Ubuntu: `apt-get install postgresql`), point LUX_PG_BIN at their folder, \
or set DATABASE_URL to use an existing server";

/// Why the embedded cluster could not be started: the step, and the cause.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// A file or process operation failed (creating folders, running a tool).
    #[error("{step}")]
    Io {
        step: String,
        #[source]
        error: std::io::Error,
    },
    #[error("LUX_PG_BIN={0} holds no initdb/pg_ctl. {INSTALL_HINT}")]
    BadBinDir(String),
    #[error("{INSTALL_HINT}")]
    NoPostgres,
    #[error("initdb failed for {pgdata}: {stderr}")]
    Initdb { pgdata: String, stderr: String },
    #[error(
        "pg_basebackup into {pgdata} failed (does the primary allow replication connections from here?): {stderr}"
    )]
    BaseBackup { pgdata: String, stderr: String },
    #[error("could not start the embedded PostgreSQL in {pgdata} (see {log}): {stderr}")]
    Start {
        pgdata: String,
        log: String,
        stderr: String,
    },
    #[error(
        "running as root, the embedded PostgreSQL runs as the `postgres` system user, but {0} \
         could not be given to it (does that user exist? it comes with the PostgreSQL package)"
    )]
    Chown(String),
}

/// Names the step an I/O error happened at.
fn at(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let step = step.into();
    move |error| EmbeddedError::Io { step, error }
}

impl EmbeddedPostgres {
    /// Starts the cluster under `data_dir/pg` (creating it the first time), or joins the one
    /// another `lux` process already runs there.
    pub fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        Self::start_with_settings(data_dir, &[])
    }

    /// [`start`](Self::start) with extra server settings (`-c name=value`) for a cluster
    /// started here, e.g. the benchmarks' `shared_preload_libraries=pg_stat_statements`.
    pub fn start_with_settings(
        data_dir: &Path,
        settings: &[(&str, &str)],
    ) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir()?;
        let run_as_postgres = is_root();
        std::fs::create_dir_all(data_dir)
            .map_err(at(format!("creating data folder {}", data_dir.display())))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(at(format!("resolving data folder {}", data_dir.display())))?;
        let pgdata = data_dir.join("pg");
        let mut cluster = EmbeddedPostgres {
            pgdata,
            bin_dir,
            port: 0,
            run_as_postgres,
            started_here: false,
        };
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        if let Some(port) = cluster.running_port() {
            cluster.port = port;
            return Ok(cluster);
        }
        cluster.port = cluster.remembered_port().unwrap_or(free_port()?);
        cluster.pg_ctl_start(settings)?;
        // The same port next time, so URLs printed earlier stay valid across restarts.
        let _ = std::fs::write(cluster.port_file(), cluster.port.to_string());
        cluster.started_here = true;
        Ok(cluster)
    }

    /// A hot standby of the server at `primary_url` (a superuser URL) under `data_dir/pg`:
    /// a `pg_basebackup` that streams from the primary from then on. For a local replica to
    /// try `LUX_READ_DATABASE_URL` with (docs/scale.md), and the tests that prove it.
    /// `settings` as for [`start_with_settings`](Self::start_with_settings): a standby needs
    /// `max_connections` (and the other `max_*` settings) at least as high as its primary's.
    pub fn start_replica(
        primary_url: &str,
        data_dir: &Path,
        settings: &[(&str, &str)],
    ) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir()?;
        let run_as_postgres = is_root();
        let pgdata = data_dir.join("pg");
        std::fs::create_dir_all(data_dir)
            .map_err(at(format!("creating data folder {}", data_dir.display())))?;
        if run_as_postgres {
            chown_to_postgres(data_dir)?;
        }
        let cluster = EmbeddedPostgres {
            pgdata: pgdata.clone(),
            bin_dir,
            port: 0,
            run_as_postgres,
            started_here: false,
        };
        let target = pgdata.to_string_lossy().into_owned();
        // -R: standby.signal and primary_conninfo, so it starts as a streaming standby.
        let output = cluster
            .command(
                "pg_basebackup",
                &[
                    "-d",
                    primary_url,
                    "-D",
                    &target,
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
            )
            .output()
            .map_err(at("running pg_basebackup"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(EmbeddedError::BaseBackup {
                pgdata: target,
                stderr,
            });
        }
        Self::start_with_settings(data_dir, settings)
    }

    /// URL of the server's `postgres` database, as the `postgres` superuser (trust auth on
    /// loopback only; the cluster is private to this folder).
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// URL of the `lux` database on this cluster.
    pub fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/lux", self.port)
    }

    /// Stops the cluster if this process started it; a cluster joined from another `lux`
    /// process is left running for its owner.
    pub fn stop(&self) {
        if !self.started_here {
            return;
        }
        let pgdata = self.pgdata.to_string_lossy().into_owned();
        let _ = self
            .command("pg_ctl", &["-D", &pgdata, "-m", "fast", "-w", "stop"])
            .output();
    }

    fn initdb(&self) -> Result<(), EmbeddedError> {
        std::fs::create_dir_all(&self.pgdata).map_err(at("creating the cluster folder"))?;
        if self.run_as_postgres {
            chown_to_postgres(&self.pgdata)?;
        }
        let pgdata = self.pgdata.to_string_lossy().into_owned();
        let output = self
            .command(
                "initdb",
                &[
                    "-D",
                    &pgdata,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
            )
            .output()
            .map_err(at("running initdb"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(EmbeddedError::Initdb { pgdata, stderr });
        }
        Ok(())
    }

    fn pg_ctl_start(&self, settings: &[(&str, &str)]) -> Result<(), EmbeddedError> {
        let pgdata = self.pgdata.to_string_lossy().into_owned();
        let log = self
            .pgdata
            .join("server.log")
            .to_string_lossy()
            .into_owned();
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port, pgdata
        );
        for (name, value) in settings {
            opts.push_str(&format!(" -c {name}={value}"));
        }
        let output = self
            .command(
                "pg_ctl",
                &["-D", &pgdata, "-l", &log, "-o", &opts, "-w", "start"],
            )
            .output()
            .map_err(at("running pg_ctl start"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(EmbeddedError::Start {
                pgdata,
                log,
                stderr,
            });
        }
        Ok(())
    }

    fn port_file(&self) -> PathBuf {
        self.pgdata.with_file_name("pg.port")
    }

    /// The port used last time, if it is free now.
    fn remembered_port(&self) -> Option<u16> {
        let port: u16 = std::fs::read_to_string(self.port_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        TcpListener::bind(("127.0.0.1", port)).ok().map(|_| port)
    }

    /// The port of a server already running on this data folder, if any.
    fn running_port(&self) -> Option<u16> {
        let pgdata = self.pgdata.to_string_lossy().into_owned();
        let status = self
            .command("pg_ctl", &["-D", &pgdata, "status"])
            .output()
            .ok()?;
        if !status.status.success() {
            return None;
        }
        // postmaster.pid: line 4 is the port.
        let pid_file = std::fs::read_to_string(self.pgdata.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let binary = self.bin_dir.join(program);
        if self.run_as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(binary).args(args);
            cmd
        } else {
            let mut cmd = Command::new(binary);
            cmd.args(args);
            cmd
        }
    }
}

/// `LUX_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
fn find_bin_dir() -> Result<PathBuf, EmbeddedError> {
    let has_tools = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Some(dir) = std::env::var_os("LUX_PG_BIN").map(PathBuf::from) {
        if has_tools(&dir) {
            return Ok(dir);
        }
        return Err(EmbeddedError::BadBinDir(dir.display().to_string()));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_tools(&dir) {
            return Ok(dir);
        }
    }
    Err(EmbeddedError::NoPostgres)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_to_postgres(dir: &Path) -> Result<(), EmbeddedError> {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .map_err(at("running chown"))?;
    if !status.success() {
        return Err(EmbeddedError::Chown(dir.display().to_string()));
    }
    Ok(())
}

fn free_port() -> Result<u16, EmbeddedError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(at("finding a free local port"))?;
    let addr = listener
        .local_addr()
        .map_err(at("finding a free local port"))?;
    Ok(addr.port())
}
