//! The device of a session, parsed from the login request's User-Agent with woothee.
//!
//! The shape is the uploader's (`browser`, `version`, `platform`, `os`, `isDev`). woothee
//! knows browsers but not API clients (`PostmanRuntime/7.26.8`, `ShareX/15.0.0`) and calls
//! curl "HTTP Library"; for those the first `product/version` token is used instead, which
//! is what a user recognises in a device list. `platform` is woothee's category (`pc`,
//! `smartphone`, ...), where the uploader always says "unknown".

use serde::{Deserialize, Serialize};
use woothee::parser::Parser;
use woothee::woothee::VALUE_UNKNOWN;

/// What the device list shows for an unknown field.
pub const UNKNOWN: &str = "unknown";

/// Longest User-Agent parsed; longer ones are cut (woothee's cost grows with the length).
const MAX_USER_AGENT_LEN: usize = 512;
/// Longest value kept in a device field.
const MAX_FIELD_LEN: usize = 64;

/// A device as the sessions list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Browser or client name: "Chrome", "PostmanRuntime", "ShareX".
    pub browser: String,
    /// Its version: "87.0.4280.88".
    pub version: String,
    /// woothee's category: "pc", "smartphone", "mobilephone", "appliance", "crawler",
    /// "misc"; "unknown" for clients woothee does not know.
    pub platform: String,
    /// Operating system: "Linux", "Windows 10", "iPhone".
    pub os: String,
    /// A developer's API client (Postman), as the uploader flags it.
    #[serde(rename = "isDev")]
    pub is_dev: bool,
}

impl Device {
    /// A device with every field unknown.
    pub fn unknown() -> Device {
        Device {
            browser: UNKNOWN.into(),
            version: UNKNOWN.into(),
            platform: UNKNOWN.into(),
            os: UNKNOWN.into(),
            is_dev: false,
        }
    }

    /// Parses a User-Agent header value (absent or empty: all unknown).
    pub fn from_user_agent(user_agent: Option<&str>) -> Device {
        let Some(agent) = user_agent.map(str::trim).filter(|a| !a.is_empty()) else {
            return Device::unknown();
        };
        let agent = truncate(agent, MAX_USER_AGENT_LEN);
        let parsed = Parser::new().parse(agent);
        let mut device = Device::unknown();
        let browser_like = parsed
            .as_ref()
            .filter(|r| r.name != VALUE_UNKNOWN && r.category != "misc");
        match browser_like {
            Some(r) => {
                device.browser = known(r.name);
                device.version = known(r.version);
                device.os = known(r.os);
            }
            None => {
                if let Some((product, version)) = first_product(agent) {
                    device.browser = clean(product);
                    device.version = clean(version);
                }
                if let Some(os) = parsed.as_ref().map(|r| r.os) {
                    device.os = known(os);
                }
            }
        }
        if let Some(category) = parsed.as_ref().map(|r| r.category) {
            device.platform = known(category);
        }
        device.is_dev = device.browser == "PostmanRuntime";
        device
    }
}

/// woothee's value, or "unknown" for its UNKNOWN / empty.
fn known(value: &str) -> String {
    if value.is_empty() || value == VALUE_UNKNOWN {
        UNKNOWN.into()
    } else {
        clean(value)
    }
}

/// The client's own `product/version` token (RFC 9110 section 10.1.5): the first one, or,
/// when that is the generic `Mozilla/5.0` of a browser-like agent woothee did not know, the
/// last one (`... SomeApp/1.0`).
fn first_product(agent: &str) -> Option<(&str, &str)> {
    let mut products = agent
        .split_whitespace()
        .filter(|token| !token.starts_with('('));
    let mut chosen = products.clone().next()?;
    if chosen.starts_with("Mozilla/")
        && let Some(last) = products.rfind(|t| t.contains('/'))
    {
        chosen = last;
    }
    let (product, version) = chosen.split_once('/').unwrap_or((chosen, ""));
    if product.is_empty() {
        return None;
    }
    Some((product, if version.is_empty() { UNKNOWN } else { version }))
}

/// Keeps printable characters only, bounded in length; nothing left is "unknown".
fn clean(value: &str) -> String {
    let cleaned: String = value.chars().filter(|c| !c.is_control()).collect();
    match truncate(cleaned.trim(), MAX_FIELD_LEN) {
        "" => UNKNOWN.to_string(),
        kept => kept.to_string(),
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;

/// The request's User-Agent, if it is text.
pub fn user_agent(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

/// Longest location value kept from the configured header.
const MAX_LOCATION_LEN: usize = 128;

/// The client's location from `header` (`sessions.location_header`), else "unknown": trimmed,
/// without control characters, at most 128 characters.
pub fn location(headers: &http::HeaderMap, header: Option<&http::HeaderName>) -> String {
    header
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_LOCATION_LEN)
                .collect::<String>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| UNKNOWN.to_string())
}
