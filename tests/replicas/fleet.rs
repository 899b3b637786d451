//! Gateway replicas: child `sessiongate` processes on one Redis (or Redis Cluster), in front of
//! one in-process stand-in uploader with many users, and the requests the tests send them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use share_stand_in::{StandIn, StandInConfig, User};
use tempfile::TempDir;

use crate::child::{ChildGuard, SECRET, free_addr, sessiongate};

/// Several gateways sharing one store, in front of one uploader.
pub(crate) struct Fleet {
    pub(crate) uploader: StandIn,
    pub(crate) replicas: Vec<Replica>,
    _work: TempDir,
}

/// One gateway process and a keep-alive client to it.
pub(crate) struct Replica {
    pub(crate) child: ChildGuard,
    pub(crate) main: SocketAddr,
    pub(crate) admin: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// An answer: status, `code` (if any) and JSON body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// The store a fleet shares.
pub(crate) struct SharedStore<'a> {
    /// `store.redis_url`.
    pub(crate) url: &'a str,
    pub(crate) cluster: bool,
}

/// The stand-in's user number `n`: id, email and password.
pub(crate) fn user(n: usize) -> User {
    User {
        id: format!("{:024x}", 0x5f4b_0000_0000_u64 + n as u64),
        email: format!("user{n}@example.com"),
        password: format!("password-{n}"),
        two_factor: false,
    }
}

impl Fleet {
    /// `replicas` gateways on `store`, one worker each, the reuse grace at 0 s, in front of an
    /// uploader with `users` users ([`user`]).
    pub(crate) async fn start(store: SharedStore<'_>, replicas: usize, users: usize) -> Fleet {
        let uploader = StandIn::start(StandInConfig {
            secret: SECRET.into(),
            users: (0..users).map(user).collect(),
            ..StandInConfig::default()
        })
        .await;
        let work = tempfile::tempdir().expect("a temp dir");
        let mut started = Vec::with_capacity(replicas);
        for n in 0..replicas {
            let (main, admin) = (free_addr(), free_addr());
            let config = work.path().join(format!("replica{n}.toml"));
            let text = format!(
                "listen = \"{main}\"\nadmin_listen = \"{admin}\"\nupstream = \"{}\"\n\
                 workers = 1\ndata_dir = \"unused-{n}\"\n\n\
                 [sessions]\nrefresh_reuse_grace_seconds = 0\n\n\
                 [store]\nbackend = \"redis\"\nredis_url = \"{}\"\nredis_cluster = {}\n\n\
                 [log]\nlevel = \"warn\"\n",
                uploader.url(),
                store.url,
                store.cluster,
            );
            std::fs::write(&config, text).expect("write the config");
            let mut command = sessiongate(work.path());
            command
                .env("JWT_SECRET", SECRET)
                .arg("--config")
                .arg(&config);
            let child = ChildGuard::spawn(&mut command);
            started.push(Replica {
                child,
                main,
                admin,
                client: Client::builder(TokioExecutor::new()).build_http(),
            });
        }
        for replica in &mut started {
            replica.wait_ready().await;
        }
        Fleet {
            uploader,
            replicas: started,
            _work: work,
        }
    }
}

impl Replica {
    /// Waits up to 20 s for `/readyz` to answer 200 (the store and the uploader answer).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.exited() {
                panic!("a replica exited early ({status}): {}", self.child.stderr());
            }
            let ready = self.try_send(self.admin, Method::GET, "/readyz", None, None);
            if ready
                .await
                .is_ok_and(|answer| answer.status == StatusCode::OK)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "a replica was not ready within 20 s: {}",
                self.child.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One request on the replica's keep-alive connections.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.send(self.main, method, path, token, body).await
    }

    /// A GET on the admin listener.
    pub(crate) async fn admin_get(&self, path: &str) -> Answer {
        self.send(self.admin, Method::GET, path, None, None).await
    }

    /// `/metrics` as text.
    pub(crate) async fn metrics(&self) -> String {
        let request = Request::get(format!("http://{}/metrics", self.admin))
            .body(Full::new(Bytes::new()))
            .expect("a request");
        let response = self.client.request(request).await.expect("metrics");
        let body = response.into_body().collect().await.expect("a body");
        String::from_utf8_lossy(&body.to_bytes()).into_owned()
    }

    async fn send(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        match self.try_send(addr, method.clone(), path, token, body).await {
            Ok(answer) => answer,
            Err(error) => panic!("{method} {path} on {addr}: {error}"),
        }
    }

    /// One request; what went wrong if no answer came within 10 s.
    async fn try_send(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let bytes = match &body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Bytes::from(value.to_string())
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(bytes)).expect("a valid request");
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok(Answer {
                status,
                body: serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null),
            })
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap_or_else(|_| Err("no answer within 10 s".into()))
    }

    /// Logs user `n` in: the access and refresh tokens.
    pub(crate) async fn login(&self, n: usize) -> (String, String) {
        let user = user(n);
        let answer = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": user.email, "password": user.password})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "login: {}", answer.body);
        tokens(&answer)
    }

    /// `GET /api/account` with `token`: the status.
    pub(crate) async fn account(&self, token: &str) -> StatusCode {
        self.call(Method::GET, "/api/account", Some(token), None)
            .await
            .status
    }
}

/// The access and refresh tokens of a login or refresh answer.
pub(crate) fn tokens(answer: &Answer) -> (String, String) {
    let token = |name: &str| {
        answer.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", answer.body))
            .to_string()
    };
    (token("access_token"), token("refresh_token"))
}
