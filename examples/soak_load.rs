//! The load of the soak test (`scripts/soak.sh` runs it): virtual users that log in, make
//! authenticated requests, refresh, revoke their own session and log out against a running
//! gateway in front of the stand-in uploader, each on its own connection (reopened every few
//! hundred requests), counting every answer other than the expected one; meanwhile the
//! gateway's resident memory and open file descriptors are sampled from `/proc/<pid>`.
//!
//! ```sh
//! scripts/soak.sh                     # builds, starts the stand-in and the gateway, runs this
//! cargo run --release --example soak_load -- --gateway http://127.0.0.1:8080 \
//!     --pid "$(pgrep -n sessiongate)" --duration 60 [--users 32] [--every 10] [--settle 65] \
//!     [--csv samples.csv]
//! ```
//!
//! Each virtual user mostly sends `GET /api/account` (and now and then its session list or a
//! 128 KiB streamed download), refreshes every ~30 s, and every ~60 s ends its session (by
//! `DELETE /api/account/sessions/:id` or by logout), checks that the old token is now refused
//! with 401, and logs in again. The stand-in's three users are shared; since two logins (or
//! refreshes) of one user in the same second would receive the same tokens, and the gateway
//! keeps one session per token by design, token-issuing requests of one user are at least a
//! second apart (which caps them at about one a second per account: with the default 32
//! virtual users, about 11 per account, the demand is about half of that).
//!
//! Prints a line every `--every` seconds (requests, errors, RSS, fds, threads), then, after
//! the load and `--settle` idle seconds, a summary. The gateway's upstream pool closes a
//! connection idle for 30 s at its next check, and checks every 30 s, so after 65 s every
//! pooled connection should be gone and the descriptors back to where they were before the
//! load. Exits 1 on any error, or if the gateway then holds more descriptors than before.

#![warn(clippy::unwrap_used)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::RngExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
use tokio::sync::Mutex;

const USAGE: &str = "usage: soak_load --gateway <url> [--pid <gateway pid>] [--duration <s>] \
                     [--users <n>] [--every <s>] [--settle <s>] [--csv <file>]";

