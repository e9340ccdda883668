//! Rule files: the built-ins parse and are documented; bad files are clear errors with
//! file:line; user rules change the optimized graph without recompiling.

mod common;
use common::*;
use kayak_ir::ops::UnaryOp;
use kayak_rewrite::{Error, RuleSet};

fn parse_err(text: &str) -> String {
    let mut r = RuleSet::empty();
    match r.add_text(text, "user.rules") {
        Err(Error::Rule { at, msg }) => format!("{at}: {msg}"),
        other => panic!("expected a rule error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn builtin_rules_parse_and_each_is_documented() {
    let r = RuleSet::builtin();
    assert!(r.rules().len() >= 30, "{} rules", r.rules().len());
    for d in r.rules() {
        assert!(
            d.doc.lines().count() >= 4,
            "{} ({}) lacks its What/Why/Preconditions/Example lines",
            d.name,
            d.at
        );
        assert!(!d.summary().is_empty());
        assert!(
            d.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            d.name
        );
    }
}

#[test]
fn bad_rule_files_name_file_and_line() {
    let e = parse_err(
        "# doc\n\nok_rule: (relu ?x) => (relu ?x)\n\nbad: (relu ?x) => (frobnicate ?x)\n",
    );
    assert!(
        e.starts_with("user.rules:5") && e.contains("frobnicate"),
        "{e}"
    );
    let e = parse_err("r: (relu ?x) => (sigmoid ?x)\n    if no_such_condition(?x)\n");
    assert!(
        e.starts_with("user.rules:2") && e.contains("unknown condition `no_such_condition`"),
        "{e}"
    );
    let e = parse_err("r: (scale ?a ?x) => (scale ?b ?x)\n    let ?b = no_such_applier(?a)\n");
    assert!(
        e.starts_with("user.rules:2") && e.contains("unknown applier"),
        "{e}"
    );
    let e = parse_err("r: (add ?a ?x ?c) => ?x\n    if channel_bias(?a)\n");
    assert!(
        e.starts_with("user.rules:2") && e.contains("takes 4 arguments"),
        "{e}"
    );
    let e = parse_err("r: (relu ?x) => (sigmoid ?y)\n");
    assert!(
        e.starts_with("user.rules:1") && e.contains("unbound ?y"),
        "{e}"
    );
    let e = parse_err("r (relu ?x) => ?x\n");
    assert!(e.starts_with("user.rules:1"), "{e}");
    let e = parse_err("r: (relu ?x) -> ?x\n");
    assert!(e.contains("`=>` or `<=>`"), "{e}");
    let e = parse_err("Bad-Name: (relu ?x) => ?x\n");
    assert!(e.contains("snake_case"), "{e}");
    let e = parse_err("r: (relu ?x) => ?x\nr: (sigmoid ?x) => ?x\n");
    assert!(e.contains("defined twice"), "{e}");
    let mut r = RuleSet::builtin();
    assert!(
        r.add_text("conv_bias: (relu ?x) => ?x\n", "user.rules")
            .is_err(),
        "a user rule may not shadow a built-in"
    );
    assert!(r.disable("no_such_rule").is_err());
}

fn double_relu() -> kayak_ir::Graph {
    let mut b = B::new();
    let x = b.input(&[2, 5]);
    let y = b.op(un(UnaryOp::Relu), &[x]);
    let y = b.op(un(UnaryOp::Relu), &[y]);
    b.out(&[y])
}

#[test]
fn a_user_rule_changes_the_graph_without_recompiling() {
    let g = double_relu();
    let run = |rules: &RuleSet| {
        kayak_rewrite::optimize(
            &g,
            &g.outputs,
            rules,
            &Default::default(),
            &kayak_rewrite::CostModel::cpu(),
        )
        .unwrap()
    };
    assert_eq!(
        run(&RuleSet::builtin()).report.ops_after,
        2,
        "the built-ins know nothing of relu∘relu"
    );
    let dir = std::env::temp_dir().join(format!("kayak-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mine.rules");
    std::fs::write(&file, "# relu is idempotent.\n# Why faster: one pass fewer.\n# Preconditions: none.\n# Example: relu(relu(x)) → relu(x)\nrelu_idempotent: (relu (relu ?x)) => (relu ?x)\n").unwrap();
    let mut rules = RuleSet::builtin();
    rules.add_file(&file).unwrap();
    let o = run(&rules);
    assert_eq!(o.report.ops_after, 1);
    assert_eq!(o.report.rules_applied.get("relu_idempotent"), Some(&1));
    // Disabled by name, it no longer applies.
    rules.disable("relu_idempotent").unwrap();
    assert_eq!(run(&rules).report.ops_after, 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn both_way_rules_make_two_rewrites() {
    let mut r = RuleSet::empty();
    r.add_text("swap: (add ?a ?x ?y) <=> (add ?a ?y ?x)\n", "t.rules")
        .unwrap();
    assert_eq!(r.rewrites().unwrap().len(), 2);
    assert!(parse_err("swap: (relu ?x) <=> (sigmoid ?x)\n    if is_const(?x)\n").contains("<=>"));
}
