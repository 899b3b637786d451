//! The deployment example's Prometheus files (`examples/deploy/`): the scrape config and the
//! alerting rules are valid, and the rules pass their own unit tests (`alerts.test.yml`:
//! each alert fires, and only, when its series say it should).

use std::path::Path;
use std::process::Command;

use crate::text_format::promtool;

#[test]
fn the_alerting_rules_are_valid_and_pass_their_unit_tests() {
    let Some(promtool) = promtool("the_alerting_rules_are_valid_and_pass_their_unit_tests") else {
        return;
    };
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts.test.yml"],
        &["check", "config", "--syntax-only", "prometheus.yml"],
    ] {
        let output = Command::new(&promtool)
            .args(args)
            .current_dir(&deploy)
            .output()
            .expect("promtool runs");
        assert!(
            output.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
