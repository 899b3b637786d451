//! How sled's file grows under churn, for the write patterns the session store is made of:
//! sled alone, not the gateway's code (benches/README.md, "How long a compaction lasts").
//!
//! ```sh
//! cargo run --release --example sled_growth -- <new dir> <pattern> \
//!     [--entries 300000] [--pairs 300000] [--no-transaction]
//! ```
//!
//! Fills a new store with `--entries` entries (in batches, as `SledStore::import` does), then
//! runs `--pairs` pairs of writes that leave the live data as it was, flushing after each
//! write as the store does. Prints the MB on disk after the fill and after each tenth of the
//! pairs. The patterns:
//! - `random`: one tree, random 64-byte keys (like the token hashes), 250-byte values; a pair
//!   inserts a new key and removes a random live one;
//! - `in-out`: one tree of random 64-byte keys, 250-byte values; a pair inserts a new key and
//!   removes that same key (a token's hash in `by_access`, from a login to its logout);
//! - `increasing`: one tree, increasing 8-byte keys (like session ids and expiry keys); a pair
//!   inserts the next key and removes it;
//! - `buckets`: one tree holding, for each of `--entries / 1000` users, 2 KB values under
//!   user-prefixed keys and an 8-byte head; a pair rewrites a random user's last value with
//!   one more 250-byte entry, then without it, and the head each time (a login and its
//!   logout in `by_user`);
//! - `five-trees`: the store's five trees: per session an id (`sessions`), two random hashes
//!   (`by_access`, `by_refresh`), an expiry key (`by_expiry`) and a 250-byte entry under its
//!   user (`by_user`); a pair writes one new session's five entries in one transaction, then
//!   removes them in another (`--no-transaction`: one write at a time);
//! - `one-tree`: the same five entries in one tree, each under a one-byte prefix.

#![warn(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

#[path = "../benches/support/seed.rs"]
#[allow(dead_code)]
mod seed;

const USAGE: &str = "usage: sled_growth <new dir> \
                     random|in-out|increasing|buckets|five-trees|one-tree \
                     [--entries N] [--pairs N] [--no-transaction]";

/// The value of one session's entry under its user, about a bucket record's size.
const ENTRY_LEN: usize = 250;

#[derive(Clone, Copy, PartialEq)]
enum Pattern {
    Random,
    InOut,
    Increasing,
    Buckets,
    FiveTrees,
    OneTree,
}

