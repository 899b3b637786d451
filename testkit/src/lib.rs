//! Real servers for sessiongate's tests, started and stopped by the tests themselves.
//!
//! [`RedisServer`] runs Debian's `redis-server` on a free loopback port, in a temporary
//! directory, with an append-only file fsynced on every write (`appendonly yes`,
//! `appendfsync always`), so that a test can kill it with SIGKILL and start it again on the
//! same files. [`RedisCluster`] runs several of them as a Redis Cluster.
//!
//! Nothing here assumes a Redis already running: each server is this process's child, and
//! it is killed when its handle is dropped. `redis-server` and `redis-cli` must be on the
//! PATH (`.ci/run` installs Debian's `redis-server`, which brings both).
//!
//! [`wait_for_sled_let_go`] waits for a sled store dropped in this process to be free.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One `redis-server` process of this test, on `127.0.0.1:<port>`.
pub struct RedisServer {
    dir: TempDir,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A new server, durable on every write, on a free port in a new directory.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// A new server with extra `redis-server` arguments (`["--maxmemory", "1gb"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut last_error = String::new();
        // A free port can be taken by someone else before redis-server binds it: try another.
        for _ in 0..5 {
            let mut server = RedisServer {
                dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
                port: free_port(false),
                args: extra.iter().map(|a| a.to_string()).collect(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its data directory (the append-only file, `nodes.conf` in a cluster).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills it with SIGKILL (nothing flushed that was not already) and waits for it to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and files; returns once it answers `PING`
    /// (after it has loaded its data).
    pub fn restart(&mut self) {
        self.kill();
        let started = Instant::now();
        // The port may linger a moment after the kill.
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(_) if started.elapsed() < START_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => panic!("redis-server did not start again: {error}"),
            }
        }
    }

    /// Stops it answering without closing anything (SIGSTOP): a server that hangs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Whether it is running now.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs `redis-cli -p <port> <args>` and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file(self.dir.path())))
            .stderr(Stdio::null());
        let child = command.spawn().map_err(|e| {
            format!(
                "redis-server could not be run ({e}): install Debian's redis-server \
                 (bash .ci/run does)"
            )
        })?;
        self.child = Some(child);
        match wait_for_pong(self.port, self.child.as_mut().expect("just spawned")) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.kill();
                Err(format!("{error}; its log: {}", self.log()))
            }
        }
    }

    /// The server's log, for a failure's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG_FILE)).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

const LOG_FILE: &str = "redis.log";

fn log_file(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_FILE))
        .expect("redis-server's log file opens")
}

/// A Redis Cluster of `masters` masters, each with `replicas` replicas, on loopback ports.
pub struct RedisCluster {
    /// Its servers, masters first as `redis-cli --cluster create` was given them.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the servers, joins them into a cluster and waits until every slot is served.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        let count = masters * (1 + replicas);
        let mut nodes = Vec::with_capacity(count);
        while nodes.len() < count {
            // The cluster bus listens on the port + 10000: both must be free.
            let port = free_port(true);
            let dir = tempfile::tempdir().expect("a temporary directory for a cluster node");
            let mut node = RedisServer {
                dir,
                port,
                args: [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ]
                .map(String::from)
                .to_vec(),
                child: None,
            };
            if node.spawn().is_ok() {
                nodes.push(node);
            }
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        let replicas = replicas.to_string();
        create.extend(["--cluster-replicas", replicas.as_str(), "--cluster-yes"]);
        let output = Command::new("redis-cli")
            .args(&create)
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// The seed URLs, one per node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Waits until every node says `cluster_state:ok` and every replica has caught up.
    pub fn wait_until_ok(&self) {
        let started = Instant::now();
        loop {
            let ok = self.nodes.iter().all(|node| {
                let info = node.cli(&["CLUSTER", "INFO"]);
                let replication = node.cli(&["INFO", "replication"]);
                info.contains("cluster_state:ok")
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            });
            if ok {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the cluster did not come up: {}",
                self.nodes[0].cli(&["CLUSTER", "NODES"])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Indexes of the nodes that are masters now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].cli(&["ROLE"]).starts_with("master"))
            .collect()
    }

    /// Indexes of the nodes that are replicas now.
    pub fn replicas(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].cli(&["ROLE"]).starts_with("slave"))
            .collect()
    }

    /// A manual failover: `CLUSTER FAILOVER` on replica `index`, which waits for its master
    /// to hand over every write it acknowledged. Returns once that node is a master and the
    /// cluster is whole again.
    pub fn fail_over_to(&self, index: usize) {
        let node = &self.nodes[index];
        let answer = node.cli(&["CLUSTER", "FAILOVER"]);
        assert!(
            answer.trim() == "OK",
            "CLUSTER FAILOVER answered {answer:?}"
        );
        let started = Instant::now();
        while !node.cli(&["ROLE"]).starts_with("master") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node {index} did not become a master"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_until_ok();
    }
}

/// Runs `redis-cli -p <port> <args>` and returns what it printed (stdout).
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli runs (Debian's redis-tools)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A port no one listens on now (and, with `bus`, its cluster bus port + 10000 too).
pub fn free_port(bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener's address")
            .port();
        if !bus {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Waits until the server on `port` answers `PING` with `PONG` (not `LOADING`).
fn wait_for_pong(port: u16, child: &mut Child) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("redis-server on port {port} exited: {status}"));
        }
        if ping(port) {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!("redis-server on port {port} did not answer PING"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a server on `port` answers `PING` with `PONG` now.
pub fn ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// Waits, at most `within`, until nothing holds the sled store in `dir`; whether it is free
/// (a directory without sled's `db` file counts as free).
///
/// sled's I/O threads can hold the store's files a moment after its last handle is dropped,
/// so whatever opens the directory next in this process, or in a child started right away,
/// would find it in use (a stopped process never does: it has exited). The probe is the lock
/// sled takes, an exclusive `flock` on `db`, taken and let go at once: nothing is written.
pub fn wait_for_sled_let_go(dir: &Path, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        let Ok(file) = std::fs::File::open(dir.join("db")) else {
            return true;
        };
        if file.try_lock().is_ok() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
