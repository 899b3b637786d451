//! The `sessiongate` binary: parses the command line, loads and checks the config, starts
//! logging, binds, and runs the library until SIGINT or SIGTERM.

// `expect("why")` instead of a bare unwrap outside tests (see conventions).
#![warn(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use sessiongate::config::Settings;
use sessiongate::sessions::{SessionStore, SystemClock, open_dump, open_store};
use sessiongate::tls::CertStore;
use sessiongate::tools::compact;
use sessiongate::tools::sessions::{self, Failure, SessionsCommand};
use sessiongate::{Config, Gateway, Listeners, Server};
use tokio::signal::unix::{SignalKind, signal};

// The gateway's allocator, mimalloc (see the library's `global_allocator!`).
sessiongate::global_allocator!();

const USAGE: &str = "\
usage: sessiongate --config <file> [--check-config]
       sessiongate healthcheck [--config <file>]
       sessiongate compact --config <file> [--to <dir>]
       sessiongate migrate --from <file> --to <file>
       sessiongate sessions list --user <id> [--json] [--direct] [--config <file>]
       sessiongate sessions revoke (--user <id> | --session <id>) [--json] [--direct] [--config <file>]
       sessiongate sessions count [--json] [--direct] [--config <file>]

  --config <file>   the TOML configuration (see config/sessiongate.toml)
  --check-config    validate the configuration, the secret and the TLS files, then exit
  healthcheck       GET /healthz on the admin listener; exit 0 if it answers 200, else 1
  compact           with the gateway stopped, rewrite the session store (data_dir) without
                    the stale copies sled keeps, check the copy, and put it in the store's
                    place; with --to <dir>, leave it in <dir> (new or empty) instead
  migrate           with the gateways stopped, copy the session store of the --from
                    configuration into the empty store of the --to configuration (sled
                    into Redis, Redis into sled), then compare the copy with the original
                    entry by entry; the two files are read as written (no SESSIONGATE_*
                    overrides), the Redis password from each file's
                    store.redis_password_file or SESSIONGATE_REDIS_PASSWORD
  sessions          for operators: list a user's live sessions, revoke one session (by id)
                    or all of a user's, count the store's sessions; asks the running
                    gateway's admin listener with the admin token (admin.token_file or
                    SESSIONGATE_ADMIN_TOKEN); with --direct, opens the configured store
                    itself (sled: only with the gateway stopped); --json prints the answer
                    as JSON. Exit 0 done, 1 failed (no such session, gateway unreachable,
                    token refused, store error), 64 bad arguments
  --help            this text
  --version         the version

Environment: SESSIONGATE_LISTEN, SESSIONGATE_UPSTREAM, SESSIONGATE_DATA_DIR,
SESSIONGATE_ADMIN_LISTEN, SESSIONGATE_WORKERS, SESSIONGATE_TLS_CERT, SESSIONGATE_TLS_KEY,
SESSIONGATE_STORE_BACKEND and SESSIONGATE_REDIS_URL override the file; the signing secret is
read from the variable named by auth.secret_env (JWT_SECRET), the Redis password from
SESSIONGATE_REDIS_PASSWORD (or store.redis_password_file), the admin token from
SESSIONGATE_ADMIN_TOKEN (or admin.token_file); RUST_LOG overrides log.level.
Signals: SIGTERM or SIGINT drain and stop; SIGHUP reloads the TLS certificate.";

/// Exit status for a bad command line or configuration (EX_USAGE).
const EXIT_USAGE: u8 = 64;

enum Command {
    Run {
        config: PathBuf,
        check_only: bool,
    },
    Healthcheck {
        config: Option<PathBuf>,
    },
    Compact {
        config: PathBuf,
        to: Option<PathBuf>,
    },
    Migrate {
        from: PathBuf,
        to: PathBuf,
    },
    Sessions(SessionsCommand),
}

fn parse_args() -> Result<Option<Command>, String> {
    let mut config = None;
    let mut check_only = false;
    let mut healthcheck = false;
    let mut compact = false;
    let mut migrate = false;
    let mut from = None;
    let mut to = None;
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|first| first == "sessions") {
        let rest: Vec<String> = args.skip(1).collect();
        if rest.iter().any(|arg| arg == "--help" || arg == "-h") {
            println!("{}", sessions::USAGE);
            return Ok(None);
        }
        return sessions::parse(rest)
            .map(|command| Some(Command::Sessions(command)))
            .map_err(|message| format!("sessions: {message}\n\n{}", sessions::USAGE));
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?)),
            "--check-config" => check_only = true,
            "healthcheck" => healthcheck = true,
            "compact" => compact = true,
            "migrate" => migrate = true,
            "sessions" => return Err("sessions must come first: sessiongate sessions ...".into()),
            "--from" => from = Some(PathBuf::from(args.next().ok_or("--from needs a file")?)),
            "--to" => to = Some(PathBuf::from(args.next().ok_or("--to needs a path")?)),
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
    if migrate {
        if compact || healthcheck || check_only || config.is_some() {
            return Err("migrate takes only --from and --to".into());
        }
        let from = from.ok_or("migrate needs --from <file>")?;
        let to = to.ok_or("migrate needs --to <file>")?;
        return Ok(Some(Command::Migrate { from, to }));
    }
    if from.is_some() {
        return Err("--from is an option of migrate".into());
    }
    if to.is_some() && !compact {
        return Err("--to is an option of compact and migrate".into());
    }
    if compact && (healthcheck || check_only) {
        return Err("compact takes only --config and --to".into());
    }
    if healthcheck {
        return Ok(Some(Command::Healthcheck { config }));
    }
    let config = config.ok_or("--config <file> is required")?;
    if compact {
        return Ok(Some(Command::Compact { config, to }));
    }
    Ok(Some(Command::Run { config, check_only }))
}

