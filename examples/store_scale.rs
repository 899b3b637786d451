//! Measures a seeded sessiongate store at scale (`benches/store_scale.sh` runs it after
//! `seed_sessions`).
//!
//! ```sh
//! cargo run --release --example store_scale -- <data_dir> <secret> <count> <users> \
//!     --base <unix seconds> [--lookups 100000] [--lists 200] [--cache-mib 1024] [--cold-lists] \
//!     [--writes 0] [--churn 0]
//! ```
//!
//! The arguments must be those the store was seeded with, so that the tokens can be made
//! again. Reports, on stdout, one `key: value` per line:
//! - the time to open the store;
//! - token lookup (`find_access` on the token's SHA-512) over `--lookups` random sessions:
//!   p50, p90, p99, p99.9, max and mean, cold (the first pass) and warm (the same tokens
//!   again);
//! - the whole per-request check (JWT verify + SHA-512 + lookup + expiry/user comparison)
//!   over the same tokens, p50 and p99;
//! - listing a user's sessions (`list_user`) for `--lists` random users: p50, p99, max;
//!   with `--cold-lists`, the store's files are dropped from the OS page cache before each
//!   listing (`posix_fadvise(DONTNEED)`), so that each reads the disk for every page sled
//!   does not hold itself: the worst case of a store larger than the machine's memory;
//! - with `--writes N`, N rounds of writes, each for a random user: a login (`create`), its
//!   logout (`revoke`), and a logout from every device (`revoke_user`), after which the
//!   user's seeded sessions are imported again (the same tokens, new ids), so that later runs
//!   find them; a run stopped between the two leaves that user out, and the store must be
//!   filled again. For each, its time and the longest that the runtime's thread was held
//!   meanwhile (`_stall`: the longest gap between the wake-ups of a task that sleeps 1 ms at
//!   a time, which stands in for the other connections of a gateway with one worker thread).
//!   With `--cold-lists` the store is dropped from the page cache before each write too;
//! - with `--churn N`, N logins (`create`) each followed by its logout (`revoke`), for random
//!   users: how a store's size on disk grows back under a gateway's writes after
//!   `sessiongate compact`. Bytes on disk are reported before and after each tenth of the
//!   rounds, with the rate of the rounds. The seeded sessions are left as they were;
//! - bytes on disk and the process's RSS (and peak).

#![warn(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use sessiongate::auth::{TokenVerifier, token_hash};
use sessiongate::sessions::{SessionStore, SledStore};

// The gateway's allocator: the store measured as the gateway runs it.
sessiongate::global_allocator!();

#[path = "../benches/support/seed.rs"]
#[allow(dead_code)]
mod seed;

const USAGE: &str = "usage: store_scale <data_dir> <secret> <count> <users> --base <unix seconds> \
                     [--lookups N] [--lists N] [--cache-mib N] [--cold-lists] [--writes N] \
                     [--churn N]";

struct Args {
    dir: PathBuf,
    secret: String,
    count: u64,
    users: u64,
    base_s: i64,
    lookups: usize,
    lists: usize,
    cache_mib: u64,
    cold_lists: bool,
    writes: u64,
    churn: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut base_s = None;
    let mut lookups = 100_000;
    let mut lists = 200;
    let mut cache_mib = 1024;
    let mut cold_lists = false;
    let mut writes = 0;
    let mut churn = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<i64, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value.parse().map_err(|_| format!("{name} {value:?}"))
        };
        match arg.as_str() {
            "--base" => base_s = Some(number("--base")?),
            "--lookups" => lookups = number("--lookups")?.max(1) as usize,
            "--lists" => lists = number("--lists")?.max(1) as usize,
            "--cache-mib" => cache_mib = number("--cache-mib")?.max(1) as u64,
            "--cold-lists" => cold_lists = true,
            "--writes" => writes = number("--writes")?.max(0) as u64,
            "--churn" => churn = number("--churn")?.max(0) as u64,
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
    Ok(Args {
        dir: PathBuf::from(dir),
        secret,
        count,
        users,
        base_s: base_s.ok_or("--base is required (the one the store was seeded with)")?,
        lookups,
        lists,
        cache_mib,
        cold_lists,
        writes,
        churn,
    })
}

/// Asks the kernel to drop the files of the store in `dir` from its page cache. The store
/// only reads while it is measured, so none of its pages are dirty and all of them go.
fn drop_from_page_cache(dir: &std::path::Path) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("dropping {} from the page cache: {e}", dir.display());
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let path = entry.map_err(failed)?.path();
        if path.is_file() {
            let file = std::fs::File::open(&path).map_err(failed)?;
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
                .map_err(|e| failed(e.into()))?;
        }
    }
    Ok(())
}

