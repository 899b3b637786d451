//! `lastActiveAt` survives a graceful restart: the uses kept in memory are written to the
//! store when the gateway stops on SIGTERM.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use crate::gateway::{
    Launch, RunningGateway, list_sessions, login, start_gateway, start_gateway_in, stop_gracefully,
};

async fn list(gateway: &RunningGateway, access: &str) -> Value {
    let (status, body) = list_sessions(gateway.main, access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The entry of the listing that `current` is (or is not).
fn entry(listing: &Value, current: bool) -> &Value {
    listing["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == current)
        .unwrap_or_else(|| panic!("no entry with current={current}: {listing}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_last_use_is_written_at_a_graceful_stop_and_listed_after_the_restart() {
    let gateway = start_gateway(Launch::Preset).await;
    let (first, _) = login(&gateway).await;
    // A second later, so that the second login's tokens differ from the first's.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (second, _) = login(&gateway).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    // The second session is used: its listing is that use, and shows it.
    let seen = list(&gateway, &second).await;
    let used = entry(&seen, true).clone();
    assert!(
        used["lastActiveAt"].as_str() > used["createdAt"].as_str(),
        "{used}"
    );

    // Stopped gracefully, started again on the same store.
    let work = stop_gracefully(gateway).await;
    let gateway = start_gateway_in(Launch::Preset, work).await;

    // The new process has not seen the second session used: what it lists is the store's.
    let listing = list(&gateway, &first).await;
    let second_entry = entry(&listing, false);
    assert_eq!(second_entry["_id"], used["_id"], "{listing}");
    assert_eq!(
        second_entry["lastActiveAt"], used["lastActiveAt"],
        "{listing}"
    );
}
