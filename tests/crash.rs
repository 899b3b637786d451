//! Crash safety: the real `sessiongate` binary is killed with SIGKILL at random moments while
//! logins, refreshes and revocations are in flight, then restarted on the same store, cycle
//! after cycle. After every restart:
//!
//! - the store opens: the process stays up and answers `/healthz` within 10 s;
//! - every session whose revocation (`DELETE` one, `DELETE` all, logout) was answered 2xx is
//!   still revoked: its access token and its refresh token are both refused with 401;
//! - every session whose login was answered 200 and that was not revoked since is listed by
//!   `GET /api/account/sessions` under the SHA-512 of the latest access token answered for
//!   it, and that token is accepted.
//!
//! A request cut off by the kill may or may not have taken effect. The ledger records only
//! answered operations; a session an unanswered operation touched is checked for consistency
//! (its token works exactly when the store lists it) and then followed in whichever state it
//! turned out to be in.
//!
//! Each virtual user's operations are serial, and the stand-in's clock moves one second before
//! each login or refresh, so every token a user is issued is unique (two logins of one user in
//! the same second would share tokens, and the gateway keeps one session per token by design).
//!
//! `CRASH_CYCLES` sets the number of cycles (default 50); `CRASH_SEED` replays a run (the seed
//! is printed at the start and in every failure). `cargo test --test crash -- --nocapture`
//! shows the totals.
//!
//! Here: the cycles and the totals. `crash/process.rs` starts and kills the binary,
//! `crash/client.rs` talks to it, `crash/ledger.rs` drives one user's operations and records
//! what was answered, `crash/check.rs` compares a ledger with the store after a restart.

#[path = "crash/check.rs"]
mod check;
#[path = "crash/client.rs"]
mod client;
#[path = "crash/ledger.rs"]
mod ledger;
#[path = "crash/process.rs"]
mod process;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use share_stand_in::{StandIn, StandInConfig, User};

use client::Api;
use ledger::{Ledger, State, Tally};
use process::{RunningGateway, log_tail, read_from};

