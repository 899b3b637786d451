//! Micro-benchmarks of the gateway's hot and session paths (criterion).
//!
//! ```sh
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench check
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench check -- check/1M   # one group
//! ```
//!
//! - `check/{1k,1M}`: the per-request check, step for step: `bearer_token` → the clock →
//!   `TokenVerifier::verify` → `token_hash` (SHA-512) → `SessionStore::find_access` on a
//!   `SledStore` behind `Arc<dyn SessionStore>` → the expiry and `sub` comparison; each
//!   iteration takes the next of 4,096 requests carrying the tokens of random live sessions.
//!   `check_metered/1M` adds the gateway's timing wrapper (`MeteredStore`), which the running
//!   gateway also has. `authenticate/1M` is the gateway's own `Authenticator` on that metered
//!   store, as a request on a new connection meets it (no token memo): the check, the
//!   decision counted, and the session's use noted for `lastActiveAt`. `runtime/block_on` is the cost of
//!   driving one ready future on the current-thread runtime, included in every store bench.
//! - `check_parts/{verify,sha512,lookup_1M}`: the check's three costly steps alone: the JWT
//!   verification, the SHA-512 of the token, and `find_access` in the 1M store.
//! - `device/{chrome,postman}`: `Device::from_user_agent`.
//! - `list_user/{10,1000}`: listing a user's sessions in the 1M store.
//! - `create/1M`: creating a session on login (one transaction over the trees and a flush to
//!   disk); `revoke/1M`: revoking one, flush included.
//!
//! The stores are built once per run in a temporary directory with the bulk loader, by a
//! child process (this binary again), then opened as a starting gateway would; the time it
//! takes is printed. The 1M store
//! holds 1,000,000 sessions of 100,000 users (10 each) and one user with 1,000.

