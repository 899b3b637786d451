//! An in-process stand-in for the API server of **Share**, the NodeJS/Express uploader that
//! sessiongate fronts.
//!
//! It issues tokens exactly like the uploader does (HS256 with the uploader's `JWT_SECRET`,
//! payload `{"sub","iss"?,"iat","exp"}`, no session id: two logins in the same second give
//! byte-identical tokens), routes paths the way Express 4 does (case-insensitively, optional
//! trailing slash, routers mounted with `app.use`), records every request it receives, and
//! offers a few extra routes for testing a proxy: streamed uploads (`POST /upload`), slow
//! responses (`GET /slow?ms=N`) and big streamed responses (`GET /big?bytes=N`).
//!
//! ```no_run
//! # async fn demo() {
//! use share_stand_in::{StandIn, StandInConfig};
//!
//! let stand_in = StandIn::start(StandInConfig::default()).await;
//! let tokens = stand_in.issue_tokens("5f4bff121037e424a17a3ebc");
//! println!("uploader at {}, access token {}", stand_in.url(), tokens.access_token);
//! # }
//! ```
//!
//! Routes (paths as the API server sees them, query ignored for routing):
//!
//! | route | answer |
//! |---|---|
//! | `POST /auth/login` | tokens, or a two-factor challenge |
//! | `POST /auth/two-factor` | tokens for a valid challenge token and the code `123456` |
//! | `POST /auth/refresh` | fresh tokens for a `refresh_token` that verifies |
//! | `POST /auth/logout` | `LOGGED_OUT` for a bearer token that verifies |
//! | `PUT /account/change-password` | `PASSWORD_CHANGED` (the new password is kept) |
//! | `GET /account` | `{"user":{"_id": sub}}` |
//! | `GET`, `DELETE /account/sessions`, `DELETE /account/sessions/:id` | a body with `"servedBy":"uploader"` and the header `x-served-by: uploader`: the gateway must never let these through |
//! | `POST /upload`, `POST /3rd-party/upload` | `{"bytes":N,"sha256":"<hex>"}` of the streamed body |
//! | `GET /slow?ms=N` | `{"ok":true}` after N ms |
//! | `GET /big?bytes=N` | N streamed bytes; the byte at offset `i` is `i % 256` |
//! | anything else | `{"ok":true,"method":"...","path":"<path and query>"}` |
//!
//! Failures are 401 with the plain-text body `Unauthorized`; an unparsable JSON body is 400.
//! Bearer tokens and refresh tokens are accepted when they verify with the secret and are not
//! expired by the stand-in's clock (see [`StandIn::advance_clock`]); API keys (issuer ending
//! in ` 3rd-party API`) are refused there, as the uploader has no session for them.

mod body;
mod config;
mod handlers;
mod record;
mod routes;
mod server;
mod state;
mod tokens;

pub use config::{StandInConfig, User};
pub use record::RecordedRequest;
pub use server::StandIn;
pub use tokens::TokenPair;
