//! A stand-in for the Share uploader's API server, to put behind sessiongate by hand.
//!
//! Run with:
//!
//! ```sh
//! JWT_SECRET=dev-secret cargo run --example stand_in_uploader
//! ```
//!
//! It listens on `127.0.0.1:3000`, or on the address in `STAND_IN_LISTEN`, signs tokens with
//! `JWT_SECRET` (give sessiongate the same secret) and, like the uploader, puts `WEB_URI` in
//! the tokens' `iss` when that variable is set. It runs until Ctrl-C.

use std::process::ExitCode;

use share_stand_in::{StandIn, StandInConfig, User};

/// Where the stand-in listens when `STAND_IN_LISTEN` is not set.
const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

/// The stand-in's two-factor code, the same for every user.
const TWO_FACTOR_CODE: &str = "123456";

#[tokio::main]
async fn main() -> ExitCode {
    let secret = match std::env::var("JWT_SECRET") {
        Ok(secret) if !secret.is_empty() => secret,
        _ => {
            eprintln!(
                "JWT_SECRET is not set: the stand-in needs the secret the uploader (and \
                 sessiongate) sign tokens with.\n\
                 Run with: JWT_SECRET=dev-secret cargo run --example stand_in_uploader"
            );
            return ExitCode::FAILURE;
        }
    };
    let listen = std::env::var("STAND_IN_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config = StandInConfig {
        secret,
        issuer: std::env::var("WEB_URI").ok().filter(|uri| !uri.is_empty()),
        users: User::defaults(),
    };
    print_users(&config.users);
    let stand_in = StandIn::start_on(config, listener).await;
    println!("Share uploader stand-in listening on {}", stand_in.url());
    println!("Press Ctrl-C to stop.");

    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {error}");
        return ExitCode::FAILURE;
    }
    drop(stand_in);
    println!("Stopped.");
    ExitCode::SUCCESS
}

/// Prints the accounts one can log in with.
fn print_users(users: &[User]) {
    println!("Users (POST /auth/login with email and password):");
    for user in users {
        let two_factor = if user.two_factor {
            format!(", two-factor code {TWO_FACTOR_CODE}")
        } else {
            String::new()
        };
        println!(
            "  {}  password {}  id {}{two_factor}",
            user.email, user.password, user.id
        );
    }
}
