//! The op table's derived parts agree with each family's definition: kinds are unique,
//! attribute-free kinds round-trip, every sampler draws instances of its own kind whose
//! reference semantics produce exactly the types inference promised.

use kayak_ir::sample::{fit, Hint, Rng};
use kayak_ir::{Op, Tensor};
use std::collections::HashSet;

/// Kinds whose family has no sampler (they are verified inside the optimizer's model-like
/// random graphs and on real models, not drawn alone). Giving one a sampler fails
/// `every_sampler_draws_well_typed_instances_of_its_kind` until it leaves this list.
const UNSAMPLED: &[&str] = &[
    "mod",
    "floor_div",
    "equal",
    "not_equal",
    "less_than",
    "less_equal",
    "greater_than",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "prelu",
    "where",
    "fc",
    "arg_max",
    "concat",
    "stack",
    "strided_slice",
    "gather",
    "gather_elements",
    "scatter_elements",
    "scatter_nd",
    "gather_nd",
    "top_k",
    "grid_sample",
    "pad",
    "nearest_interp",
    "bilinear_interp",
    "bicubic_interp",
    "fill_constant",
    "fill_any_like",
    "range",
    "se_block",
    "skip_layer_norm",
    "fused_binary",
    "embedding_layer_norm",
];

#[test]
fn kinds_are_unique_and_attribute_free_kinds_round_trip() {
    let mut seen = HashSet::new();
    for k in Op::kinds() {
        assert!(seen.insert(*k), "kind `{k}` is defined twice");
        if let Some(op) = Op::param_free(k) {
            assert_eq!(op.name(), *k, "param_free({k}) gives another kind");
        }
    }
    assert!(Op::param_free("conv2d").is_none());
    assert!(Op::param_free("no_such_kind").is_none());
    for k in UNSAMPLED {
        assert!(seen.contains(k), "UNSAMPLED names `{k}`, which is no kind");
    }
}

#[test]
fn every_sampler_draws_well_typed_instances_of_its_kind() {
    for kind in Op::kinds() {
        let mut drawn = 0;
        for seed in 0..60u64 {
            for arity in 1..=5 {
                let known = vec![None; arity];
                let hints = vec![Hint::Any; arity];
                let mut r = Rng::new(seed * 7 + arity as u64);
                let Some((op, leaves)) = fit(kind, &mut r, 3, None, &known, &hints) else {
                    continue;
                };
                assert_eq!(op.name(), *kind, "the sampler of `{kind}` drew {op:?}");
                // An arity the family does not take leaves inputs without a leaf (the
                // instantiation rejects the draw); patterns give the right arity.
                let Some(inputs) = leaves
                    .iter()
                    .map(|l| l.as_ref().and_then(|l| l.value(&mut r)))
                    .collect::<Option<Vec<Tensor>>>()
                else {
                    continue;
                };
                let refs: Vec<&Tensor> = inputs.iter().collect();
                // A draw may not type-check (a kernel larger than its padded input); the
                // ones that do must evaluate to exactly the inferred types.
                let Ok(types) = op.infer_concrete(&refs) else {
                    continue;
                };
                let outs = op
                    .eval(&refs)
                    .unwrap_or_else(|e| panic!("{op:?} on {refs:?}: inferred, then {e}"));
                assert_eq!(outs.len(), op.num_outputs(), "{op:?}");
                for (t, ty) in outs.iter().zip(&types) {
                    assert_eq!(t.type_info(), *ty, "{op:?}: eval and infer disagree");
                }
                drawn += 1;
            }
        }
        if UNSAMPLED.contains(kind) {
            assert_eq!(
                drawn, 0,
                "`{kind}` has a sampler now: take it off UNSAMPLED"
            );
        } else {
            assert!(
                drawn >= 10,
                "`{kind}`: {drawn} well-typed instances; give its family a sampler \
                 (OpDef::sample) or list it in UNSAMPLED"
            );
        }
    }
}
