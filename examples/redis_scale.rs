//! Measures the Redis store at scale (`benches/redis_scale.sh` runs it against a redis-server
//! of its own).
//!
//! ```sh
//! cargo run --release --example redis_scale -- <redis_url> <count> <users> \
//!     [--lookups 100000] [--lists 200] [--secret s] [--no-fill]
//! ```
//!
//! Fills the store with `count` sessions dealt to `users` users (the sessions and tokens of
//! `benches/support/seed.rs`, written through the store's own scripts, 64 at once), unless
//! `--no-fill`, then reports on stdout one `key: value` per line: the fill's rate; Redis's
//! `used_memory` before and after, and per session; the token lookup (`find_access`, one
//! `HGET`) and the whole per-request check (JWT verify, SHA-512, lookup) over `--lookups`
//! random sessions, one at a time: p50, p99; listing a user's sessions (`list_user`) for
//! `--lists` random users: p50, p99, max; the same lookups 64 at a time on the one
//! multiplexed connection, as a gateway's concurrent requests make them: their rate.

#![warn(clippy::unwrap_used)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use jsonwebtoken::Algorithm;
use sessiongate::auth::{TokenVerifier, token_hash};
use sessiongate::sessions::store::dump::{Dump, Entry};
use sessiongate::sessions::{RedisStore, RedisTarget, SessionStore};

// The gateway's allocator, as in the gateway.
sessiongate::global_allocator!();

#[path = "../benches/support/seed.rs"]
#[allow(dead_code, unused_imports)] // the parts of the benches' seeding this example uses
mod seed;

const USAGE: &str = "usage: redis_scale <redis_url> <count> <users> [--lookups N] [--lists N] \
                     [--secret S] [--no-fill]";

/// Sessions handed to the store's loader at a time.
const FILL_BATCH: u64 = 10_000;

/// The fixed base time of the seeded logins, so that a second run with --no-fill finds the
/// same tokens.
const BASE_S: i64 = 1_900_000_000;

