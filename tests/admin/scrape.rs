//! A scrape of `/metrics`, parsed: its samples by name and labels. And the names of the
//! families the tests read.

use std::collections::BTreeMap;

use http::StatusCode;

use crate::support::*;

/// One sample line of the text format: `name{label="value",...} value`.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// One scrape of `/metrics`: the text and its samples.
pub(crate) struct Scrape {
    pub(crate) text: String,
    pub(crate) samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the sample with exactly this name and these labels, if present.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// Like [`Scrape::get`], with an absent series read as 0 (a labelled counter appears at
    /// its first increment).
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

/// Parses the Prometheus text format's sample lines (comments and blank lines skipped).
pub(crate) fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("unparsable metric line {line:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        let end;
        loop {
            // Skip separators, stop at the closing brace.
            match chars.peek()? {
                (_, ',') | (_, ' ') => {
                    chars.next();
                    continue;
                }
                (i, '}') => {
                    end = Some(*i);
                    break;
                }
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
        }
        rest = &after_brace[end? + 1..];
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

pub(crate) async fn scrape(h: &Harness) -> Scrape {
    let response = h.admin_get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let text = String::from_utf8(response.body.to_vec()).expect("the metrics are UTF-8");
    let samples = parse_metrics(&text);
    Scrape { text, samples }
}

pub(crate) const REQUESTS: &str = "sessiongate_http_requests_total";
pub(crate) const DECISIONS: &str = "sessiongate_auth_decisions_total";
pub(crate) const CREATED: &str = "sessiongate_sessions_created_total";
pub(crate) const ACTIVE: &str = "sessiongate_sessions_active";
pub(crate) const REVOKED: &str = "sessiongate_sessions_revoked_total";
pub(crate) const UPSTREAM_ERRORS: &str = "sessiongate_upstream_errors_total";
