use super::*;

/// The shipped preset, parsed.
fn preset() -> Config {
    let text = include_str!("../../config/sessiongate.toml");
    Config::from_toml(text).expect("the preset parses")
}

fn invalid_key(error: ConfigError) -> String {
    match error {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected an invalid key, got {other}"),
    }
}

#[test]
fn preset_is_valid_and_equals_the_defaults() {
    let config = preset();
    config.validate().expect("the preset validates");
    let defaults = Config::default();
    assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
}

#[test]
fn empty_file_gives_the_defaults() {
    let config = Config::from_toml("").expect("empty parses");
    assert_eq!(config.listen, "127.0.0.1:8080");
    assert_eq!(config.api_prefix, "/api");
    assert_eq!(config.auth.secret_env, "JWT_SECRET");
    assert_eq!(
        config.routes.login,
        ["POST /auth/login", "POST /auth/two-factor"]
    );
}

#[test]
fn the_read_buffer_may_be_as_small_as_hyper_allows_above_the_head_limit() {
    let config = Config::from_toml("[limits]\nmax_header_bytes = 4096\nread_buffer_bytes = 8192")
        .expect("parses");
    config
        .validate()
        .expect("8 KiB over a 4 KiB head limit is valid");
    let config = Config::from_toml("[limits]\nmax_header_bytes = 65536\nread_buffer_bytes = 65536")
        .expect("parses");
    config
        .validate()
        .expect("a buffer equal to the head limit is valid");
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let error = Config::from_toml("listen = \"127.0.0.1:1\"\nlistne = 3").unwrap_err();
    assert!(error.contains("listne"), "{error}");
    let error = Config::from_toml("[auth]\nsecret = \"inline\"").unwrap_err();
    assert!(error.contains("secret"), "{error}");
}

#[test]
fn overrides_apply_over_the_file() {
    let mut config = preset();
    config.apply_overrides(|name| match name {
        "SESSIONGATE_LISTEN" => Some("127.0.0.1:9999".into()),
        "SESSIONGATE_UPSTREAM" => Some("http://127.0.0.1:4000/base".into()),
        "SESSIONGATE_DATA_DIR" => Some("/tmp/elsewhere".into()),
        _ => None,
    });
    assert_eq!(config.listen, "127.0.0.1:9999");
    assert_eq!(config.upstream, "http://127.0.0.1:4000/base");
    assert_eq!(config.data_dir, PathBuf::from("/tmp/elsewhere"));
    config.validate().expect("still valid");
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("listen = \"nowhere\"", "listen"),
        ("upstream = \"https://127.0.0.1:3000\"", "upstream"),
        ("upstream = \"not a url\"", "upstream"),
        ("upstream = \"http://127.0.0.1:3000/?q=1\"", "upstream"),
        ("api_prefix = \"api\"", "api_prefix"),
        ("api_prefix = \"/api/\"", "api_prefix"),
        ("data_dir = \"\"", "data_dir"),
        ("[auth]\nalgorithm = \"RS256\"", "auth.algorithm"),
        ("[auth]\nalgorithm = \"none\"", "auth.algorithm"),
        ("[auth]\nsecret_env = \"\"", "auth.secret_env"),
        (
            "[proxy]\nupstream_timeout_seconds = 0",
            "proxy.upstream_timeout_seconds",
        ),
        ("[proxy]\nuser_header = \"bad header\"", "proxy.user_header"),
        (
            "[sessions]\nendpoint = \"account/sessions\"",
            "sessions.endpoint",
        ),
        (
            "[sessions]\nlocation_header = \"a b\"",
            "sessions.location_header",
        ),
        (
            "[sessions]\ncapture_limit_bytes = 10",
            "sessions.capture_limit_bytes",
        ),
        (
            "[sessions]\nsweep_interval_seconds = 0",
            "sessions.sweep_interval_seconds",
        ),
        ("[sessions]\ncache_mib = 0", "sessions.cache_mib"),
        (
            "[limits]\nmax_header_bytes = 512",
            "limits.max_header_bytes",
        ),
        (
            "[limits]\nread_buffer_bytes = 4096",
            "limits.read_buffer_bytes",
        ),
        (
            "[limits]\nmax_header_bytes = 65536\nread_buffer_bytes = 32768",
            "limits.read_buffer_bytes",
        ),
        (
            "[limits]\nread_buffer_bytes = 100000000",
            "limits.read_buffer_bytes",
        ),
        ("[routes]\npublic = [\"post /x\"]", "routes.public"),
        ("[routes]\nlogin = [\"POST auth/login\"]", "routes.login"),
        ("[routes]\nrefresh = [\"POST /a/*/b\"]", "routes.refresh"),
    ];
    for (text, key) in cases {
        let config = Config::from_toml(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let error = config.validate().expect_err(text);
        let message = error.to_string();
        assert_eq!(invalid_key(error), *key, "{text}");
        assert!(message.contains(key), "{message}");
    }
}

