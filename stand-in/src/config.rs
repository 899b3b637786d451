//! Configuration of the stand-in: the secret, the issuer and the user accounts.

/// How to run a [`StandIn`](crate::StandIn).
#[derive(Clone, Debug)]
pub struct StandInConfig {
    /// The HS256 secret the uploader signs its tokens with (its `JWT_SECRET`).
    pub secret: String,
    /// The uploader's `WEB_URI`, put in the tokens' `iss`; `None` gives tokens without `iss`.
    pub issuer: Option<String>,
    /// The accounts that can log in.
    pub users: Vec<User>,
}

impl Default for StandInConfig {
    /// Secret `stand-in-secret`, no issuer, and the users of [`User::defaults`].
    fn default() -> Self {
        StandInConfig {
            secret: "stand-in-secret".to_owned(),
            issuer: None,
            users: User::defaults(),
        }
    }
}

/// An account of the uploader.
#[derive(Clone, Debug)]
pub struct User {
    /// The account's id: 24 lowercase hex characters (a MongoDB ObjectId), the tokens' `sub`.
    pub id: String,
    /// The email address used to log in.
    pub email: String,
    /// The password used to log in.
    pub password: String,
    /// Whether login asks for a second factor; the code is always `123456`.
    pub two_factor: bool,
}

impl User {
    /// The code that completes a two-factor login.
    pub(crate) const TWO_FACTOR_CODE: &'static str = "123456";

    /// Three accounts: alice and bob without two-factor, carol with it.
    ///
    /// | email | password | id | two-factor |
    /// |---|---|---|---|
    /// | `alice@example.com` | `alice-password` | `5f4bff121037e424a17a3ebc` | no |
    /// | `bob@example.com` | `bob-password` | `5f4bff121037e424a17a3ebd` | no |
    /// | `carol@example.com` | `carol-password` | `5f4bff121037e424a17a3ebe` | yes (`123456`) |
    pub fn defaults() -> Vec<User> {
        vec![
            User::new("5f4bff121037e424a17a3ebc", "alice", false),
            User::new("5f4bff121037e424a17a3ebd", "bob", false),
            User::new("5f4bff121037e424a17a3ebe", "carol", true),
        ]
    }

    /// `<name>@example.com` with the password `<name>-password`.
    fn new(id: &str, name: &str, two_factor: bool) -> User {
        User {
            id: id.to_owned(),
            email: format!("{name}@example.com"),
            password: format!("{name}-password"),
            two_factor,
        }
    }
}
