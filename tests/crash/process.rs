//! The gateway binary as a child process, on free loopback ports.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use crate::client::Api;

const BIN: &str = env!("CARGO_BIN_EXE_sessiongate");
const PRESET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sessiongate.toml");

/// The gateway binary, running; killed (SIGKILL) and reaped on drop.
pub(crate) struct RunningGateway {
    child: Child,
    pub(crate) main: SocketAddr,
}

impl RunningGateway {
    /// Starts the binary on free loopback ports with the data directory in `work`, and waits
    /// for `/healthz`. A start that loses a race for its ports is retried on new ones, and
    /// its lines are taken out of the log.
    pub(crate) async fn start(
        work: &Path,
        upstream: &str,
        log: &Path,
    ) -> Result<RunningGateway, String> {
        for _ in 0..5 {
            let (main, admin) = (free_addr(), free_addr());
            let log_start = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
            let stderr = File::options()
                .create(true)
                .append(true)
                .open(log)
                .expect("open the gateway log");
            let child = Command::new(BIN)
                .args(["--config", PRESET])
                .env("JWT_SECRET", crate::SECRET)
                .env("SESSIONGATE_LISTEN", main.to_string())
                .env("SESSIONGATE_ADMIN_LISTEN", admin.to_string())
                .env("SESSIONGATE_UPSTREAM", upstream)
                .env("SESSIONGATE_DATA_DIR", work.join("sessions"))
                .env("SESSIONGATE_WORKERS", "2")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .map_err(|e| format!("starting {BIN}: {e}"))?;
            let mut gateway = RunningGateway { child, main };
            let deadline = Instant::now() + Duration::from_secs(10);
            let health = Api::new(admin);
            loop {
                if let Some(status) = gateway.child.try_wait().expect("try_wait") {
                    let said = read_from(log, log_start);
                    if said.contains("binding the") {
                        // Another process took a port: try new ones. The lost start's lines
                        // (its one ERROR, "binding the ...") leave the log, whose every
                        // ERROR the test counts as the gateway's.
                        File::options()
                            .write(true)
                            .open(log)
                            .and_then(|file| file.set_len(log_start))
                            .map_err(|e| format!("trimming the gateway log: {e}"))?;
                        break;
                    }
                    return Err(format!(
                        "the gateway exited at start ({status}): the store did not open?\n{said}"
                    ));
                }
                let answer = health.send(Method::GET, "/healthz", None, None).await;
                if answer.is_some_and(|a| a.status == StatusCode::OK) {
                    return Ok(gateway);
                }
                if Instant::now() > deadline {
                    return Err("/healthz did not answer 200 within 10 s of the start".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Err("could not find free ports in 5 tries".into())
    }

    /// SIGKILL, then reap. Fails if the process had already exited by itself.
    pub(crate) fn kill(&mut self) -> Result<(), String> {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            return Err(format!(
                "the gateway exited by itself under load ({status})"
            ));
        }
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .map_err(|e| format!("running kill: {e}"))?;
        if !killed.success() {
            return Err(format!("kill -KILL {pid} failed: {killed}"));
        }
        self.child.wait().map_err(|e| format!("reaping: {e}"))?;
        Ok(())
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        // Already reaped after a kill: then both calls fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nothing listens on right now (bound, then released).
pub(crate) fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// What the log file says from byte `start` on.
pub(crate) fn read_from(log: &Path, start: u64) -> String {
    let bytes = std::fs::read(log).unwrap_or_default();
    let start = usize::try_from(start).unwrap_or(0).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The last `n` lines of the log.
pub(crate) fn log_tail(log: &Path, n: usize) -> String {
    let text = read_from(log, 0);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
