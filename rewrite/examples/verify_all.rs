//! Verifies every built-in rule and prints a line per rule (a quick look at coverage).
fn main() {
    let rules = kayak_rewrite::RuleSet::builtin();
    let cases = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let cfg = kayak_rewrite::verify::VerifyConfig {
        cases,
        ..Default::default()
    };
    for d in rules.rules() {
        let t = std::time::Instant::now();
        let v = kayak_rewrite::verify::verify_rule(&rules, &d.name, &cfg).unwrap();
        println!(
            "{:32} checked {:3} (drawn {:3}, found {:3}) {:6.0} ms  rejected {:?}",
            d.name,
            v.checked,
            v.drawn,
            v.found,
            t.elapsed().as_secs_f64() * 1e3,
            v.rejected.iter().take(3).collect::<Vec<_>>()
        );
        if let Some(f) = v.failure {
            println!("{f}");
        }
    }
}