struct Args {
    url: String,
    count: u64,
    users: u64,
    lookups: usize,
    lists: usize,
    secret: String,
    fill: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let (mut lookups, mut lists, mut fill) = (100_000, 200, true);
    let mut secret = "redis-scale-secret".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--lookups" => lookups = value("--lookups")?.parse().map_err(|e| format!("{e}"))?,
            "--lists" => lists = value("--lists")?.parse().map_err(|e| format!("{e}"))?,
            "--secret" => secret = value("--secret")?,
            "--no-fill" => fill = false,
            _ => positional.push(arg),
        }
    }
    let [url, count, users] =
        <[String; 3]>::try_from(positional).map_err(|_| "three arguments are needed")?;
    let count: u64 = count.parse().map_err(|_| format!("count {count:?}"))?;
    let users: u64 = users.parse().map_err(|_| format!("users {users:?}"))?;
    if count == 0 || users == 0 || users > count {
        return Err("need 0 < users <= count".into());
    }
    Ok(Args {
        url,
        count,
        users,
        lookups: lookups.max(1),
        lists: lists.max(1),
        secret,
        fill,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("redis_scale: {error}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(measure(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("redis_scale: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(args: &Args) -> Result<(), String> {
    let target = RedisTarget {
        urls: vec![args.url.clone()],
        cluster: false,
        password: None,
        tls_ca: None,
        timeout: Duration::from_secs(10),
    };
    let store = Arc::new(
        RedisStore::connect(&target, "sessiongate")
            .await
            .map_err(|e| e.to_string())?,
    );
    let client = redis::Client::open(args.url.as_str()).map_err(|e| e.to_string())?;
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let seeder = seed::Seeder::new(args.secret.as_bytes(), BASE_S, 100 * 365 * 86_400);

    let before = used_memory(&mut admin).await?;
    if args.fill {
        let started = Instant::now();
        let mut next = 0;
        while next < args.count {
            let end = (next + FILL_BATCH).min(args.count);
            let entries: Vec<Entry> = (next..end)
                .map(|i| Entry::Session(seeder.nth(i, args.users).session))
                .collect();
            store.load(&entries).await.map_err(|e| e.to_string())?;
            next = end;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!("fill_seconds: {seconds:.1}");
        println!(
            "fill_sessions_per_second: {:.0}",
            args.count as f64 / seconds
        );
    }
    let held = store.count().await.map_err(|e| e.to_string())?;
    println!("sessions: {held}");
    let after = used_memory(&mut admin).await?;
    println!("used_memory_before: {before}");
    println!("used_memory_after: {after}");
    if args.fill {
        println!(
            "bytes_per_session: {:.0}",
            (after.saturating_sub(before)) as f64 / args.count as f64
        );
    }

    let mut random = seed::SplitMix(0x5e55_1065);
    let logins: Vec<seed::Login> = (0..args.lookups)
        .map(|_| seeder.nth(random.below(args.count), args.users))
        .collect();
    let mut lookups = Vec::with_capacity(logins.len());
    for login in &logins {
        let hash = token_hash(&login.access_token);
        let started = Instant::now();
        let grant = store
            .find_access(&login.session.user, &hash)
            .await
            .map_err(|e| e.to_string())?;
        lookups.push(started.elapsed());
        if grant.is_none() {
            return Err("a seeded token was not found: a different count or users?".into());
        }
    }
    report("lookup", &mut lookups);

    let verifier = TokenVerifier::new(args.secret.as_bytes(), Algorithm::HS256, 5, None);
    let now_ms = seed::now_s() * 1000;
    let mut checks = Vec::with_capacity(logins.len());
    for login in &logins {
        let started = Instant::now();
        let claims = verifier
            .verify(&login.access_token, now_ms)
            .map_err(|e| format!("a seeded token does not verify: {e:?}"))?;
        let grant = store
            .find_access(&claims.sub, &token_hash(&login.access_token))
            .await
            .map_err(|e| e.to_string())?;
        checks.push(started.elapsed());
        if grant.is_none_or(|g| g.expire_at_ms <= now_ms) {
            return Err("a seeded session is not live".into());
        }
    }
    report("check", &mut checks);

    // 64 lookups in flight at a time on the one connection, as a gateway's requests are.
    let hashes: Vec<_> = logins
        .iter()
        .map(|l| (l.session.user.clone(), token_hash(&l.access_token)))
        .collect();
    let started = Instant::now();
    for part in hashes.chunks(64) {
        let found = join_all(
            part.iter()
                .map(|(user, hash)| store.find_access(user, hash)),
        )
        .await;
        if found.iter().any(|f| !matches!(f, Ok(Some(_)))) {
            return Err("a concurrent lookup failed".into());
        }
    }
    println!(
        "lookups_64_in_flight_per_second: {:.0}",
        hashes.len() as f64 / started.elapsed().as_secs_f64()
    );

    let mut lists = Vec::with_capacity(args.lists);
    let per_user = args.count / args.users;
    for _ in 0..args.lists {
        let user = seed::user_id(random.below(args.users));
        let started = Instant::now();
        let listed = store.list_user(&user).await.map_err(|e| e.to_string())?;
        lists.push(started.elapsed());
        if (listed.len() as u64) < per_user {
            return Err(format!(
                "{user} has {} sessions, not {per_user}",
                listed.len()
            ));
        }
    }
    println!("list_sessions_per_user: {per_user}");
    report("list", &mut lists);
    Ok(())
}

/// `used_memory` from `INFO memory`.
async fn used_memory(admin: &mut redis::aio::MultiplexedConnection) -> Result<u64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(admin)
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no used_memory in INFO memory".into())
}

fn report(name: &str, times: &mut [Duration]) {
    times.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("{name}_p50_us: {:.1}", us(seed::percentile(times, 0.50)));
    println!("{name}_p99_us: {:.1}", us(seed::percentile(times, 0.99)));
    println!("{name}_max_us: {:.1}", us(times[times.len() - 1]));
}
