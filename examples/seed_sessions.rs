//! Fills a sessiongate store with sessions, for the benchmarks (`benches/`).
//!
//! ```sh
//! cargo run --release --example seed_sessions -- <data_dir> <secret> <count> <users> \
//!     [--base <unix seconds>] [--access-lifetime <seconds>]
//! ```
//!
//! Creates `count` sessions dealt in turn to `users` users (session `i` is user `i % users`'s
//! login number `i / users`), each with real HS256 access and refresh tokens signed with
//! `secret`, written with the store's bulk loader (`SledStore::import`, one flush at the
//! end). The latest login is at `--base` (default: now), each earlier one a second before;
//! access tokens live `--access-lifetime` seconds (default 86400: a benchmark outlives the
//! uploader's 5 minutes). Prints the access token of session 0 on stdout, and the fill rate,
//! disk size and RSS on stderr. The same arguments give the same tokens again.

#![warn(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sessiongate::sessions::SledStore;

// The gateway's allocator, as in the gateway.
sessiongate::global_allocator!();

#[path = "../benches/support/seed.rs"]
#[allow(dead_code)]
mod seed;

const USAGE: &str = "usage: seed_sessions <data_dir> <secret> <count> <users> \
                     [--base <unix seconds>] [--access-lifetime <seconds>]";

struct Args {
    dir: PathBuf,
    secret: String,
    count: u64,
    users: u64,
    base_s: i64,
    access_lifetime_s: i64,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut base_s = seed::now_s();
    let mut access_lifetime_s = 86_400;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<i64, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value.parse().map_err(|_| format!("{name} {value:?}"))
        };
        match arg.as_str() {
            "--base" => base_s = number("--base")?,
            "--access-lifetime" => access_lifetime_s = number("--access-lifetime")?,
            _ => positional.push(arg),
        }
    }
    let [dir, secret, count, users] =
        <[String; 4]>::try_from(positional).map_err(|_| "four arguments are needed".to_owned())?;
    let count: u64 = count.parse().map_err(|_| format!("count {count:?}"))?;
    let users: u64 = users.parse().map_err(|_| format!("users {users:?}"))?;
    if count == 0 || users == 0 || users > count {
        return Err("need 0 < users <= count".to_owned());
    }
    if secret.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    Ok(Args {
        dir: PathBuf::from(dir),
        secret,
        count,
        users,
        base_s,
        access_lifetime_s,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("seed_sessions: {message}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let store = match SledStore::open(&args.dir) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("seed_sessions: opening {}: {error}", args.dir.display());
            return ExitCode::FAILURE;
        }
    };
    let seeder = seed::Seeder::new(args.secret.as_bytes(), args.base_s, args.access_lifetime_s);
    let started = Instant::now();
    let report_every = (args.count / 10).max(100_000);
    let sessions = (0..args.count).map(|i| {
        if i > 0 && i % report_every == 0 {
            let rate = i as f64 / started.elapsed().as_secs_f64();
            eprintln!("seed_sessions: {i} sessions, {rate:.0}/s");
        }
        seeder.nth(i, args.users).session
    });
    if let Err(error) = store.import(sessions) {
        eprintln!("seed_sessions: import failed: {error}");
        return ExitCode::FAILURE;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (rss, peak) = seed::rss_kib();
    eprintln!(
        "seed_sessions: {} sessions for {} users in {elapsed:.1} s ({:.0}/s, flush included); \
         store now holds {}; {} bytes on disk; RSS {} MiB, peak {} MiB; base {}",
        args.count,
        args.users,
        args.count as f64 / elapsed,
        store.count(),
        seed::disk_bytes(&args.dir),
        rss / 1024,
        peak / 1024,
        args.base_s,
    );
    println!("{}", seeder.nth(0, args.users).access_token);
    ExitCode::SUCCESS
}
