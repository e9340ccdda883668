//! Checking one instance of a rule: match the left side, run the conditions and appliers as the optimizer does, build the right side, evaluate both and compare.

use super::*;

pub(super) enum Outcome {
    Rejected(String),
    Passed,
    Failed(Mismatch, Vec<(String, String)>),
}

pub(super) fn hints_of(def: &RuleDef) -> HashMap<Var, Hint> {
    let mut h = HashMap::new();
    for c in &def.conds {
        let hint = match c.name.as_str() {
            "is_const" => Hint::Const,
            "not_const" => Hint::Input,
            "scalar_const" => Hint::Scalar,
            _ => continue,
        };
        for &a in &c.args {
            h.insert(a, hint);
        }
    }
    h
}

pub(super) fn patterns(def: &RuleDef) -> Vec<&PatternAst<crate::Node>> {
    match &def.multi {
        Some((l, _)) => l.iter().map(|(_, p)| p).collect(),
        None => vec![&def.lhs.ast],
    }
}

pub(super) fn describe_value(t: &Tensor) -> String {
    let v = t.to_f64_vec();
    format!("{} {}", t.type_info(), fmt_vals(&v))
}

/// Checks one instance: match the left side at its roots, run the rule's conditions and
/// appliers, build the right side, compare.
pub(super) fn check(def: &RuleDef, rules: &RuleSet, inst: &Instance, tol: Tolerance) -> Outcome {
    let g = &inst.graph;
    let lifted = match lift(g, &g.outputs, true) {
        Ok(l) => l,
        Err(e) => return Outcome::Rejected(format!("instance does not lift: {e}")),
    };
    let mut eg = lifted.egraph;
    let root_classes: Vec<Id> = lifted.roots.clone();
    // The substitutions that match the instance at its roots.
    let substs: Vec<Subst> = match &def.multi {
        None => def
            .lhs
            .search_eclass(&eg, root_classes[0])
            .map(|m| m.substs)
            .unwrap_or_default(),
        Some((l, _)) => {
            let mp = egg::MultiPattern::new(l.clone());
            mp.search(&eg)
                .into_iter()
                .flat_map(|m| m.substs)
                .filter(|s| {
                    l.iter()
                        .zip(&root_classes)
                        .all(|((v, _), &r)| eg.find(s[*v]) == eg.find(r))
                })
                .collect()
        }
    };
    if substs.is_empty() {
        return Outcome::Rejected("pattern does not match its instance".into());
    }
    let reg = rules.registry();
    let mut last_reject = String::new();
    for subst in substs {
        let s = match fire_calls(&def.conds, &def.lets, reg, &mut eg, &subst) {
            Ok(s) => s,
            Err(why) => {
                last_reject = why.to_string();
                continue;
            }
        };
        let bindings = bindings_of(def, &eg, &s, inst);
        // Right sides and the classes they must equal.
        let pairs: Vec<(Id, Id)> = match &def.multi {
            None => vec![(root_classes[0], eg.add_instantiation(&def.rhs.ast, &s))],
            Some((_, r)) => r
                .iter()
                .map(|(v, ast)| (s[*v], eg.add_instantiation(ast, &s)))
                .collect(),
        };
        for &(target, built) in &pairs {
            let (a, b) = (eg[target].data.ty().cloned(), eg[built].data.ty().cloned());
            match (a, b) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => {
                    let show = |t: Option<kayak_ir::TypeInfo>, id: Id| match t {
                        Some(t) => t.to_string(),
                        None => format!("{:?}", eg[id].data),
                    };
                    return Outcome::Failed(
                        Mismatch::Type {
                            lhs: show(a, target),
                            rhs: show(b, built),
                        },
                        bindings,
                    );
                }
            }
        }
        // Left: the instance graph itself, at the values the targets are.
        let mut lg = g.clone();
        lg.outputs = pairs
            .iter()
            .map(|&(t, _)| {
                let t = eg.find(t);
                (0..g.values.len())
                    .find(|&v| eg.find(lifted.classes[v]) == t)
                    .unwrap_or(g.outputs[0])
            })
            .collect();
        let want = match lg.evaluate(&inst.inputs) {
            Ok(w) => w,
            Err(e) => return Outcome::Rejected(format!("left side does not evaluate: {e}")),
        };
        // Right: extracted and lowered as the optimizer would.
        let built: Vec<Id> = pairs.iter().map(|&(_, b)| b).collect();
        let got = eval_classes(&eg, &built, g, &lifted.const_names, &inst.inputs);
        let got = match got {
            Ok(v) => v,
            Err(e) => return Outcome::Failed(Mismatch::Error(e), bindings),
        };
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            if let Some(m) = compare(k, a, b, tol) {
                return Outcome::Failed(m, bindings);
            }
        }
        return Outcome::Passed;
    }
    Outcome::Rejected(last_reject)
}

