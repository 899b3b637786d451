//! The `sessiongate` binary: parses the command line, loads and checks the config, starts
//! logging, binds, and runs the library until SIGINT or SIGTERM.

// `expect("why")` instead of a bare unwrap outside tests (see conventions).
#![warn(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use sessiongate::sessions::{SledStore, SystemClock};
use sessiongate::{Config, Gateway};

const USAGE: &str = "\
usage: sessiongate --config <file> [--check-config]

  --config <file>   the TOML configuration (see config/sessiongate.toml)
  --check-config    validate the configuration and the secret, then exit
  --help            this text
  --version         the version

Environment: SESSIONGATE_LISTEN, SESSIONGATE_UPSTREAM, SESSIONGATE_DATA_DIR override the
file; the signing secret is read from the variable named by auth.secret_env (JWT_SECRET);
RUST_LOG sets the log filter (default info).";

/// Exit status for a bad command line or configuration (EX_USAGE).
const EXIT_USAGE: u8 = 64;

struct Args {
    config: PathBuf,
    check_only: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut config = None;
    let mut check_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or("--config needs a file")?),
            "--check-config" => check_only = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--version" | "-V" => {
                println!("sessiongate {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let config = config.ok_or("--config <file> is required")?;
    Ok(Some(Args {
        config: PathBuf::from(config),
        check_only,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sessiongate: {message}\n\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let checked = Config::load(&args.config)
        .and_then(|config| Ok((config.load_secret(|name| std::env::var(name).ok())?, config)));
    let (secret, config) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("sessiongate: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.check_only {
        println!("sessiongate: {} is valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    match runtime.block_on(serve(config, secret)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, secret: Vec<u8>) -> Result<(), String> {
    let store = SledStore::open(&config.data_dir)
        .map_err(|e| format!("opening the store in {}: {e}", config.data_dir.display()))?;
    tracing::info!(sessions = store.count(), dir = %config.data_dir.display(), "session store open");
    let gateway = Gateway::new(&config, &secret, Arc::new(store), Arc::new(SystemClock))
        .map_err(|e| e.to_string())?;
    let addr = config.listen_addr().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    tracing::info!(%addr, upstream = %config.upstream, "sessiongate listening");
    sessiongate::run(listener, gateway, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
