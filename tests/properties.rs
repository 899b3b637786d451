//! Property tests of the two parsers every request goes through: path normalisation with the
//! route policy, and token reading and verification. Case counts are proptest's default (256).
//!
//! - `paths`: the properties of `normalise_path` and of the route policy on what it gives;
//! - `path_strategies`: the hostile and routed paths they are tried on;
//! - `canonical`: the canonical form a normalised path must have, as a checker;
//! - `express`: a model of how the uploader's Express router routes a path;
//! - `tokens`: damaged and arbitrary tokens never verify; `bearer_token` never panics.
//!
//! Proptest keeps the failures it found next to the file of the properties that found them
//! (`properties/paths.proptest-regressions`) and replays them first.

#[path = "properties/canonical.rs"]
mod canonical;
#[path = "properties/express.rs"]
mod express;
#[path = "properties/path_strategies.rs"]
mod path_strategies;
#[path = "properties/paths.rs"]
mod paths;
#[path = "properties/tokens.rs"]
mod tokens;