/// The signing secret the gateway and the stand-in share.
pub(crate) const SECRET: &str = "crash-test-secret-7c21e9";
/// Virtual users, one task each.
const USERS: usize = 6;
/// When the kill comes after the load starts, in ms.
const KILL_AFTER_MS: std::ops::Range<u64> = 20..350;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answered_revocations_and_sessions_survive_sigkill_at_random_moments() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .map(|v| v.parse().expect("CRASH_CYCLES is a number"))
        .unwrap_or(50);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .map(|v| v.parse().expect("CRASH_SEED is a number"))
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.expect("the clock is after 1970").as_nanos() as u64
        });
    println!("crash: {cycles} cycles, seed {seed} (replay with CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let accounts: Vec<User> = (0..USERS).map(account).collect();
    let uploader = Arc::new(
        StandIn::start(StandInConfig {
            secret: SECRET.into(),
            issuer: None,
            users: accounts.clone(),
        })
        .await,
    );
    let work = tempfile::tempdir().expect("a temporary directory");
    let log = work.path().join("gateway.log");
    let mut ledgers: Vec<Ledger> = accounts.into_iter().map(Ledger::new).collect();
    let started = Instant::now();
    let fail = |cycle: usize, message: String| -> ! {
        panic!(
            "cycle {cycle} of {cycles} (seed {seed}; replay with CRASH_SEED={seed}): {message}\n\
             --- gateway log, last lines ---\n{}",
            log_tail(&log, 40)
        )
    };

    // Each cycle checks what the previous kill left, then loads the gateway and kills it;
    // one last start checks the last kill.
    for cycle in 1..=cycles + 1 {
        let mut gateway = RunningGateway::start(work.path(), &uploader.url(), &log)
            .await
            .unwrap_or_else(|e| fail(cycle, e));
        let api = Api::new(gateway.main);
        ledgers = for_each_user(ledgers, |ledger| {
            let (api, uploader) = (api.clone(), uploader.clone());
            async move { ledger.check(&api, &uploader).await }
        })
        .await
        .unwrap_or_else(|e| fail(cycle, e));
        if cycle > cycles {
            break;
        }
        let kill_after = Duration::from_millis(rng.random_range(KILL_AFTER_MS));
        let seeds: Vec<u64> = (0..USERS).map(|_| rng.random()).collect();
        let load = for_each_user(ledgers, |mut ledger| {
            let (api, uploader) = (api.clone(), uploader.clone());
            let seed = seeds[ledger.index];
            async move {
                let mut rng = StdRng::seed_from_u64(seed);
                ledger
                    .load(&api, &uploader, &mut rng)
                    .await
                    .map(|()| ledger)
            }
        });
        let kill = async {
            tokio::time::sleep(kill_after).await;
            gateway.kill()
        };
        let (loaded, killed) = tokio::join!(load, kill);
        killed.unwrap_or_else(|e| fail(cycle, e));
        ledgers = loaded.unwrap_or_else(|e| fail(cycle, e));
    }

    // The gateway never logged an error: no store failure, no token it could not verify.
    let errors: Vec<String> = read_from(&log, 0)
        .lines()
        .filter(|line| line.contains("ERROR"))
        .map(str::to_string)
        .collect();
    if !errors.is_empty() {
        fail(
            cycles,
            format!("the gateway logged errors:\n{}", errors.join("\n")),
        );
    }

    let mut totals = Tally::default();
    for ledger in &ledgers {
        totals.add(&ledger.tally);
    }
    let revoked_now: usize = ledgers
        .iter()
        .map(|l| {
            l.sessions
                .iter()
                .filter(|s| s.state == State::Revoked)
                .count()
        })
        .sum();
    println!(
        "crash: {cycles} SIGKILL cycles in {:.1} s; answered: {} logins, {} refreshes, {} \
         revocations ({} DELETE one, {} DELETE all, {} logout); {} requests cut off by the \
         kills (of the cut-off refreshes and revocations, {} had taken effect, {} had not); \
         checked after the {} restarts: {} revoked-session checks (access and refresh token \
         both refused; {} distinct revoked sessions at the end), {} live-session checks \
         (listed under the latest token)",
        started.elapsed().as_secs_f64(),
        totals.logins,
        totals.refreshes,
        totals.revoked_one + totals.revoked_all + totals.logouts,
        totals.revoked_one,
        totals.revoked_all,
        totals.logouts,
        totals.unanswered,
        totals.pending_resolved_gone,
        totals.pending_resolved_live,
        cycles,
        totals.revoked_checked,
        revoked_now,
        totals.live_checked,
    );
    assert!(totals.revoked_checked > 0 && totals.live_checked > 0);
}

/// The stand-in account of virtual user `index` (no two-factor).
fn account(index: usize) -> User {
    User {
        id: format!("5f4bff121037e424a17a{index:04x}"),
        email: format!("user{index}@example.com"),
        password: format!("user{index}-password"),
        two_factor: false,
    }
}

/// Runs `f` on every ledger at once; gives the ledgers back in order, or the first failure.
async fn for_each_user<F, Fut>(ledgers: Vec<Ledger>, f: F) -> Result<Vec<Ledger>, String>
where
    F: Fn(Ledger) -> Fut,
    Fut: std::future::Future<Output = Result<Ledger, String>> + Send + 'static,
{
    let tasks: Vec<_> = ledgers.into_iter().map(|l| tokio::spawn(f(l))).collect();
    let mut done = Vec::with_capacity(tasks.len());
    let mut failures = Vec::new();
    for task in tasks {
        match task.await.expect("a user task does not panic") {
            Ok(ledger) => done.push(ledger),
            Err(failure) => failures.push(failure),
        }
    }
    match failures.is_empty() {
        true => Ok(done),
        false => Err(failures.join("\n")),
    }
}
