use super::*;

fn parsed(args: &[&str]) -> Result<SessionsCommand, String> {
    parse(args.iter().map(|a| a.to_string()))
}

const ID: &str = "6946b1a27d3c0f9a1e000001";

#[test]
fn the_actions_and_their_options_parse() {
    let list = parsed(&["list", "--user", "alice", "--json", "--config", "gw.toml"]).expect("list");
    assert_eq!(list.action, Action::List("alice".into()));
    assert!(list.json && !list.direct);
    assert_eq!(list.config, Some(PathBuf::from("gw.toml")));
    let revoke = parsed(&["revoke", "--direct", "--session", &ID.to_uppercase()]).expect("revoke");
    assert_eq!(
        revoke.action,
        Action::RevokeSession(SessionId::parse(ID).expect("an id"))
    );
    assert!(revoke.direct);
    assert_eq!(
        parsed(&["revoke", "--user", "bob"]).expect("revoke").action,
        Action::RevokeUser("bob".into())
    );
    assert_eq!(parsed(&["count"]).expect("count").action, Action::Count);
}

#[test]
fn bad_arguments_are_refused_naming_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "needs an action"),
        (&["frob"], "\"frob\""),
        (&["list"], "--user"),
        (&["list", "--user"], "--user needs a user id"),
        (&["list", "--user", "--json"], "--user needs a user id"),
        (&["list", "--user", "a/b"], "--user: expected"),
        (&["list", "--user", ""], "--user: expected"),
        (
            &["list", "--user", "a", "--user", "b"],
            "--user is given twice",
        ),
        (
            &["list", "--user", "a", "--session", ID],
            "--session is an option of revoke",
        ),
        (&["revoke"], "--user <id> or --session <id>"),
        (&["revoke", "--user", "a", "--session", ID], "not both"),
        (
            &["revoke", "--session", "abc"],
            "--session: expected 24 hexadecimal digits",
        ),
        (
            &["revoke", "--session", &format!("{ID}0")],
            "--session: expected",
        ),
        (
            &["revoke", "--session", "zz46b1a27d3c0f9a1e000001"],
            "--session: expected",
        ),
        (&["revoke", "--session"], "--session needs a session id"),
        (&["count", "--user", "a"], "count takes no --user"),
        (&["count", "--frobnicate"], "\"--frobnicate\""),
        (&["count", "--config"], "--config needs a file"),
    ];
    for (args, expected) in cases {
        let error = parsed(args).expect_err(&format!("{args:?} is refused"));
        assert!(error.contains(expected), "{args:?}: {error}");
    }
}

#[test]
fn a_listing_prints_as_a_table_without_control_characters() {
    let listing = serde_json::json!({
        "user": "alice",
        "total": 1,
        "sessions": [{
            "device": {"browser": "Chrome", "version": "87.0", "platform": "pc", "os": "Linux", "isDev": false},
            "location": "Paris\u{1b}[31m",
            "_id": ID,
            "expireAt": "2026-12-11T02:23:36.377Z",
            "createdAt": "2026-11-27T02:23:36.377Z",
            "lastActiveAt": "2026-12-03T09:41:02.118Z",
        }],
    });
    let shown = table(&listing);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], "user alice: 1 live session");
    assert!(lines[1].starts_with("SESSION "), "{shown}");
    assert!(lines[2].starts_with(ID), "{shown}");
    for part in [
        "2026-11-27 02:23:36",
        "2026-12-03 09:41:02",
        "2026-12-11 02:23:36",
        "Chrome 87.0, Linux (pc)",
        "Paris?[31m",
    ] {
        assert!(lines[2].contains(part), "{part} in {shown}");
    }
    assert!(!shown.contains('\u{1b}'));
    let unknown = serde_json::json!({"user": "bob", "total": 1, "sessions": [{
        "device": {"browser": "unknown", "version": "unknown", "platform": "unknown", "os": "unknown"},
        "_id": ID, "location": "unknown",
    }]});
    let row = table(&unknown).lines().nth(2).expect("a row").to_string();
    assert!(row.contains("  unknown  unknown"), "{row}");
    let partly = serde_json::json!({"browser": "curl", "version": "8.5.0", "platform": "unknown", "os": "unknown"});
    let partly = serde_json::json!({"user": "bob", "sessions": [{"device": partly, "_id": ID}]});
    let shown = table(&partly);
    assert!(shown.contains("  curl 8.5.0  "), "{shown}");
    let empty = serde_json::json!({"user": "bob", "sessions": [], "total": 0});
    assert_eq!(table(&empty), "user bob: no live sessions\n");
}