/// Values of e-classes: extracted (cheapest) and lowered, evaluated on `inputs`.
pub(super) fn eval_classes(
    eg: &KGraph,
    classes: &[Id],
    g: &Graph,
    const_names: &[String],
    inputs: &[Tensor],
) -> std::result::Result<Vec<Tensor>, String> {
    let (choice, _) =
        extract(eg, &CostModel::cpu(), classes).ok_or("no extraction for the right side")?;
    let names: Vec<String> = g.inputs.iter().map(|&v| g.values[v].name.clone()).collect();
    let (mut rg, keep, _) =
        lower(eg, &choice, classes, &names, const_names).map_err(|e| e.to_string())?;
    rg.outputs = keep;
    rg.evaluate(inputs).map_err(|e| e.to_string())
}

pub(super) fn compare(
    root: usize,
    got: &Tensor,
    want: &Tensor,
    tol: Tolerance,
) -> Option<Mismatch> {
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        return Some(Mismatch::Type {
            lhs: want.type_info().to_string(),
            rhs: got.type_info().to_string(),
        });
    }
    let (a, b) = (got.to_f64_vec(), want.to_f64_vec());
    let scale = b
        .iter()
        .filter(|x| x.is_finite())
        .fold(1.0f64, |m, x| m.max(x.abs()));
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&p, &q)) in a.iter().zip(&b).enumerate() {
        let bad = if p.is_finite() && q.is_finite() {
            let excess = (p - q).abs() - (tol.atol * scale + tol.rtol * q.abs());
            (excess > 0.0).then_some(excess)
        } else {
            let same = (p.is_nan() && q.is_nan()) || p == q;
            (!same).then_some(f64::INFINITY)
        };
        if let Some(e) = bad {
            if worst.is_none_or(|(_, w)| e > w) {
                worst = Some((i, e));
            }
        }
    }
    let (i, _) = worst?;
    let shape = want.shape().to_vec();
    let mut idx = vec![0; shape.len()];
    let mut rest = i;
    for d in (0..shape.len()).rev() {
        idx[d] = rest % shape[d].max(1);
        rest /= shape[d].max(1);
    }
    Some(Mismatch::Values {
        root,
        shape,
        lhs: b.iter().take(16).copied().collect(),
        rhs: a.iter().take(16).copied().collect(),
        worst_at: idx,
        worst: (b[i], a[i]),
        allowed: tol.atol * scale + tol.rtol * b[i].abs(),
    })
}

/// Each variable's binding, for the counterexample: pattern variables from the instance,
/// `let` variables from the e-graph.
pub(super) fn bindings_of(
    def: &RuleDef,
    eg: &KGraph,
    s: &Subst,
    inst: &Instance,
) -> Vec<(String, String)> {
    let g = &inst.graph;
    let mut out = Vec::new();
    for (v, given, id) in &inst.vars {
        let text = match given {
            Given::Attr(op) => format!("{op:?}"),
            Given::Tensor { value, is_const } => format!(
                "{} `{}` {}",
                if *is_const { "const" } else { "input" },
                id.map(|i| g.values[i].name.as_str()).unwrap_or("?"),
                describe_value(value)
            ),
        };
        out.push((v.to_string(), text));
    }
    for (v, _) in &def.lets {
        let c = s[*v];
        let text = match (&eg[c].data.op(), eg[c].data.value()) {
            (Some(op), _) => format!("{op:?}"),
            (None, Some(t)) => format!("const {}", describe_value(t)),
            _ => format!("{:?}", eg[c].data),
        };
        out.push((format!("{v} (let)"), text));
    }
    out
}

/// The instance as an s-expression over value names.
pub(super) fn sexpr(g: &Graph) -> String {
    fn go(g: &Graph, v: ValueId, out: &mut String) {
        match &g.values[v].def {
            kayak_ir::ValueDef::Node { node, output } => {
                let n = &g.nodes[*node];
                if n.outputs.len() > 1 {
                    out.push_str(&format!("(get{output} "));
                }
                out.push('(');
                out.push_str(n.op.name());
                for &i in &n.inputs {
                    out.push(' ');
                    go(g, i, out);
                }
                out.push(')');
                if n.outputs.len() > 1 {
                    out.push(')');
                }
            }
            _ => out.push_str(&format!("{}:{}", g.values[v].name, g.values[v].ty)),
        }
    }
    let mut parts = Vec::new();
    for &o in &g.outputs {
        let mut s = String::new();
        go(g, o, &mut s);
        parts.push(s);
    }
    parts.join(", ")
}

/// Tensor variables of the left side(s) and the classes of a match.
pub(super) fn var_classes(def: &RuleDef) -> Vec<Var> {
    let mut vs = Vec::new();
    for p in patterns(def) {
        for n in p.as_ref() {
            if let ENodeOrVar::Var(v) = n {
                if !vs.contains(v) {
                    vs.push(*v);
                }
            }
        }
    }
    vs
}