/// The stand-in's accounts: email, password, whether login asks for the code `123456`.
const ACCOUNTS: [(&str, &str, bool); 3] = [
    ("alice@example.com", "alice-password", false),
    ("bob@example.com", "bob-password", false),
    ("carol@example.com", "carol-password", true),
];
/// Mean seconds between a virtual user's refreshes.
const REFRESH_EVERY_S: f64 = 30.0;
/// Mean seconds between a virtual user's ends of session (revoke or logout, then login).
const END_SESSION_EVERY_S: f64 = 60.0;
/// Requests on one connection before a virtual user opens a new one.
const REQUESTS_PER_CONNECTION: u64 = 300;
/// Size of the streamed download.
const BIG_BYTES: usize = 128 * 1024;
/// Longest wait for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    gateway: String,
    pid: Option<u32>,
    duration: Duration,
    users: usize,
    every: Duration,
    settle: Duration,
    csv: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        gateway: String::new(),
        pid: None,
        duration: Duration::from_secs(180),
        users: 32,
        every: Duration::from_secs(10),
        settle: Duration::from_secs(65),
        csv: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: {v:?}"));
        match flag.as_str() {
            "--gateway" => args.gateway = value.trim_end_matches('/').to_string(),
            "--pid" => args.pid = Some(number(&value)? as u32),
            "--duration" => args.duration = Duration::from_secs(number(&value)?),
            "--users" => args.users = number(&value)? as usize,
            "--every" => args.every = Duration::from_secs(number(&value)?.max(1)),
            "--settle" => args.settle = Duration::from_secs(number(&value)?),
            "--csv" => args.csv = Some(value),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    if args.gateway.is_empty() {
        return Err("--gateway is required".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("soak_load: {message}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let stats = Arc::new(Stats::default());
    let issuing = Arc::new(ACCOUNTS.map(|_| Mutex::new(0u64)));
    let mut samples = Samples::new(args.pid, args.csv.clone());
    samples.take("idle-before", 0.0, &stats);

    let started = Instant::now();
    let deadline = started + args.duration;
    let users: Vec<_> = (0..args.users)
        .map(|n| {
            let user = VirtualUser::new(n, &args.gateway, stats.clone(), issuing.clone());
            tokio::spawn(user.run(deadline))
        })
        .collect();
    let mut next = started + args.every;
    while Instant::now() < deadline {
        tokio::time::sleep_until(next.min(deadline).into()).await;
        let label = if Instant::now() >= deadline {
            "end-of-load"
        } else {
            "load"
        };
        samples.take(label, started.elapsed().as_secs_f64(), &stats);
        next += args.every;
    }
    for user in users {
        user.await.expect("a virtual user does not panic");
    }
    tokio::time::sleep(args.settle).await;
    samples.take("idle-after", started.elapsed().as_secs_f64(), &stats);

    println!("{}", samples.summary(&stats, args.duration));
    let errors = stats.errors.load(Ordering::Relaxed);
    if errors > 0 {
        println!("first errors:");
        for error in stats.first_errors.lock().await.iter() {
            println!("  {error}");
        }
    }
    match errors == 0 && !samples.fd_leak() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

/// Counters shared by the virtual users.
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    logins: AtomicU64,
    refreshes: AtomicU64,
    revocations: AtomicU64,
    logouts: AtomicU64,
    refused_after_end: AtomicU64,
    connections: AtomicU64,
    first_errors: Mutex<Vec<String>>,
}

impl Stats {
    async fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().await;
        if first.len() < 20 {
            first.push(what);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sampling the gateway process

struct Sample {
    label: &'static str,
    at_s: f64,
    requests: u64,
    errors: u64,
    rss_kib: u64,
    fds: u64,
    threads: u64,
}

struct Samples {
    pid: Option<u32>,
    csv: Option<String>,
    taken: Vec<Sample>,
}

impl Samples {
    fn new(pid: Option<u32>, csv: Option<String>) -> Samples {
        if let Some(path) = &csv {
            let header = "label,seconds,requests,errors,rss_kib,fds,threads\n";
            if let Err(error) = std::fs::write(path, header) {
                eprintln!("soak_load: cannot write {path}: {error}");
            }
        }
        Samples {
            pid,
            csv,
            taken: Vec::new(),
        }
    }

    /// Reads the gateway's RSS, fd count and threads, prints a line and appends to the CSV.
    fn take(&mut self, label: &'static str, at_s: f64, stats: &Stats) {
        let (rss_kib, threads, fds) = self.pid.map(read_proc).unwrap_or_default();
        let sample = Sample {
            label,
            at_s,
            requests: stats.requests.load(Ordering::Relaxed),
            errors: stats.errors.load(Ordering::Relaxed),
            rss_kib,
            fds,
            threads,
        };
        let rate = match self.taken.last() {
            Some(last) if sample.at_s > last.at_s => {
                (sample.requests - last.requests) as f64 / (sample.at_s - last.at_s)
            }
            _ => 0.0,
        };
        println!(
            "t={:>6.1}s  requests={:>9} ({:>6.0}/s)  errors={}  rss={:.1} MiB  fds={}  threads={}  [{}]",
            sample.at_s,
            sample.requests,
            rate,
            sample.errors,
            sample.rss_kib as f64 / 1024.0,
            sample.fds,
            sample.threads,
            sample.label,
        );
        if let Some(path) = &self.csv {
            let row = format!(
                "{},{:.1},{},{},{},{},{}\n",
                sample.label,
                sample.at_s,
                sample.requests,
                sample.errors,
                sample.rss_kib,
                sample.fds,
                sample.threads
            );
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut file| std::io::Write::write_all(&mut file, row.as_bytes()));
            if let Err(error) = appended {
                eprintln!("soak_load: cannot append to {path}: {error}");
            }
        }
        self.taken.push(sample);
    }

    /// More descriptors after the load and the settling than before it.
    fn fd_leak(&self) -> bool {
        match (self.taken.first(), self.taken.last()) {
            (Some(first), Some(last)) if self.pid.is_some() => last.fds > first.fds,
            _ => false,
        }
    }

    fn summary(&self, stats: &Stats, duration: Duration) -> String {
        let load: Vec<&Sample> = self
            .taken
            .iter()
            .filter(|s| s.label != "idle-before")
            .collect();
        let (Some(before), Some(after)) = (self.taken.first(), self.taken.last()) else {
            return String::new();
        };
        let max_rss = self.taken.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        let max_fds = self.taken.iter().map(|s| s.fds).max().unwrap_or(0);
        // RSS once warmed up (the first sample under load) and at the end of the load.
        let warm = load.first().map(|s| s.rss_kib).unwrap_or(0);
        let end_of_load = load
            .iter()
            .rfind(|s| s.label == "end-of-load")
            .map(|s| s.rss_kib)
            .unwrap_or(0);
        let requests = stats.requests.load(Ordering::Relaxed);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let mut text = String::from("summary:\n");
        let mut line = |s: String| {
            text.push_str("  ");
            text.push_str(&s);
            text.push('\n');
        };
        line(format!(
            "load: {} s, {} requests ({:.0}/s), {} errors",
            duration.as_secs(),
            requests,
            requests as f64 / duration.as_secs_f64(),
            stats.errors.load(Ordering::Relaxed)
        ));
        line(format!(
            "operations: {} logins, {} refreshes, {} revocations, {} logouts, {} old tokens \
             refused after the end of their session, {} connections opened",
            stats.logins.load(Ordering::Relaxed),
            stats.refreshes.load(Ordering::Relaxed),
            stats.revocations.load(Ordering::Relaxed),
            stats.logouts.load(Ordering::Relaxed),
            stats.refused_after_end.load(Ordering::Relaxed),
            stats.connections.load(Ordering::Relaxed),
        ));
        if self.pid.is_some() {
            line(format!(
                "RSS: {:.1} MiB idle before, {:.1} MiB at the first load sample, {:.1} MiB at \
                 the end of the load, {:.1} MiB max, {:.1} MiB idle after",
                mib(before.rss_kib),
                mib(warm),
                mib(end_of_load),
                mib(max_rss),
                mib(after.rss_kib)
            ));
            line(format!(
                "fds: {} idle before, {} max, {} idle after{}",
                before.fds,
                max_fds,
                after.fds,
                if self.fd_leak() {
                    "  <-- more than before the load: leaked, or idle connections never closed"
                } else {
                    ""
                }
            ));
        }
        text
    }
}

/// VmRSS (KiB), Threads and the number of open descriptors of `pid`.
fn read_proc(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count() as u64)
        .unwrap_or(0);
    (field("VmRSS:"), field("Threads:"), fds)
}

// ---------------------------------------------------------------------------------------
// Virtual users

struct Tokens {
    access: String,
    refresh: String,
}

struct VirtualUser {
    index: usize,
    account: usize,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    on_connection: u64,
    stats: Arc<Stats>,
    /// Per account: the last second in which it was issued tokens.
    issuing: Arc<[Mutex<u64>; 3]>,
    tokens: Option<Tokens>,
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl VirtualUser {
    fn new(
        index: usize,
        base: &str,
        stats: Arc<Stats>,
        issuing: Arc<[Mutex<u64>; 3]>,
    ) -> VirtualUser {
        VirtualUser {
            index,
            account: index % ACCOUNTS.len(),
            base: base.to_string(),
            client: new_client(&stats),
            on_connection: 0,
            stats,
            issuing,
            tokens: None,
        }
    }

    async fn run(mut self, deadline: Instant) {
        let jitter = |mean: f64| Duration::from_secs_f64(mean * rand::rng().random_range(0.5..1.5));
        let mut next_refresh = Instant::now() + jitter(REFRESH_EVERY_S);
        let mut next_end = Instant::now() + jitter(END_SESSION_EVERY_S);
        let mut ends = 0u64;
        while Instant::now() < deadline {
            if self.tokens.is_none() {
                if !self.login().await {
                    // Counted; do not hammer.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                continue;
            }
            let now = Instant::now();
            if now >= next_refresh {
                self.refresh().await;
                next_refresh = now + jitter(REFRESH_EVERY_S);
            } else if now >= next_end {
                ends += 1;
                self.end_session((ends + self.index as u64).is_multiple_of(2))
                    .await;
                next_end = now + jitter(END_SESSION_EVERY_S);
            } else {
                self.authenticated_request().await;
            }
        }
    }

    /// Sends one request; `Err` describes a transport failure.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        if self.on_connection >= REQUESTS_PER_CONNECTION {
            self.client = new_client(&self.stats);
            self.on_connection = 0;
        }
        self.on_connection += 1;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("user-agent", "soak-load/1.0");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(value.to_string()))
            }
            None => Full::default(),
        };
        let request = request.body(body).map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<Answer, String>(Answer {
                status: parts.status,
                body,
            })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result.map_err(|e| format!("{method} {path}: {e}")),
            Err(_) => Err(format!("{method} {path}: no answer in {REQUEST_TIMEOUT:?}")),
        }
    }

    /// Sends a request and checks its status; counts an error otherwise.
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        status: StatusCode,
    ) -> Option<Answer> {
        let what = format!("vu{} {method} {path}", self.index);
        match self.send(method, path, token, body).await {
            Ok(answer) if answer.status == status => Some(answer),
            Ok(answer) => {
                let body = String::from_utf8_lossy(&answer.body);
                let body: String = body.chars().take(200).collect();
                let message = format!("{what}: {} (expected {status}) {body}", answer.status);
                self.stats.error(message).await;
                None
            }
            Err(error) => {
                self.stats.error(format!("vu{}: {error}", self.index)).await;
                None
            }
        }
    }

    /// Logs in (with the code when the account asks for it), at least a second after this
    /// account's last login or refresh.
    async fn login(&mut self) -> bool {
        let issuing = self.issuing.clone();
        let mut last = issuing[self.account].lock().await;
        wait_for_next_second(*last).await;
        let tokens = self.login_exchange().await;
        *last = unix_seconds();
        drop(last);
        let ok = tokens.is_some();
        if ok {
            self.stats.logins.fetch_add(1, Ordering::Relaxed);
        }
        self.tokens = tokens;
        ok
    }

    async fn login_exchange(&mut self) -> Option<Tokens> {
        let (email, password, two_factor) = ACCOUNTS[self.account];
        let credentials = json!({"email": email, "password": password});
        let answer = self
            .expect(
                Method::POST,
                "/api/auth/login",
                None,
                Some(credentials),
                StatusCode::OK,
            )
            .await?;
        let answer = match two_factor {
            false => answer,
            true => {
                let challenge = answer.json()["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let body = json!({"token": challenge, "code": "123456"});
                self.expect(
                    Method::POST,
                    "/api/auth/two-factor",
                    None,
                    Some(body),
                    StatusCode::OK,
                )
                .await?
            }
        };
        self.tokens_of(&answer, "login").await
    }

    /// Refreshes, at least a second after this account's last login or refresh.
    async fn refresh(&mut self) {
        let Some(refresh) = self.tokens.as_ref().map(|t| t.refresh.clone()) else {
            return;
        };
        let issuing = self.issuing.clone();
        let mut last = issuing[self.account].lock().await;
        wait_for_next_second(*last).await;
        let body = json!({"refresh_token": refresh});
        let answer = self
            .expect(
                Method::POST,
                "/api/auth/refresh",
                None,
                Some(body),
                StatusCode::OK,
            )
            .await;
        *last = unix_seconds();
        drop(last);
        let tokens = match answer {
            Some(answer) => self.tokens_of(&answer, "refresh").await,
            None => None,
        };
        if tokens.is_some() {
            self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        }
        // On failure the user starts over with a login.
        self.tokens = tokens;
    }

    /// Ends the session (logout, or `DELETE` by id from the list), checks that the old token
    /// is refused, and leaves the user logged out (the next turn logs in).
    async fn end_session(&mut self, by_logout: bool) {
        let Some(tokens) = self.tokens.take() else {
            return;
        };
        let access = tokens.access.as_str();
        if by_logout {
            if self
                .expect(
                    Method::POST,
                    "/api/auth/logout",
                    Some(access),
                    None,
                    StatusCode::OK,
                )
                .await
                .is_none()
            {
                return;
            }
            self.stats.logouts.fetch_add(1, Ordering::Relaxed);
        } else {
            let Some(id) = self.current_session_id(access).await else {
                return;
            };
            let path = format!("/api/account/sessions/{id}");
            if self
                .expect(Method::DELETE, &path, Some(access), None, StatusCode::OK)
                .await
                .is_none()
            {
                return;
            }
            self.stats.revocations.fetch_add(1, Ordering::Relaxed);
        }
        let refused = self
            .expect(
                Method::GET,
                "/api/account",
                Some(access),
                None,
                StatusCode::UNAUTHORIZED,
            )
            .await;
        if refused.is_some() {
            self.stats.refused_after_end.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The `_id` of the session the token belongs to, from the list (which must mark it).
    async fn current_session_id(&mut self, access: &str) -> Option<String> {
        let answer = self
            .expect(
                Method::GET,
                "/api/account/sessions",
                Some(access),
                None,
                StatusCode::OK,
            )
            .await?;
        let hash = hex::encode(Sha512::digest(access.as_bytes()));
        let json = answer.json();
        let current = json["sessions"].as_array().and_then(|sessions| {
            sessions
                .iter()
                .find(|s| s["current"] == json!(true) && s["accessTokenHash"] == json!(hash))
        });
        match current {
            Some(session) => session["_id"].as_str().map(str::to_string),
            None => {
                let message = format!(
                    "vu{}: the list does not mark the caller's session",
                    self.index
                );
                self.stats.error(message).await;
                None
            }
        }
    }

    /// Mostly `GET /api/account`; sometimes the session list or a streamed download.
    async fn authenticated_request(&mut self) {
        let Some(access) = self.tokens.as_ref().map(|t| t.access.clone()) else {
            return;
        };
        let roll = rand::rng().random_range(0..100);
        if roll < 5 {
            let path = format!("/api/big?bytes={BIG_BYTES}");
            if let Some(answer) = self
                .expect(Method::GET, &path, Some(&access), None, StatusCode::OK)
                .await
                && answer.body.len() != BIG_BYTES
            {
                let message = format!(
                    "vu{}: a download of {} bytes",
                    self.index,
                    answer.body.len()
                );
                self.stats.error(message).await;
            }
        } else if roll < 15 {
            self.current_session_id(&access).await;
        } else {
            self.expect(
                Method::GET,
                "/api/account",
                Some(&access),
                None,
                StatusCode::OK,
            )
            .await;
        }
    }

    async fn tokens_of(&self, answer: &Answer, what: &str) -> Option<Tokens> {
        let json = answer.json();
        match (
            json["access_token"].as_str(),
            json["refresh_token"].as_str(),
        ) {
            (Some(access), Some(refresh)) => Some(Tokens {
                access: access.to_string(),
                refresh: refresh.to_string(),
            }),
            _ => {
                let message = format!("vu{}: a {what} answer without tokens", self.index);
                self.stats.error(message).await;
                None
            }
        }
    }
}

/// A client with its own connection pool (one virtual user's connection).
fn new_client(stats: &Stats) -> Client<HttpConnector, Full<Bytes>> {
    stats.connections.fetch_add(1, Ordering::Relaxed);
    Client::builder(TokioExecutor::new()).build_http()
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Waits until the unix second is past `last`.
async fn wait_for_next_second(last: u64) {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        if now.as_secs() > last {
            return;
        }
        let into = now.subsec_millis() as u64;
        tokio::time::sleep(Duration::from_millis(1000 - into + 5)).await;
    }
}
