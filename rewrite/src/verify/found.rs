//! Instances of a rule found in random model-like graphs after the other rules ran, for patterns a random draw rarely hits.

use super::*;

/// Instances of `def` found in a generated graph after the other rules ran: each match's
/// attribute variables keep their attributes, tensor variables become leaves holding the
/// values they had there.
pub(super) fn found_instances(
    def: &RuleDef,
    others: &RuleSet,
    rg: &graphs::RandomGraph,
    limit: usize,
) -> Vec<Instance> {
    let limits = Limits {
        node_limit: 20_000,
        iter_limit: 12,
        time_limit: std::time::Duration::from_secs(3),
    };
    let Ok(sat) = saturate(&rg.graph, &rg.graph.outputs, others, &limits) else {
        return vec![];
    };
    let eg = &sat.egraph;
    let matches: Vec<Subst> = match &def.multi {
        None => def
            .lhs
            .search(eg)
            .into_iter()
            .flat_map(|m| m.substs)
            .collect(),
        Some((l, _)) => egg::MultiPattern::new(l.clone())
            .search(eg)
            .into_iter()
            .flat_map(|m| m.substs)
            .collect(),
    };
    let reg = others.registry();
    let vars = var_classes(def);
    let mut out = Vec::new();
    for s in matches {
        if out.len() >= limit {
            break;
        }
        if check_conditions(&def.conds, reg, eg, &s).is_err() {
            continue;
        }
        let mut given = HashMap::new();
        let mut tensor_vars = Vec::new();
        for &v in &vars {
            let c = s[v];
            match (eg[c].data.op(), eg[c].data.value()) {
                (Some(op), _) => {
                    given.insert(v, Given::Attr(op.clone()));
                }
                (None, Some(t)) => {
                    given.insert(
                        v,
                        Given::Tensor {
                            value: (**t).clone(),
                            is_const: true,
                        },
                    );
                }
                (None, None) => tensor_vars.push((v, c)),
            }
        }
        let classes: Vec<Id> = tensor_vars.iter().map(|&(_, c)| c).collect();
        if !classes.is_empty() {
            let Ok(vals) = eval_classes(eg, &classes, &rg.graph, &sat.const_names, &rg.inputs)
            else {
                continue;
            };
            for ((v, _), t) in tensor_vars.iter().zip(vals) {
                given.insert(
                    *v,
                    Given::Tensor {
                        value: t,
                        is_const: false,
                    },
                );
            }
        }
        let mut r = Rng::new(0);
        if let Some(inst) = sample::instantiate(&patterns(def), &mut r, 1, &HashMap::new(), &given)
        {
            out.push(inst);
        }
    }
    out
}