use std::cell::{Cell, OnceCell};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compact_str::CompactString;
use criterion::{Criterion, criterion_group};
use http::header::{ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::Algorithm;
use sessiongate::auth::{Authenticator, TokenRejection, TokenVerifier, bearer_token, token_hash};
use sessiongate::metrics::Metrics;
use sessiongate::sessions::{
    Activity, Clock, Device, MeteredStore, Session, SessionId, SessionStore, SledStore, SystemClock,
};
use tokio::runtime::Runtime;

#[allow(dead_code)]
mod support {
    pub mod seed;
}
use support::seed::{self, Seeder};

// The gateway's allocator: the check measured as the gateway runs it.
sessiongate::global_allocator!();

const SECRET: &[u8] = b"criterion-bench-secret";
/// Requests cycled through by the check benchmarks.
const REQUESTS: usize = 4096;
/// The user with 1,000 sessions in the large store.
const HEAVY_USER: u64 = 1 << 40;

/// A store in a temporary directory, and requests carrying its tokens.
struct Fixture {
    _dir: tempfile::TempDir,
    sled: SledStore,
    store: Arc<dyn SessionStore>,
    requests: Vec<HeaderMap>,
}

fn request(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
    headers.insert(USER_AGENT, HeaderValue::from_static(seed::CHROME_UA));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is ASCII");
    headers.insert(AUTHORIZATION, value);
    headers
}

/// The environment variable that makes this binary build a store instead of benchmarking.
const BUILD_ENV: &str = "SESSIONGATE_BENCH_BUILD_STORE";

/// The sessions of a fixture: `count` dealt to `users` users, plus `HEAVY_USER` with `heavy`.
fn seeded(seeder: &Seeder, count: u64, users: u64, heavy: u64) -> impl Iterator<Item = Session> {
    let heavy_user = seed::user_id(HEAVY_USER);
    (0..count)
        .map(move |i| seeder.nth(i, users).session)
        .chain((0..heavy).map(move |k| seeder.login(&heavy_user, k).session))
}

/// In the child process: fills the store described by `spec` ("dir count users heavy base").
fn build_store(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let [dir, count, users, heavy, base] = parts[..] else {
        panic!("{BUILD_ENV}: expected \"dir count users heavy base\", got {spec:?}");
    };
    let number = |text: &str| text.parse::<u64>().expect("a number");
    let base = i64::try_from(number(base)).expect("a time");
    let seeder = Seeder::new(SECRET, base, 86_400);
    let store = SledStore::open(std::path::Path::new(dir)).expect("the store opens");
    let sessions = seeded(&seeder, number(count), number(users), number(heavy));
    store.import(sessions).expect("the bulk import succeeds");
}

/// A store of `count` sessions dealt to `users` users, plus `HEAVY_USER` with `heavy`.
///
/// A child process (this binary again) fills it, so that the import's garbage (sled's cache
/// and a fragmented heap) is not in this process; this one then opens it as a gateway
/// starting on it would.
fn fixture(rt: &Runtime, count: u64, users: u64, heavy: u64) -> Fixture {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let base = seed::now_s();
    let spec = format!("{} {count} {users} {heavy} {base}", dir.path().display());
    let exe = std::env::current_exe().expect("the benchmark binary's path");
    let status = std::process::Command::new(exe)
        .env(BUILD_ENV, spec)
        .status()
        .expect("the store-building process starts");
    assert!(status.success(), "building the store failed: {status}");
    eprintln!(
        "store of {} sessions built in {:.1} s ({} MiB on disk)",
        count + heavy,
        started.elapsed().as_secs_f64(),
        seed::disk_bytes(dir.path()) >> 20
    );
    let sled = SledStore::open(dir.path()).expect("the store opens");
    let store: Arc<dyn SessionStore> = Arc::new(sled.clone());
    let seeder = Seeder::new(SECRET, base, 86_400);
    let mut random = seed::SplitMix(42);
    let requests: Vec<HeaderMap> = (0..REQUESTS)
        .map(|_| request(&seeder.nth(random.below(count), users).access_token))
        .collect();
    // Every request must pass, or the benchmark would measure a refusal.
    let verifier = TokenVerifier::new(SECRET, Algorithm::HS256, 5, None);
    for headers in &requests {
        rt.block_on(check(&verifier, &SystemClock, store.as_ref(), headers))
            .expect("every seeded token passes the check");
    }
    Fixture {
        _dir: dir,
        sled,
        store,
        requests,
    }
}

/// `Gateway::check_token`, step for step.
async fn check(
    verifier: &TokenVerifier,
    clock: &dyn Clock,
    store: &dyn SessionStore,
    headers: &HeaderMap,
) -> Result<(CompactString, SessionId), TokenRejection> {
    let token = bearer_token(headers)?;
    let now = clock.now_ms();
    let claims = verifier.verify(token, now)?;
    let grant = store
        .find_access(&claims.sub, &token_hash(token))
        .await
        .map_err(|_| TokenRejection::Invalid)?
        .filter(|grant| grant.expire_at_ms > now && grant.user == claims.sub)
        .ok_or(TokenRejection::UnknownSession)?;
    Ok((grant.user, grant.session_id))
}

/// Benchmarks `check` over the fixture's requests, against `store` (built on first use).
fn bench_check<'a>(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    fixture: impl Fn() -> &'a Fixture,
    store: impl Fn(&'a Fixture) -> Arc<dyn SessionStore>,
) {
    let verifier = TokenVerifier::new(SECRET, Algorithm::HS256, 5, None);
    let clock = SystemClock;
    let next = Cell::new(0usize);
    c.bench_function(name, |b| {
        let f = fixture();
        let store = store(f);
        b.iter(|| {
            let i = next.get();
            next.set((i + 1) % REQUESTS);
            let headers = black_box(&f.requests[i]);
            black_box(rt.block_on(check(&verifier, &clock, store.as_ref(), headers)))
        })
    });
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let small = OnceCell::new();
    let large = OnceCell::new();
    let small = || small.get_or_init(|| fixture(&rt, 1_000, 100, 0));
    let large = || large.get_or_init(|| fixture(&rt, 1_000_000, 100_000, 1_000));

    c.bench_function("runtime/block_on", |b| {
        b.iter(|| rt.block_on(async { black_box(1) }))
    });

    bench_check(c, &rt, "check/1k", small, |f| f.store.clone());
    bench_check(c, &rt, "check/1M", large, |f| f.store.clone());
    bench_check(c, &rt, "check_metered/1M", large, |f| {
        Arc::new(MeteredStore::new(f.store.clone(), Arc::new(Metrics::new())))
    });

    c.bench_function("authenticate/1M", |b| {
        let f = large();
        let metrics = Arc::new(Metrics::new());
        let authenticator = Authenticator::new(
            Arc::new(TokenVerifier::new(SECRET, Algorithm::HS256, 5, None)),
            Arc::new(MeteredStore::new(f.store.clone(), metrics.clone())),
            Arc::new(SystemClock),
            metrics,
            Arc::new(Activity::default()),
        );
        let next = Cell::new(0usize);
        b.iter(|| {
            let i = next.get();
            next.set((i + 1) % REQUESTS);
            let headers = black_box(&f.requests[i]);
            black_box(rt.block_on(authenticator.authenticate(headers, None)))
        })
    });

    // The check's three costly steps on their own, to see where its time goes.
    let tokens = |f: &Fixture| -> Vec<String> {
        f.requests
            .iter()
            .map(|h| bearer_token(h).expect("a bearer token").to_owned())
            .collect()
    };
    c.bench_function("check_parts/verify", |b| {
        let verifier = TokenVerifier::new(SECRET, Algorithm::HS256, 5, None);
        let tokens = tokens(small());
        let now = SystemClock.now_ms();
        let next = Cell::new(0usize);
        b.iter(|| {
            let i = next.get();
            next.set((i + 1) % REQUESTS);
            black_box(verifier.verify(black_box(&tokens[i]), now))
        })
    });
    c.bench_function("check_parts/sha512", |b| {
        let tokens = tokens(small());
        let next = Cell::new(0usize);
        b.iter(|| {
            let i = next.get();
            next.set((i + 1) % REQUESTS);
            black_box(token_hash(black_box(&tokens[i])))
        })
    });
    c.bench_function("check_parts/lookup_1M", |b| {
        let f = large();
        let verifier = TokenVerifier::new(SECRET, Algorithm::HS256, 5, None);
        let now = SystemClock.now_ms();
        let lookups: Vec<_> = tokens(f)
            .iter()
            .map(|token| {
                let claims = verifier
                    .verify(token, now)
                    .expect("a seeded token verifies");
                (claims.sub, token_hash(token))
            })
            .collect();
        let next = Cell::new(0usize);
        b.iter(|| {
            let i = next.get();
            next.set((i + 1) % REQUESTS);
            let (user, hash) = &lookups[i];
            black_box(rt.block_on(f.store.find_access(black_box(user), black_box(hash))))
        })
    });

    for (name, agent) in [
        ("device/chrome", seed::CHROME_UA),
        ("device/postman", seed::POSTMAN_UA),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| Device::from_user_agent(black_box(Some(agent))))
        });
    }

    for (name, user, expected) in [
        ("list_user/10", seed::user_id(7), 10),
        ("list_user/1000", seed::user_id(HEAVY_USER), 1_000),
    ] {
        c.bench_function(name, |b| {
            let f = large();
            let listed = rt.block_on(f.store.list_user(&user)).expect("listing");
            assert_eq!(listed.len(), expected);
            b.iter(|| rt.block_on(f.store.list_user(black_box(&user))))
        });
    }

    // Sessions of their own users, so the lookups above stay as built.
    let seeder = Seeder::new(SECRET, seed::now_s(), 300);
    let logins = Cell::new(0u64);
    let fresh = |n: u64| -> Vec<Session> {
        let first = logins.get();
        logins.set(first + n);
        (first..first + n)
            .map(|i| seeder.nth(i, 1_000).session)
            .map(|mut s| {
                s.user = format!("bench-{}", s.user);
                s
            })
            .collect()
    };
    c.bench_function("create/1M", |b| {
        let f = large();
        b.iter_custom(|iters| {
            let sessions = fresh(iters);
            let started = Instant::now();
            for session in &sessions {
                rt.block_on(f.store.create(session)).expect("create");
            }
            started.elapsed()
        })
    });
    c.bench_function("revoke/1M", |b| {
        let f = large();
        b.iter_custom(|iters| {
            let sessions = fresh(iters);
            let ids: Vec<(String, SessionId)> = sessions
                .iter()
                .map(|s| (s.user.clone(), s.session_id()))
                .collect();
            f.sled.import(sessions).expect("import");
            let started = Instant::now();
            for (user, id) in &ids {
                let revoked = rt.block_on(f.store.revoke(user, *id)).expect("revoke");
                assert!(revoked.is_some());
            }
            started.elapsed()
        })
    });
}

/// A long warm-up: the 1M store's pages are read in from disk on first use, and a run
/// with 1 s of warm-up measured `check/1M` at 2-3 times a run with 5 s.
fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(5))
}

criterion_group! {
    name = check_benches;
    config = config();
    targets = benches
}
fn main() {
    if let Ok(spec) = std::env::var(BUILD_ENV) {
        build_store(&spec);
        return;
    }
    // What `criterion_main!(check_benches)` would do.
    check_benches();
    Criterion::default().configure_from_args().final_summary();
}