#[test]
fn secret_comes_from_the_named_variable() {
    let config = preset();
    let secret = config
        .load_secret(|name| (name == "JWT_SECRET").then(|| "s3cret".to_string()))
        .expect("found");
    assert_eq!(secret, b"s3cret");
}

#[test]
fn missing_or_empty_secret_is_refused_without_echoing_it() {
    let config = preset();
    let error = config.load_secret(|_| None).unwrap_err();
    assert!(error.to_string().contains("JWT_SECRET"), "{error}");
    let error = config.load_secret(|_| Some(String::new())).unwrap_err();
    assert!(error.to_string().contains("empty"), "{error}");
}

#[test]
fn secret_file_wins_and_loses_its_trailing_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    std::fs::write(&path, "from-file\n").expect("write");
    let mut config = preset();
    config.auth.secret_file = Some(path);
    let secret = config
        .load_secret(|_| Some("from-env".into()))
        .expect("read");
    assert_eq!(secret, b"from-file");
    config.auth.secret_file = Some(dir.path().join("missing"));
    let error = config.load_secret(|_| None).unwrap_err();
    assert_eq!(invalid_key(error), "auth.secret_file");
}

#[test]
fn load_reads_a_file_and_reports_unreadable_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gate.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n").expect("write");
    // SESSIONGATE_* variables are not set in the test environment, so the file's values hold.
    let settings = Config::load(&path).expect("loads");
    assert_eq!(settings.listen.port(), 0);
    let error = Config::load(&dir.path().join("missing.toml")).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    std::fs::write(&path, "listen = [").expect("write");
    let error = Config::load(&path).unwrap_err();
    assert!(matches!(error, ConfigError::Parse { .. }), "{error}");
}

#[test]
fn the_store_is_sled_unless_redis_is_chosen() {
    let config = Config::default();
    assert_eq!(config.store.backend, "sled");
    let redis = Config::from_toml(
        "[store]\nbackend = \"redis\"\nredis_url = \"rediss://:secret@redis.internal:6380/2\"",
    )
    .expect("parses");
    let settings = redis
        .settings()
        .expect("a rediss URL with a password and a db");
    assert_eq!(
        settings.redis_urls,
        ["rediss://:secret@redis.internal:6380/2"]
    );
    let cluster = Config::from_toml(
        "[store]\nbackend = \"redis\"\nredis_cluster = true\n\
         redis_url = \"redis://10.0.0.1:7000, redis://10.0.0.2:7000\"",
    )
    .expect("parses");
    assert_eq!(
        cluster.settings().expect("settings").redis_urls,
        ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]
    );
}

#[test]
fn bad_store_values_name_the_key_and_never_show_a_password() {
    for (toml, key) in [
        (
            "backend = \"postgres\"",
            "store.backend (or SESSIONGATE_STORE_BACKEND)",
        ),
        (
            "backend = \"redis\"\nredis_url = \"http://u:hunter2@redis:6379\"",
            "store.redis_url (or SESSIONGATE_REDIS_URL)",
        ),
        (
            "backend = \"redis\"\nredis_url = \"redis://a:1,redis://b:1\"",
            "store.redis_url (or SESSIONGATE_REDIS_URL)",
        ),
        (
            "backend = \"redis\"\nredis_url = \"redis://\"",
            "store.redis_url (or SESSIONGATE_REDIS_URL)",
        ),
        ("redis_key_prefix = \"a{b}\"", "store.redis_key_prefix"),
        ("redis_key_prefix = \"\"", "store.redis_key_prefix"),
        ("timeout_ms = 0", "store.timeout_ms"),
        ("timeout_ms = 60001", "store.timeout_ms"),
    ] {
        let config = Config::from_toml(&format!("[store]\n{toml}")).expect("parses");
        let error = config.validate().expect_err(toml);
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert_eq!(invalid_key(error), key, "{toml}");
    }
    let unknown = Config::from_toml("[store]\nredis_host = \"x\"").expect_err("unknown key");
    assert!(unknown.contains("redis_host"), "{unknown}");
}

#[test]
fn the_store_overrides_and_the_redis_password_come_from_the_environment() {
    let mut config = Config::default();
    let env = |name: &str| match name {
        "SESSIONGATE_STORE_BACKEND" => Some("redis".to_string()),
        "SESSIONGATE_REDIS_URL" => Some("redis://10.1.2.3:6379".to_string()),
        "SESSIONGATE_REDIS_PASSWORD" => Some("from-env".to_string()),
        _ => None,
    };
    config.apply_overrides(env);
    assert_eq!(config.store.backend, "redis");
    assert_eq!(config.store.redis_url, "redis://10.1.2.3:6379");
    assert_eq!(
        config.load_redis_password(env).expect("password"),
        Some("from-env".to_string())
    );
    assert_eq!(config.load_redis_password(|_| None).expect("none"), None);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("redis_password");
    std::fs::write(&file, "from-file\n").expect("write");
    config.store.redis_password_file = Some(file.clone());
    assert_eq!(
        config.load_redis_password(env).expect("password"),
        Some("from-file".to_string()),
        "the file wins over the variable"
    );
    std::fs::write(&file, "\n").expect("write");
    let empty = config.load_redis_password(env).expect_err("empty");
    assert_eq!(invalid_key(empty), "store.redis_password_file");
    config.store.redis_password_file = Some(dir.path().join("missing"));
    let missing = config.load_redis_password(env).expect_err("missing");
    assert_eq!(invalid_key(missing), "store.redis_password_file");
}

