//! Property-based verification: every built-in rule verifies; deliberately wrong rules are
//! each caught with a shrunk counterexample; the whole optimizer keeps random graphs' values.
//!
//! Case counts are bounded for CI; `KAYAK_VERIFY_CASES` (instances per rule) and
//! `KAYAK_VERIFY_GRAPHS` (optimizer graphs) raise them for a long run.

use egg::Id;
use kayak_ir::ops::{LayerNorm, MatMul, SkipLayerNorm, UnaryOp};
use kayak_ir::Op;
use kayak_rewrite::verify::{self, Mismatch, VerifyConfig};
use kayak_rewrite::{attr_leaf, KGraph, RuleSet};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn every_builtin_rule_verifies() {
    let rules = RuleSet::builtin();
    let cfg = VerifyConfig {
        cases: env_usize("KAYAK_VERIFY_CASES", 25),
        ..Default::default()
    };
    let verdicts = verify::verify_rules(&rules, &cfg).unwrap();
    assert!(verdicts.len() >= 30, "{} rules", verdicts.len());
    for v in &verdicts {
        if let Some(f) = &v.failure {
            panic!("{f}");
        }
        // Every rule must be exercised, not skipped for lack of instances.
        assert!(
            v.checked >= cfg.cases / 3,
            "{}: only {} instances checked (rejected: {:?})",
            v.rule,
            v.checked,
            v.rejected
        );
    }
}

/// Runs a planted wrong rule and returns its counterexample, printed.
fn caught(rules: &RuleSet, name: &str) -> verify::Counterexample {
    let cfg = VerifyConfig {
        cases: 40,
        seed: 7,
        ..Default::default()
    };
    let v = verify::verify_rule(rules, name, &cfg).unwrap();
    let f = v
        .failure
        .unwrap_or_else(|| panic!("{name} was not caught ({} instances checked)", v.checked));
    println!("{f}\n");
    assert_eq!(f.rule, name);
    assert!(
        f.size >= 1 && f.size <= 2,
        "{name}: not shrunk (size {})",
        f.size
    );
    let text = f.to_string();
    assert!(text.contains("instance: ("), "{text}");
    f
}

fn values_differ(f: &verify::Counterexample) {
    assert!(
        matches!(f.mismatch, Mismatch::Values { .. }),
        "expected differing values: {f}"
    );
}

fn with_rule(text: &str) -> RuleSet {
    let mut rules = RuleSet::builtin();
    rules.add_text(text, "planted.rules").unwrap();
    rules
}

#[test]
fn planted_conv_bn_fold_without_bn_bias_is_caught() {
    let rules = with_rule(
        "conv_bn_fold_no_bias: (batch_norm ?bn (fused_conv ?f ?x ?w ?b) ?s ?t ?m ?v) => (fused_conv ?f ?x ?w2 ?b)
    if plain_conv(?f), is_const(?w), is_const(?s), is_const(?t), is_const(?m), is_const(?v)
    let ?w2 = bn_fold_weight(?w, ?s, ?v, ?bn)",
    );
    values_differ(&caught(&rules, "conv_bn_fold_no_bias"));
}

#[test]
fn planted_relu6_as_relu_is_caught() {
    let rules = with_rule("relu6_as_relu: (relu6 ?h ?x) => (relu ?x)");
    values_differ(&caught(&rules, "relu6_as_relu"));
}

fn flip_trans_y(eg: &mut KGraph, a: &[Id]) -> Option<Id> {
    let Some(Op::MatMul(m)) = eg[a[0]].data.op().cloned() else {
        return None;
    };
    Some(attr_leaf(
        eg,
        Op::MatMul(MatMul {
            trans_y: !m.trans_y,
            ..m
        }),
    ))
}

#[test]
fn planted_matmul_with_transpose_flag_flipped_is_caught() {
    let mut rules = RuleSet::builtin();
    rules.register_applier("flip_trans_y", 1, flip_trans_y);
    rules
        .add_text(
            "matmul_flipped: (matmul ?m ?x ?y) => (matmul ?n ?x ?y)\n    let ?n = flip_trans_y(?m)",
            "planted.rules",
        )
        .unwrap();
    caught(&rules, "matmul_flipped");
}