/// `name_p50_us: ...` lines for sorted durations.
fn report(name: &str, sorted: &[Duration]) {
    for (label, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)] {
        let value = seed::percentile(sorted, p);
        println!("{name}_{label}_us: {:.2}", value.as_secs_f64() * 1e6);
    }
    if let Some(max) = sorted.last() {
        println!("{name}_max_us: {:.2}", max.as_secs_f64() * 1e6);
    }
    let total: Duration = sorted.iter().sum();
    let mean = total.as_secs_f64() / sorted.len().max(1) as f64;
    println!("{name}_mean_us: {:.2}", mean * 1e6);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("store_scale: {message}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    match measure(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("store_scale: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(args: &Args) -> Result<(), String> {
    let (rss, _) = seed::rss_kib();
    println!("rss_before_open_kib: {rss}");
    let started = Instant::now();
    let store = SledStore::open_with_cache(&args.dir, args.cache_mib << 20)
        .map_err(|e| format!("opening: {e}"))?;
    println!("open_ms: {:.1}", started.elapsed().as_secs_f64() * 1e3);
    let (rss, _) = seed::rss_kib();
    println!("rss_after_open_kib: {rss}");

    // The tokens of random sessions, made again from their numbers (not timed).
    let seeder = seed::Seeder::new(args.secret.as_bytes(), args.base_s, 86_400);
    let mut random = seed::SplitMix(0x5e55_1065);
    let tokens: Vec<(String, String)> = (0..args.lookups)
        .map(|_| {
            let login = seeder.nth(random.below(args.count), args.users);
            (login.access_token, login.session.user)
        })
        .collect();

    for pass in ["cold", "warm"] {
        let mut times = Vec::with_capacity(tokens.len());
        for (token, user) in &tokens {
            let hash = token_hash(token);
            let started = Instant::now();
            let grant = store.find_access(user, &hash).await;
            times.push(started.elapsed());
            match grant {
                Ok(Some(grant)) if grant.user == user => {}
                Ok(_) => {
                    return Err(
                        "a seeded token was not found: wrong --base, secret, count or users?"
                            .into(),
                    );
                }
                Err(e) => return Err(format!("lookup: {e}")),
            }
        }
        times.sort_unstable();
        report(&format!("lookup_{pass}"), &times);
    }

    let verifier = TokenVerifier::new(args.secret.as_bytes(), Algorithm::HS256, 5, None);
    let now_ms = seed::now_s() * 1000;
    let mut times = Vec::with_capacity(tokens.len());
    for (token, _) in &tokens {
        let started = Instant::now();
        let claims = verifier.verify(token, now_ms).map_err(|e| {
            format!("a seeded token does not verify: {e:?} (access tokens live a day from --base)")
        })?;
        let live = store
            .find_access(&claims.sub, &token_hash(token))
            .await
            .map_err(|e| format!("lookup: {e}"))?
            .filter(|grant| grant.expire_at_ms > now_ms && grant.user == claims.sub);
        times.push(started.elapsed());
        if live.is_none() {
            return Err("a seeded session is not live".into());
        }
    }
    times.sort_unstable();
    report("check", &times);

    let mut times = Vec::with_capacity(args.lists);
    let mut listed = 0;
    for _ in 0..args.lists {
        let user = seed::user_id(random.below(args.users));
        if args.cold_lists {
            drop_from_page_cache(&args.dir)?;
        }
        let started = Instant::now();
        let sessions = store
            .list_user(&user)
            .await
            .map_err(|e| format!("list_user: {e}"))?;
        times.push(started.elapsed());
        listed += sessions.len();
    }
    times.sort_unstable();
    println!("list_sessions_per_user: {}", listed / args.lists);
    report("list_user", &times);

    if args.writes > 0 {
        measure_writes(args, &store, &seeder, &mut random).await?;
    }
    if args.churn > 0 {
        measure_churn(args, &store, &seeder, &mut random).await?;
    }

    println!("disk_bytes: {}", seed::disk_bytes(&args.dir));
    let (rss, peak) = seed::rss_kib();
    println!("rss_kib: {rss}");
    println!("rss_peak_kib: {peak}");
    Ok(())
}

/// Login numbers of the sessions `--writes` creates: past any seeded user's logins, so their
/// tokens are new.
const FRESH_LOGINS: u64 = 100_000_000;

/// The `--writes` rounds (see the module's doc).
async fn measure_writes(
    args: &Args,
    store: &SledStore,
    seeder: &seed::Seeder,
    random: &mut seed::SplitMix,
) -> Result<(), String> {
    let stall = Stall::start();
    let [mut create, mut revoke, mut revoke_user] = [(); 3].map(|()| (Vec::new(), Vec::new()));
    for round in 0..args.writes {
        let n = random.below(args.users);
        let user = seed::user_id(n);
        let session = seeder.login(&user, FRESH_LOGINS + round).session;
        let id = session.session_id();

        let ran = stall.watch(args, store.create(&session)).await?;
        ran.record(&mut create);
        ran.output.map_err(|e| format!("create: {e}"))?;

        let ran = stall.watch(args, store.revoke(&user, id)).await?;
        match ran.output {
            Ok(Some(_)) => ran.record(&mut revoke),
            Ok(None) => return Err("revoke: the session just created is not there".into()),
            Err(e) => return Err(format!("revoke: {e}")),
        }

        // User n holds seeded sessions n, n + users, n + 2 * users, ...: its logins 0..seeded.
        let seeded = (args.count - n).div_ceil(args.users);
        let ran = stall.watch(args, store.revoke_user(&user)).await?;
        match ran.output {
            Ok(removed) if removed as u64 == seeded => ran.record(&mut revoke_user),
            Ok(removed) => {
                return Err(format!(
                    "revoke_user removed {removed} sessions of {user}, not the {seeded} seeded"
                ));
            }
            Err(e) => return Err(format!("revoke_user: {e}")),
        }
        store
            .import((0..seeded).map(|k| seeder.login(&user, k).session))
            .map_err(|e| format!("importing {user}'s sessions again: {e}"))?;
    }
    for (name, (mut times, mut stalls)) in [
        ("create", create),
        ("revoke", revoke),
        ("revoke_user", revoke_user),
    ] {
        times.sort_unstable();
        stalls.sort_unstable();
        report(name, &times);
        report(&format!("{name}_stall"), &stalls);
    }
    Ok(())
}

/// The `--churn` rounds (see the module's doc). Their logins are numbered past those of
/// `--writes`, so their tokens are new too.
async fn measure_churn(
    args: &Args,
    store: &SledStore,
    seeder: &seed::Seeder,
    random: &mut seed::SplitMix,
) -> Result<(), String> {
    println!("churn_rounds: {}", args.churn);
    println!("churn_disk_bytes_0: {}", seed::disk_bytes(&args.dir));
    let first_login = FRESH_LOGINS + args.writes;
    let started = Instant::now();
    for tenth in 1..=10 {
        let rounds = (args.churn * (tenth - 1) / 10)..(args.churn * tenth / 10);
        for round in rounds {
            let user = seed::user_id(random.below(args.users));
            let session = seeder.login(&user, first_login + round).session;
            store
                .create(&session)
                .await
                .map_err(|e| format!("create: {e}"))?;
            match store.revoke(&user, session.session_id()).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err("revoke: the session just created is not there".into()),
                Err(e) => return Err(format!("revoke: {e}")),
            }
        }
        println!("churn_disk_bytes_{tenth}: {}", seed::disk_bytes(&args.dir));
    }
    let rate = args.churn as f64 / started.elapsed().as_secs_f64();
    println!("churn_rounds_per_s: {rate:.0}");
    Ok(())
}