#[test]
fn the_adoption_instant_is_an_rfc_3339_instant_not_in_the_future() {
    let with = |instant: &str| {
        let mut config = preset();
        config.sessions.adopt_issued_before = Some(instant.into());
        config.settings()
    };
    let settings = with("2026-12-03T09:00:00Z").expect("a past instant");
    assert_eq!(settings.adopt_before_ms, Some(1_796_288_400_000));
    let settings = with("2026-12-03T10:00:00.250+01:00").expect("an offset");
    assert_eq!(settings.adopt_before_ms, Some(1_796_288_400_250));
    for bad in ["yesterday", "2026-12-03", "2026-12-03 09:00:00", ""] {
        let error = with(bad).expect_err(bad);
        assert!(error.to_string().contains("RFC 3339"), "{error}");
        assert_eq!(invalid_key(error), "sessions.adopt_issued_before");
    }
    let error = with("2999-01-01T00:00:00Z").expect_err("the future");
    assert!(error.to_string().contains("in the future"), "{error}");
    assert_eq!(invalid_key(error), "sessions.adopt_issued_before");
    assert_eq!(preset().settings().expect("valid").adopt_before_ms, None);
}

#[test]
fn the_admin_token_comes_from_the_variable_else_the_file_and_is_never_shown() {
    const TOKEN: &str = "admin-token-0123456789abcdef-0123456789";
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("admin_token");
    let mut config = preset();
    assert!(config.load_admin_token(|_| None).expect("none").is_none());

    std::fs::write(&file, format!("{TOKEN}\n")).expect("write");
    config.admin.token_file = Some(file.clone());
    let token = config.load_admin_token(|_| None).expect("read");
    assert_eq!(
        token.expect("a token").reveal(),
        TOKEN,
        "one newline trimmed"
    );
    std::fs::write(&file, format!("{TOKEN}\r\n")).expect("write");
    let token = config.load_admin_token(|_| None).expect("read");
    assert_eq!(token.expect("a token").reveal(), TOKEN, "a CRLF trimmed");
    let from_env = format!("{TOKEN}-env");
    let env = |name: &str| (name == "SESSIONGATE_ADMIN_TOKEN").then(|| from_env.clone());
    let token = config.load_admin_token(env).expect("read");
    assert_eq!(
        token.expect("a token").reveal(),
        from_env,
        "the variable wins"
    );

    // Debug of the settings shows no token.
    let settings = config
        .clone()
        .settings()
        .expect("valid")
        .with_admin_token(config.load_admin_token(|_| None).expect("read"));
    assert!(settings.admin_token.is_some());
    let shown = format!("{settings:?}");
    assert!(!shown.contains(TOKEN), "{shown}");

    // Refused, naming the key, never quoting the token.
    let refused = |contents: &str| {
        std::fs::write(&file, contents).expect("write");
        let error = config.load_admin_token(|_| None).expect_err(contents);
        let message = error.to_string();
        assert_eq!(invalid_key(error), "admin.token_file", "{message}");
        assert!(!message.contains("0123456789"), "{message}");
        message
    };
    assert!(refused("").contains("empty"));
    assert!(refused("\n").contains("empty"));
    assert!(refused("0123456789-short\n").contains("characters"));
    refused(&format!("{TOKEN}\n\n"));
    refused(&format!("{TOKEN} {TOKEN}"));
    refused(&format!("\t{TOKEN}"));
    config.admin.token_file = Some(dir.path().join("missing"));
    let error = config.load_admin_token(|_| None).expect_err("missing");
    assert_eq!(invalid_key(error), "admin.token_file");
    let short = |name: &str| (name == "SESSIONGATE_ADMIN_TOKEN").then(|| "0123456789".into());
    let error = config.load_admin_token(short).expect_err("short");
    let message = error.to_string();
    assert_eq!(invalid_key(error), "SESSIONGATE_ADMIN_TOKEN");
    assert!(!message.contains("0123456789"), "{message}");
}

#[test]
fn the_admin_section_takes_only_token_file() {
    let config = Config::from_toml("[admin]\ntoken_file = \"/run/secrets/admin\"").expect("parses");
    assert_eq!(
        config.admin.token_file,
        Some(PathBuf::from("/run/secrets/admin"))
    );
    let error = Config::from_toml("[admin]\ntoken = \"inline\"").unwrap_err();
    assert!(error.contains("token"), "{error}");
}