#[test]
fn planted_reshape_with_wrong_shape_is_caught() {
    // Keeps the inner target instead of the outer one.
    let rules = with_rule("reshape_keeps_inner: (reshape ?a (reshape ?b ?x)) => (reshape ?b ?x)");
    let f = caught(&rules, "reshape_keeps_inner");
    assert!(matches!(f.mismatch, Mismatch::Type { .. }), "{f}");
}

#[test]
fn planted_attention_with_softmax_over_any_axis_is_caught() {
    // The built-in attention rule without its softmax-axis precondition.
    let rules = with_rule(
        "attention_any_axis: (reshape ?r2 (transpose ?t3 (matmul ?m2 (softmax ?sm (add ?am (matmul ?m1 (scale ?sc (transpose ?tq (reshape ?rq ?q))) (transpose ?tk (reshape ?rk ?k))) ?mask)) (transpose ?tv (reshape ?rv ?v))))) => (attention ?att ?q ?k ?v ?mask)
    if no_bias_scale(?sc), attention_ok(?rq, ?rk, ?rv, ?tq, ?tk, ?tv, ?m1, ?am, ?m2, ?t3, ?r2)
    let ?att = attention_attrs(?rq, ?sc)",
    );
    values_differ(&caught(&rules, "attention_any_axis"));
}

fn swap_slope_offset(eg: &mut KGraph, a: &[Id]) -> Option<Id> {
    let Some(Op::Unary(UnaryOp::HardSigmoid { slope, offset })) = eg[a[0]].data.op().cloned()
    else {
        return None;
    };
    Some(attr_leaf(
        eg,
        Op::Unary(UnaryOp::HardSigmoid {
            slope: offset,
            offset: slope,
        }),
    ))
}

#[test]
fn planted_hard_sigmoid_with_slope_and_offset_swapped_is_caught() {
    let mut rules = RuleSet::builtin();
    rules.register_applier("swap_slope_offset", 1, swap_slope_offset);
    rules
        .add_text(
            "hard_sigmoid_swapped: (hard_sigmoid ?h ?x) => (hard_sigmoid ?g ?x)\n    let ?g = swap_slope_offset(?h)",
            "planted.rules",
        )
        .unwrap();
    values_differ(&caught(&rules, "hard_sigmoid_swapped"));
}

fn skip_ln_without_epsilon(eg: &mut KGraph, a: &[Id]) -> Option<Id> {
    let Some(Op::LayerNorm(ln)) = eg[a[0]].data.op().cloned() else {
        return None;
    };
    Some(attr_leaf(
        eg,
        Op::SkipLayerNorm(SkipLayerNorm {
            ln: LayerNorm { epsilon: 0.0, ..ln },
        }),
    ))
}

#[test]
fn planted_layer_norm_without_epsilon_is_caught() {
    let mut rules = RuleSet::builtin();
    rules.register_applier("skip_ln_without_epsilon", 1, skip_ln_without_epsilon);
    rules
        .add_text(
            "skip_layer_norm_no_eps: (layer_norm ?l (add ?a ?x ?y) ?s ?b) => (skip_layer_norm ?k ?x ?y ?s ?b)
    if same_type_tensors(?x, ?y)
    let ?k = skip_ln_without_epsilon(?l)",
            "planted.rules",
        )
        .unwrap();
    values_differ(&caught(&rules, "skip_layer_norm_no_eps"));
}

#[test]
fn optimizer_keeps_values_on_random_graphs() {
    let cfg = VerifyConfig {
        cases: env_usize("KAYAK_VERIFY_GRAPHS", 300),
        seed: 1,
        ..Default::default()
    };
    let v = verify::verify_optimizer(&RuleSet::builtin(), &cfg).unwrap();
    if let Some(f) = &v.failure {
        panic!("{f}");
    }
    assert_eq!(v.graphs, cfg.cases);
    let applied: usize = v.rules_applied.values().sum();
    println!(
        "{} graphs, ops {} -> {}, {} rule applications over {} rules",
        v.graphs,
        v.ops.0,
        v.ops.1,
        applied,
        v.rules_applied.len()
    );
    // The generators must exercise the library, not just pass through it.
    assert!(v.ops.1 < v.ops.0);
    assert!(v.rules_applied.len() >= 30, "{:?}", v.rules_applied);
}

