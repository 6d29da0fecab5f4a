//! The `lux` binary: parses the command line, sets up logging and the runtime, runs one
//! command (`cli/`) and turns its outcome into the exit code.

use std::process::ExitCode;

use clap::Parser;
use mimalloc::MiMalloc;

mod cli;

/// mimalloc rather than the system allocator: the ingest path allocates per event (JSON
/// values, strings, batch arrays), and glibc's malloc and free took about a quarter of the
/// service's CPU time under load (perf, single-event benchmark).
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.command.serves());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lux: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lux: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// JSON logs to stderr (stdout is for command output). `RUST_LOG` overrides the level.
fn init_logging(serving: bool) {
    // sqlx reports "relation already exists, skipping" notices at info: noise.
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