fn main() -> ExitCode {
    let command = match parse_args() {
        Ok(Some(command)) => command,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) if message.starts_with("sessions: ") => {
            eprintln!("sessiongate {message}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(message) => {
            eprintln!("sessiongate: {message}\n\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match command {
        Command::Healthcheck { config } => healthcheck(config),
        Command::Compact { config, to } => compact_store(config, to),
        Command::Migrate { from, to } => migrate_store(from, to),
        Command::Run { config, check_only } => run(config, check_only),
        Command::Sessions(command) => sessions_command(command),
    }
}

/// `sessiongate sessions ...`: through the running gateway's admin listener, or with
/// `--direct` on the configured store.
fn sessions_command(command: SessionsCommand) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let loaded = Config::load_or_defaults(command.config.as_deref());
    let password = loaded.and_then(|settings| {
        let password = match command.direct {
            true => settings.config.load_redis_password(env)?,
            false => None,
        };
        Ok((settings, password))
    });
    let (settings, password) = match password {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("sessiongate sessions: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Run on a stopped gateway's store, the revocations' log lines are this process's.
    let _log = command.direct.then(|| init_logging(&settings.config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(sessions::run(&command, &settings, password)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure(message)) => {
            eprintln!("sessiongate sessions: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Exits 0 when the admin listener answers `/healthz` with 200.
fn healthcheck(config: Option<PathBuf>) -> ExitCode {
    let admin = match Config::load_or_defaults(config.as_deref()).map(|settings| settings.admin) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            eprintln!("sessiongate healthcheck: admin_listen is empty: no admin listener to ask");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("sessiongate healthcheck: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts");
    match runtime.block_on(sessiongate::admin::healthcheck(admin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sessiongate healthcheck: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Compacts the store in the configured `data_dir`, in place or into `to`.
fn compact_store(path: PathBuf, to: Option<PathBuf>) -> ExitCode {
    let settings = match Config::load(&path) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("sessiongate compact: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let dir = &settings.config.data_dir;
    let started = std::time::Instant::now();
    let compacted = match &to {
        Some(to) => compact::compact_into(dir, to),
        None => compact::compact_in_place(dir),
    };
    match compacted {
        Ok(done) => {
            let mb = |bytes: u64| bytes as f64 / 1e6;
            let place = match &to {
                Some(to) => format!("the copy is in {}: point data_dir at it", to.display()),
                None => format!("it replaced the store in {}", dir.display()),
            };
            println!(
                "sessiongate compact: {} keys in {} trees copied and checked in {:.1} s, \
                 {:.1} MB before, {:.1} MB after; {place}",
                done.entries,
                done.trees,
                started.elapsed().as_secs_f64(),
                mb(done.bytes_before),
                mb(done.bytes_after),
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sessiongate compact: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Copies the store of `from` into the empty store of `to` and checks the copy.
fn migrate_store(from: PathBuf, to: PathBuf) -> ExitCode {
    let load = |path: &PathBuf| -> Result<(Settings, Option<String>), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config = Config::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let password = config
            .load_redis_password(|name| std::env::var(name).ok())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let settings = config
            .settings()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((settings, password))
    };
    let (from_config, to_config) = match (load(&from), load(&to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("sessiongate migrate: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(why) = same_store(&from_config.0, &to_config.0) {
        eprintln!("sessiongate migrate: --from and --to name the same store ({why})");
        return ExitCode::from(EXIT_USAGE);
    }
    let source_dir = &from_config.0.config.data_dir;
    if from_config.0.config.store.backend == "sled" && !source_dir.join("db").is_file() {
        eprintln!(
            "sessiongate migrate: no session store in {} (no sled `db` file there)",
            source_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let started = std::time::Instant::now();
    let migrated = runtime.block_on(async {
        let source = open_dump(&from_config.0, from_config.1).await?;
        let target = open_dump(&to_config.0, to_config.1).await?;
        sessiongate::tools::migrate::migrate(source, target)
            .await
            .map_err(|e| e.to_string())
    });
    match migrated {
        Ok(done) => {
            println!(
                "sessiongate migrate: {} sessions and {} rotated-away refresh tokens copied from \
                 the {} store into the {} store and checked in {:.1} s; {} rotated-away tokens \
                 of sessions that are gone left out",
                done.sessions,
                done.rotated,
                from_config.0.config.store.backend,
                to_config.0.config.store.backend,
                started.elapsed().as_secs_f64(),
                done.orphans,
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            let hint = if error.contains("could not acquire lock") {
                ": a gateway has the sled store open; stop it first"
            } else {
                ""
            };
            eprintln!("sessiongate migrate: {error}{hint}");
            ExitCode::FAILURE
        }
    }
}

/// Why two configurations name one store, if they do.
fn same_store(a: &Settings, b: &Settings) -> Option<String> {
    let (sa, sb) = (&a.config.store, &b.config.store);
    match (sa.backend.as_str(), sb.backend.as_str()) {
        ("sled", "sled") if a.config.data_dir == b.config.data_dir => {
            Some(format!("data_dir {}", a.config.data_dir.display()))
        }
        ("redis", "redis")
            if a.redis_urls == b.redis_urls && sa.redis_key_prefix == sb.redis_key_prefix =>
        {
            Some(format!("one Redis, key prefix {}", sa.redis_key_prefix))
        }
        _ => None,
    }
}

fn run(path: PathBuf, check_only: bool) -> ExitCode {
    let checked = Config::load(&path).and_then(|settings| {
        let env = |name: &str| std::env::var(name).ok();
        let secret = settings.config.load_secret(env)?;
        // Read here too, so that --check-config finds a missing password file.
        settings.config.load_redis_password(env)?;
        Ok((settings, secret))
    });
    let (settings, secret) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("sessiongate: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = &settings.config;
    let certs = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => match CertStore::load(cert, key) {
            Ok(certs) => Some(certs),
            Err(error) => {
                eprintln!("sessiongate: {error}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        _ => None,
    };
    if check_only {
        println!("sessiongate: {} is valid", path.display());
        return ExitCode::SUCCESS;
    }
    let _log = init_logging(config);
    // One worker: a current-thread runtime, which has no work-stealing machinery to pay for.
    let mut runtime = match config.workers {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if config.workers > 1 {
        runtime.worker_threads(config.workers);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(serve(settings, secret, certs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Text or JSON lines on stderr, filtered by `RUST_LOG` or else `log.level`.
///
/// Lines are handed to a writer thread of the log's own (tracing-appender), so that a slow
/// stderr (a full pipe, a slow terminal) never holds up a thread serving requests; when its
/// buffer is full, the request waits rather than its line being lost. The guard flushes what
/// is left when dropped, at exit.
fn init_logging(config: &Config) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("sessiongate-log")
        .finish(std::io::stderr());
    // Colours only for a person at a terminal, never into a pipe or a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    if config.log.format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    guard
}

async fn serve(
    settings: Settings,
    secret: Vec<u8>,
    certs: Option<Arc<CertStore>>,
) -> Result<(), String> {
    let store = open_configured_store(&settings).await?;
    let gateway = Gateway::new(&settings, &secret, store, Arc::new(SystemClock));
    let bind = |addr: std::net::SocketAddr, what: &'static str| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("binding the {what} listener on {addr}: {e}"))
    };
    let addr = settings.listen;
    let main = bind(addr, "main").await?;
    let admin = match settings.admin {
        Some(addr) => Some(bind(addr, "admin").await?),
        None => None,
    };
    let redirect = match settings.redirect {
        Some(addr) => Some(bind(addr, "redirect").await?),
        None => None,
    };
    tracing::info!(
        %addr,
        tls = certs.is_some(),
        admin = %settings.config.admin_listen,
        upstream = %settings.config.upstream,
        "sessiongate listening"
    );
    let mut server = Server::new(gateway);
    if let Some(certs) = &certs {
        tokio::spawn(reload_on_sighup(certs.clone()));
        server = server.with_tls(certs.clone());
    }
    let listeners = Listeners {
        main,
        admin,
        redirect,
    };
    server
        .serve(listeners, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the store the configuration names, logging where (never a URL: it may hold a
/// password).
async fn open_configured_store(settings: &Settings) -> Result<Arc<dyn SessionStore>, String> {
    let config = &settings.config;
    let password = config
        .load_redis_password(|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    match config.store.backend.as_str() {
        "redis" => tracing::info!(
            cluster = config.store.redis_cluster,
            prefix = %config.store.redis_key_prefix,
            "session store: redis"
        ),
        // A large store takes a while: opening it reads its whole access index into memory.
        _ => tracing::info!(dir = %config.data_dir.display(), "opening the session store"),
    }
    let store = open_store(settings, password).await?;
    match store.ping().await {
        Ok(()) => tracing::info!(backend = store.backend(), "session store ready"),
        Err(error) => tracing::error!(
            %error,
            "the session store does not answer yet: session routes answer 503 until it does"
        ),
    }
    Ok(store)
}

/// Reloads the TLS certificate on every SIGHUP; a bad file keeps the old certificate.
async fn reload_on_sighup(certs: Arc<CertStore>) {
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!(
            "could not install the SIGHUP handler: certificate reload by signal is off"
        );
        return;
    };
    while hangup.recv().await.is_some() {
        match certs.reload() {
            Ok(()) => tracing::info!(serial = %certs.serial_hex(), "TLS certificate reloaded"),
            Err(error) => {
                tracing::error!(%error, "TLS reload failed; the previous certificate stays")
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown signal received");
}