#[test]
fn optimizer_with_a_planted_wrong_rule_is_caught_and_shrunk() {
    // Fuses a conv's bias add by dropping it.
    let rules = with_rule(
        "conv_bias_dropped: (add ?a (fused_conv ?f ?x ?w ?b) ?c) => (fused_conv ?f ?x ?w ?b)
    if plain_conv(?f), channel_bias(?a, ?c, ?w, ?f)",
    );
    let cfg = VerifyConfig {
        cases: 200,
        seed: 3,
        ..Default::default()
    };
    let v = verify::verify_optimizer(&rules, &cfg).unwrap();
    let f = v
        .failure
        .expect("a conv with a bias computes something else");
    println!("{f}");
    assert!(f.instance.contains("(add (conv2d"), "{f}");
    assert!(f.optimized.contains("FusedConv"), "{f}");
    assert!(f.size <= 2, "not shrunk: {f}");
    assert!(matches!(f.mismatch, Mismatch::Values { .. }), "{f}");
}

#[test]
fn random_op_cases_cover_the_kernel_kinds() {
    // The cases fast kernels are property-tested on: they must type-check and evaluate, and
    // vary in shape and attributes.
    for (kind, arity) in [
        ("conv2d", 2),
        ("conv2d", 3),
        ("fused_conv", 3),
        ("fused_conv", 4),
        ("conv2d_transpose", 3),
        ("matmul", 2),
        ("fused_matmul", 3),
        ("mul", 2),
        ("pool2d", 1),
        ("batch_norm", 5),
        ("layer_norm", 3),
        ("softmax", 1),
        ("add", 2),
        ("mul_elementwise", 2),
        ("div", 2),
        ("gelu", 1),
        ("hard_swish", 1),
        ("sigmoid", 1),
        ("reduce_mean", 1),
        ("transpose", 1),
        ("attention", 4),
        ("embedding", 2),
    ] {
        let mut ok = 0;
        let mut shapes = std::collections::BTreeSet::new();
        for seed in 0..60u64 {
            if let Some((op, inputs)) = verify::random_op(kind, arity, seed, 1 + seed as usize % 4)
            {
                let refs: Vec<&kayak_ir::Tensor> = inputs.iter().collect();
                let out = op
                    .eval(&refs)
                    .unwrap_or_else(|e| panic!("{kind} {op:?}: {e}"));
                assert_eq!(op.name(), kind);
                shapes.insert(format!("{:?}", out[0].shape()));
                ok += 1;
            }
        }
        assert!(ok >= 40, "{kind}/{arity}: only {ok} of 60 draws type-check");
        assert!(shapes.len() >= 5, "{kind}/{arity}: shapes {shapes:?}");
    }
}

mod props {
    use kayak_rewrite::verify::{check_graph, strategy, Tolerance};
    use kayak_rewrite::RuleSet;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
        /// proptest drives the generators (and would shrink a failure toward size 1).
        #[test]
        fn optimized_graphs_compute_the_same(rg in strategy::graph()) {
            let r = check_graph(&rg, &RuleSet::builtin(), Tolerance::default());
            prop_assert!(r.is_ok(), "{} seed {} size {}: {:?}", rg.kind, rg.seed, rg.size, r.err());
        }
    }

    #[test]
    fn proptest_shrinks_a_failure_to_a_small_graph() {
        let mut rules = RuleSet::builtin();
        rules
            .add_text("add_dropped: (add ?a ?x ?y) => ?x", "planted.rules")
            .unwrap();
        use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
        let mut runner = TestRunner::new_with_rng(
            ProptestConfig {
                cases: 200,
                failure_persistence: None,
                ..ProptestConfig::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let result = runner.run(&strategy::graph_of("mlp"), |rg| {
            prop_assert!(check_graph(&rg, &rules, Tolerance::default()).is_ok());
            Ok(())
        });
        match result {
            Err(proptest::test_runner::TestError::Fail(_, rg)) => {
                println!(
                    "shrunk to size {} seed {}: {} nodes",
                    rg.size,
                    rg.seed,
                    rg.graph.nodes.len()
                );
                assert!(check_graph(&rg, &rules, Tolerance::default()).is_err());
                assert!(
                    rg.size < 4,
                    "shrunk toward the smallest size, got {}",
                    rg.size
                );
            }
            other => panic!("the planted rule was not caught: {other:?}"),
        }
    }
}