struct Args {
    dir: PathBuf,
    pattern: Pattern,
    entries: u64,
    pairs: u64,
    transaction: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut entries = 300_000;
    let mut pairs = 300_000;
    let mut transaction = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value.parse().map_err(|_| format!("{name} {value:?}"))
        };
        match arg.as_str() {
            "--entries" => entries = number("--entries")?.max(1000),
            "--pairs" => pairs = number("--pairs")?.max(10),
            "--no-transaction" => transaction = false,
            _ => positional.push(arg),
        }
    }
    let [dir, pattern] =
        <[String; 2]>::try_from(positional).map_err(|_| "two arguments are needed".to_owned())?;
    let pattern = match pattern.as_str() {
        "random" => Pattern::Random,
        "in-out" => Pattern::InOut,
        "increasing" => Pattern::Increasing,
        "buckets" => Pattern::Buckets,
        "five-trees" => Pattern::FiveTrees,
        "one-tree" => Pattern::OneTree,
        _ => return Err(format!("unknown pattern {pattern:?}")),
    };
    let dir = PathBuf::from(dir);
    if dir.exists() {
        return Err(format!("{} exists: give a new directory", dir.display()));
    }
    Ok(Args {
        dir,
        pattern,
        entries,
        pairs,
        transaction,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sled_growth: {message}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sled_growth: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A 64-byte key made from `n` alone, as random as a token's hash.
fn hash_key(n: u64) -> Vec<u8> {
    let mut random = seed::SplitMix(n);
    (0..8)
        .flat_map(|_| random.below(u64::MAX).to_be_bytes())
        .collect()
}

/// The key of entry `n` in the single-tree patterns: increasing, or random.
fn single_key(pattern: Pattern, n: u64) -> Vec<u8> {
    match pattern {
        Pattern::Increasing => n.to_be_bytes().to_vec(),
        _ => hash_key(n),
    }
}

/// A user's key prefix, like the store's for a 24-hex-digit id; alone, the user's head.
fn user_prefix(user: u64) -> Vec<u8> {
    format!("{user:024x}").into_bytes()
}

/// One session's entries, as (tree, key, value): `sessions`, `by_access`, `by_refresh`,
/// `by_expiry`, `by_user`.
fn session_entries(n: u64, users: u64) -> [(usize, Vec<u8>, Vec<u8>); 5] {
    let id = n.to_be_bytes().to_vec();
    let mut expiry = (n + (1 << 40)).to_be_bytes().to_vec();
    expiry.extend_from_slice(&id);
    let user_key = [user_prefix(n % users), id.clone()].concat();
    [
        (0, id.clone(), vec![2; 30]),
        (1, hash_key(2 * n), vec![3; 40]),
        (2, hash_key(2 * n + 1), id),
        (3, expiry, Vec::new()),
        (4, user_key, vec![1; ENTRY_LEN]),
    ]
}

/// A user's bucket key (`buckets`).
fn bucket_key(user: u64, number: u64) -> Vec<u8> {
    [user_prefix(user), number.to_be_bytes().to_vec()].concat()
}

fn run(args: &Args) -> sled::Result<()> {
    let db = sled::Config::new().path(&args.dir).open()?;
    let names = [
        "sessions",
        "by_access",
        "by_refresh",
        "by_expiry",
        "by_user",
    ];
    let trees = names
        .iter()
        .map(|name| db.open_tree(name))
        .collect::<sled::Result<Vec<_>>>()?;
    let users = args.entries / 1000;
    // Where each of a session's entries goes: its own tree, or (`one-tree`) the first tree
    // under a one-byte prefix.
    let place = |(tree, key, value): (usize, Vec<u8>, Vec<u8>)| match args.pattern {
        Pattern::OneTree => (0, [&[tree as u8][..], &key].concat(), value),
        _ => (tree, key, value),
    };
    let full_bucket = vec![1; 8 * ENTRY_LEN];
    let open_bucket = vec![1; 4 * ENTRY_LEN];
    let grown_bucket = vec![1; 5 * ENTRY_LEN];
    let buckets_per_user = 1000 / 8;

    // The fill, in batches of 10,000 entries a tree.
    let mut batches: Vec<sled::Batch> = names.iter().map(|_| sled::Batch::default()).collect();
    let apply = |batches: &mut [sled::Batch]| -> sled::Result<()> {
        for (tree, batch) in trees.iter().zip(batches.iter_mut()) {
            tree.apply_batch(std::mem::take(batch))?;
        }
        Ok(())
    };
    match args.pattern {
        Pattern::Random | Pattern::InOut | Pattern::Increasing => {
            for n in 0..args.entries {
                batches[0].insert(single_key(args.pattern, n), vec![7; ENTRY_LEN]);
                if n % 10_000 == 9_999 {
                    apply(&mut batches)?;
                }
            }
        }
        Pattern::Buckets => {
            for user in 0..users {
                for number in 0..buckets_per_user {
                    let value = if number + 1 == buckets_per_user {
                        &open_bucket
                    } else {
                        &full_bucket
                    };
                    batches[0].insert(bucket_key(user, number), value.as_slice());
                }
                batches[0].insert(user_prefix(user), &[0; 8][..]);
                apply(&mut batches)?;
            }
        }
        Pattern::FiveTrees | Pattern::OneTree => {
            for n in 0..args.entries {
                for (tree, key, value) in session_entries(n, users).map(place) {
                    batches[tree].insert(key, value);
                }
                if n % 10_000 == 9_999 {
                    apply(&mut batches)?;
                }
            }
        }
    }
    apply(&mut batches)?;
    db.flush()?;
    println!(
        "filled {} entries: {} MB",
        args.entries,
        seed::disk_bytes(&args.dir) / 1_000_000
    );

    let mut random = seed::SplitMix(42);
    let started = Instant::now();
    for pair in 0..args.pairs {
        let n = args.entries + pair;
        match args.pattern {
            Pattern::Random => {
                trees[0].insert(hash_key(n), vec![7; ENTRY_LEN])?;
                db.flush()?;
                // A random live key: most of those drawn early on still are.
                while trees[0].remove(hash_key(random.below(n)))?.is_none() {}
                db.flush()?;
            }
            Pattern::InOut | Pattern::Increasing => {
                let key = single_key(args.pattern, n);
                trees[0].insert(key.as_slice(), vec![7; ENTRY_LEN])?;
                db.flush()?;
                trees[0].remove(key)?;
                db.flush()?;
            }
            Pattern::Buckets => {
                let user = random.below(users);
                for value in [&grown_bucket, &open_bucket] {
                    trees[0].insert(bucket_key(user, buckets_per_user - 1), value.as_slice())?;
                    trees[0].insert(user_prefix(user), &[1; 8][..])?;
                    db.flush()?;
                }
            }
            Pattern::FiveTrees | Pattern::OneTree => {
                let entries = session_entries(n, users).map(place);
                for insert in [true, false] {
                    write_session(&trees, &entries, insert, args.transaction)?;
                    db.flush()?;
                }
            }
        }
        if (pair + 1) % (args.pairs / 10) == 0 {
            println!(
                "{} pairs: {} MB ({:.0} pairs/s)",
                pair + 1,
                seed::disk_bytes(&args.dir) / 1_000_000,
                (pair + 1) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Inserts (or removes) one session's entries, in one transaction over the five trees or
/// one write at a time.
fn write_session(
    trees: &[sled::Tree],
    entries: &[(usize, Vec<u8>, Vec<u8>); 5],
    insert: bool,
    transaction: bool,
) -> sled::Result<()> {
    if !transaction {
        for (tree, key, value) in entries {
            if insert {
                trees[*tree].insert(key.as_slice(), value.as_slice())?;
            } else {
                trees[*tree].remove(key.as_slice())?;
            }
        }
        return Ok(());
    }
    let result = (&trees[0], &trees[1], &trees[2], &trees[3], &trees[4]).transaction(
        |(sessions, by_access, by_refresh, by_expiry, by_user)| {
            let trees = [sessions, by_access, by_refresh, by_expiry, by_user];
            for (tree, key, value) in entries {
                if insert {
                    trees[*tree].insert(key.as_slice(), value.as_slice())?;
                } else {
                    trees[*tree].remove(key.as_slice())?;
                }
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        },
    );
    result.map_err(|e| match e {
        sled::transaction::TransactionError::Storage(e) => e,
        sled::transaction::TransactionError::Abort(()) => {
            unreachable!("the transaction never aborts")
        }
    })
}
