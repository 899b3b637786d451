use http::{Method, StatusCode};

use super::{Metrics, StoreOp};

/// The value of the sample `name{labels}` in `metrics`' exposition, if it is there.
fn sample(metrics: &Metrics, name_and_labels: &str) -> Option<f64> {
    metrics.render().lines().find_map(|line| {
        let value = line.strip_prefix(name_and_labels)?.strip_prefix(' ')?;
        Some(value.parse().expect("a sample's value is a number"))
    })
}

fn requests(class: &str, method: &str, status: &str) -> String {
    format!(
        "sessiongate_http_requests_total{{method=\"{method}\",route_class=\"{class}\",status=\"{status}\"}}"
    )
}

#[test]
fn each_request_is_counted_in_its_own_route_class_method_and_status() {
    let metrics = Metrics::new();
    let cases = [
        ("session", Method::GET, 200, 3_usize),
        ("session", Method::POST, 200, 1),
        ("public", Method::GET, 200, 2),
        ("session", Method::GET, 401, 1),
        ("login", Method::POST, 599, 1),
        // Outside the table: counted all the same.
        ("public", Method::GET, 999, 2),
        ("invalid", Method::from_bytes(b"PROPFIND").unwrap(), 405, 1),
    ];
    for (class, method, status, times) in &cases {
        for _ in 0..*times {
            let status = StatusCode::from_u16(*status).unwrap();
            metrics.observe_request(class, method, status, 0.001);
        }
    }
    for (class, method, status, times) in &cases {
        let method = if method.as_str() == "PROPFIND" {
            "OTHER"
        } else {
            method.as_str()
        };
        let name = requests(class, method, &status.to_string());
        assert_eq!(sample(&metrics, &name), Some(*times as f64), "{name}");
    }
    // Nothing else was counted, and a label set never used has no series.
    assert_eq!(sample(&metrics, &requests("public", "POST", "200")), None);
    let total: usize = cases.iter().map(|(.., times)| times).sum();
    let counted: f64 = metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("sessiongate_http_requests_total{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(counted, total as f64);
    let session_durations =
        "sessiongate_http_request_duration_seconds_count{route_class=\"session\"}";
    assert_eq!(sample(&metrics, session_durations), Some(5.0));
}

#[test]
fn every_store_operation_exists_from_the_start_and_is_timed_in_its_own_series() {
    let metrics = Metrics::new();
    let count = |op: &str| {
        let name = format!("sessiongate_store_operation_duration_seconds_count{{op=\"{op}\"}}");
        sample(&metrics, &name)
    };
    for (at, op) in StoreOp::ALL.into_iter().enumerate() {
        // Each operation's series is found by its discriminant.
        assert_eq!(op as usize, at, "{op:?}");
        assert_eq!(count(op.label()), Some(0.0), "{}", op.label());
    }
    metrics.store_timer(StoreOp::FindAccess).observe_duration();
    metrics.store_timer(StoreOp::FindAccess).observe_duration();
    metrics.store_timer(StoreOp::Touch).observe_duration();
    assert_eq!(count("find_access"), Some(2.0));
    assert_eq!(count("touch"), Some(1.0));
    assert_eq!(count("create"), Some(0.0));
}
