//! Reading the configuration: the TOML file, the `SESSIONGATE_*` environment overrides, and
//! the signing secret from the variable or file the configuration names.

use std::path::{Path, PathBuf};

use super::validate::invalid;
use super::{Config, ConfigError, Settings};
use crate::admin::AdminToken;

impl Config {
    /// Reads the file, applies the `SESSIONGATE_*` overrides from the process environment,
    /// and checks and parses the result ([`Config::settings`]).
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config = Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        config.with_environment()
    }

    /// The settings of the file at `path` ([`Config::load`]), or without one, of the defaults
    /// with the `SESSIONGATE_*` overrides and the admin token, as the gateway reads them.
    pub fn load_or_defaults(path: Option<&Path>) -> Result<Settings, ConfigError> {
        match path {
            Some(path) => Config::load(path),
            None => Config::default().with_environment(),
        }
    }

    /// This config with the process environment's overrides applied, checked, with the
    /// admin token read.
    fn with_environment(mut self) -> Result<Settings, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        self.apply_overrides(env);
        let admin_token = self.load_admin_token(env)?;
        Ok(self.settings()?.with_admin_token(admin_token))
    }

    /// Parses TOML text (no overrides, no validation).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies the documented environment overrides, reading variables through `env`.
    pub fn apply_overrides(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(v) = env("SESSIONGATE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("SESSIONGATE_UPSTREAM") {
            self.upstream = v;
        }
        if let Some(v) = env("SESSIONGATE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("SESSIONGATE_ADMIN_LISTEN") {
            self.admin_listen = v;
        }
        if let Some(v) = env("SESSIONGATE_WORKERS") {
            // A value that is not a number is reported by validate(), naming the variable.
            self.workers = v.parse().unwrap_or(usize::MAX);
        }
        if let Some(v) = env("SESSIONGATE_TLS_CERT") {
            self.tls.cert = Some(PathBuf::from(v));
        }
        if let Some(v) = env("SESSIONGATE_TLS_KEY") {
            self.tls.key = Some(PathBuf::from(v));
        }
        if let Some(v) = env("SESSIONGATE_STORE_BACKEND") {
            self.store.backend = v;
        }
        if let Some(v) = env("SESSIONGATE_REDIS_URL") {
            self.store.redis_url = v;
        }
    }

    /// Reads the signing secret from the file or environment variable the config names.
    /// The error says where it looked, never what it found.
    pub fn load_secret(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<u8>, ConfigError> {
        let secret = match &self.auth.secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| invalid("auth.secret_file", path.display(), e))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => env(&self.auth.secret_env).ok_or_else(|| {
                invalid(
                    "auth.secret_env",
                    &self.auth.secret_env,
                    "the environment variable it names is not set: the gateway needs the \
                     uploader's signing secret",
                )
            })?,
        };
        if secret.is_empty() {
            let key = match self.auth.secret_file {
                Some(_) => "auth.secret_file",
                None => "auth.secret_env",
            };
            return Err(invalid(key, "", "the secret is empty"));
        }
        Ok(secret.into_bytes())
    }

    /// The Redis password, if one is configured: `store.redis_password_file`, else the
    /// variable `SESSIONGATE_REDIS_PASSWORD`. `None` leaves the URL's own. The error says
    /// where it looked, never what it found.
    pub fn load_redis_password(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ConfigError> {
        let password = match &self.store.redis_password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| invalid("store.redis_password_file", path.display(), e))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            None => env("SESSIONGATE_REDIS_PASSWORD"),
        };
        if password.as_deref() == Some("") {
            let key = match self.store.redis_password_file {
                Some(_) => "store.redis_password_file",
                None => "SESSIONGATE_REDIS_PASSWORD",
            };
            return Err(invalid(key, "", "the password is empty"));
        }
        Ok(password)
    }

    /// The admin token: the variable `SESSIONGATE_ADMIN_TOKEN` if set, else the contents of
    /// `admin.token_file` (one trailing newline ignored); `None` when neither is set (the
    /// admin session routes are off). The error names where it looked, never what it found.
    pub fn load_admin_token(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<AdminToken>, ConfigError> {
        let (key, value, token) = match (env("SESSIONGATE_ADMIN_TOKEN"), &self.admin.token_file) {
            (Some(token), _) => ("SESSIONGATE_ADMIN_TOKEN", "<not shown>".to_string(), token),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| invalid("admin.token_file", path.display(), e))?;
                let token = text
                    .strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text)
                    .to_string();
                ("admin.token_file", path.display().to_string(), token)
            }
            (None, None) => return Ok(None),
        };
        AdminToken::new(&token)
            .map(Some)
            .map_err(|why| invalid(key, value, why))
    }
}