/// A task that wakes every millisecond, noting the longest gap between its wake-ups: how long
/// the runtime's only thread was kept from it.
struct Stall {
    longest_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// What [`Stall::watch`] saw of one call.
struct Ran<T> {
    output: T,
    took: Duration,
    stall: Duration,
}

impl<T> Ran<T> {
    fn record(&self, into: &mut (Vec<Duration>, Vec<Duration>)) {
        into.0.push(self.took);
        into.1.push(self.stall);
    }
}

impl Stall {
    fn start() -> Stall {
        use std::sync::atomic::Ordering;
        let longest_us = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let noted = longest_us.clone();
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let now = Instant::now();
                let gap = u64::try_from(now.duration_since(last).as_micros()).unwrap_or(u64::MAX);
                noted.fetch_max(gap, Ordering::Relaxed);
                last = now;
            }
        });
        Stall { longest_us }
    }

    /// Runs `call` (the store dropped from the page cache first, with `--cold-lists`), timing
    /// it and noting the longest gap in the ticking meanwhile.
    async fn watch<T>(&self, args: &Args, call: impl Future<Output = T>) -> Result<Ran<T>, String> {
        use std::sync::atomic::Ordering;
        if args.cold_lists {
            drop_from_page_cache(&args.dir)?;
        }
        // Lets the ticking resume after whatever held the thread before (the import, the
        // dropping), then starts afresh.
        tokio::time::sleep(Duration::from_millis(3)).await;
        self.longest_us.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let output = call.await;
        let took = started.elapsed();
        // A wake-up that the call delayed is noted once the ticking task runs again.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let stall = Duration::from_micros(self.longest_us.load(Ordering::Relaxed));
        Ok(Ran {
            output,
            took,
            stall,
        })
    }
}
