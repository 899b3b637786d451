//! The binary as a child process: started with an empty environment, its pipes read to the
//! end on threads, killed and reaped when its guard drops.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sessiongate");
pub(crate) const PRESET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sessiongate.toml");
/// The signing secret the child and its stand-in uploader share.
pub(crate) const SECRET: &str = "binary-test-secret-5a1f0c";

/// A loopback address nothing listens on right now (bound, then released).
pub(crate) fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// Reads a child's pipe to the end on a thread, into a shared buffer.
fn drain(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let thread = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("buffer lock")
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buffer, thread)
}

/// A child process, killed and reaped on drop.
pub(crate) struct ChildGuard {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl ChildGuard {
    pub(crate) fn spawn(command: &mut Command) -> ChildGuard {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sessiongate binary starts");
        let (stdout, out_reader) = drain(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = drain(child.stderr.take().expect("piped stderr"));
        ChildGuard {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("buffer lock")).to_string()
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("buffer lock")).to_string()
    }

    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// The exit status if the child has exited (its pipes then read to the end); panics
    /// with its stderr once `deadline`, `limit` after the wait began, has passed.
    fn exit_status_by(&mut self, deadline: Instant, limit: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            for reader in self.readers.drain(..) {
                reader.join().expect("the pipe reader does not panic");
            }
            return Some(status);
        }
        assert!(
            Instant::now() < deadline,
            "the child did not exit within {limit:?}; stderr:\n{}",
            self.stderr()
        );
        None
    }

    /// Waits (without blocking the runtime) for the child to exit, then for its pipes to be
    /// read to the end. Panics with its stderr after `limit`.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status_by(deadline, limit) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Like [`ChildGuard::wait_exit`], for tests without a runtime.
    fn wait_exit_blocking(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status_by(deadline, limit) {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM through `kill(1)`.
    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The binary with an empty environment (nothing of the test runner's leaks in) and a
/// working directory of its own.
pub(crate) fn sessiongate(workdir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.env_clear().current_dir(workdir);
    command
}

/// Runs a short command to its end (at most 20 s): its status, stdout and stderr.
pub(crate) fn run_to_end(command: &mut Command) -> (ExitStatus, String, String) {
    let mut child = ChildGuard::spawn(command);
    let status = child.wait_exit_blocking(Duration::from_secs(20));
    (status, child.stdout(), child.stderr())
}
