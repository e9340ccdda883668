//! Shrinking a failure: the smallest size that still fails, then simpler leaf values.

use super::*;

/// Simpler leaf values that still fail: each leaf rounded to halves, then all ones.
pub(super) fn simplify(
    def: &RuleDef,
    rules: &RuleSet,
    mut inst: Instance,
    mut m: Mismatch,
    mut b: Vec<(String, String)>,
    tol: Tolerance,
) -> (Instance, Mismatch, Vec<(String, String)>) {
    let leaves: Vec<usize> = (0..inst.vars.len())
        .filter(|&k| matches!(&inst.vars[k].1, Given::Tensor { value, .. } if value.dtype() == kayak_ir::DType::F32))
        .collect();
    for k in leaves {
        for mode in 0..2 {
            let Given::Tensor { value, is_const } = &inst.vars[k].1 else {
                continue;
            };
            let v = value.to_f64_vec();
            let simpler: Vec<f32> = v
                .iter()
                .map(|&x| {
                    if mode == 0 {
                        ((x * 2.0).round() / 2.0) as f32
                    } else {
                        1.0
                    }
                })
                .collect();
            let Ok(t) = Tensor::from_f32s(value.shape(), simpler) else {
                continue;
            };
            let mut trial = inst.clone();
            let is_const = *is_const;
            let Some(id) = trial.vars[k].2 else { continue };
            if is_const {
                trial.graph.values[id].def =
                    kayak_ir::ValueDef::Const(std::sync::Arc::new(t.clone()));
            } else if let Some(pos) = trial.graph.inputs.iter().position(|&i| i == id) {
                trial.inputs[pos] = t.clone();
            }
            trial.vars[k].1 = Given::Tensor { value: t, is_const };
            if let Outcome::Failed(m2, b2) = check(def, rules, &trial, tol) {
                inst = trial;
                m = m2;
                b = b2;
            }
        }
    }
    (inst, m, b)
}

pub(super) fn counterexample(
    def: &RuleDef,
    source: &str,
    seed: u64,
    size: usize,
    inst: &Instance,
    m: Mismatch,
    b: Vec<(String, String)>,
) -> Counterexample {
    let (lhs, rhs) = match &def.multi {
        None => (def.lhs.to_string(), def.rhs.to_string()),
        Some((l, r)) => {
            let side = |x: &[(Var, PatternAst<crate::Node>)]| {
                x.iter()
                    .map(|(v, p)| format!("{v} = {p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (side(l), side(r))
        }
    };
    Counterexample {
        rule: def.name.clone(),
        at: def.at.clone(),
        lhs,
        rhs,
        source: source.to_string(),
        seed,
        size,
        instance: sexpr(&inst.graph),
        bindings: b,
        optimized: String::new(),
        mismatch: m,
    }
}
