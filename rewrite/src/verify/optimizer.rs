//! Whole-pipeline verification on random graphs, and random op instances for kernel property tests.

use super::*;

/// A random instance of one op kind with input values, drawn as rule instances are
/// (attributes from the values models use, shapes that type-check): the cases a fast kernel
/// is property-tested on against the reference op ([`kayak_ir::Op::eval`]). `arity` is the
/// number of tensor inputs (2 for a conv without bias, 3 with). `None` when this draw does
/// not type-check; callers draw again with another seed.
pub fn random_op(
    kind: &str,
    arity: usize,
    seed: u64,
    size: usize,
) -> Option<(kayak_ir::Op, Vec<Tensor>)> {
    let mut r = Rng::new(seed);
    let known = vec![None; arity];
    let (op, leaves) = sample::fit(
        kind,
        &mut r,
        size.clamp(1, graphs::MAX_SIZE),
        None,
        &known,
        &[],
    )?;
    let inputs = leaves
        .iter()
        .map(|l| sample::leaf_value(&mut r, l.as_ref()?))
        .collect::<Option<Vec<Tensor>>>()?;
    let refs: Vec<&Tensor> = inputs.iter().collect();
    op.infer_concrete(&refs).ok()?;
    Some((op, inputs))
}

/// What running the optimizer on random graphs found.
#[derive(Debug, Clone)]
pub struct OptimizerVerdict {
    /// Graphs optimized and compared.
    pub graphs: usize,
    /// Rule applications over all graphs.
    pub rules_applied: BTreeMap<String, usize>,
    /// Compute nodes before and after, summed.
    pub ops: (usize, usize),
    /// The smallest graph found whose optimized form computes something else.
    pub failure: Option<Counterexample>,
}

/// Why an optimized graph was rejected.
#[derive(Debug, Clone)]
pub struct GraphFailure {
    /// What differs.
    pub mismatch: Mismatch,
    /// The optimized graph, one node a line (empty if optimization itself failed).
    pub optimized: String,
}

impl GraphFailure {
    fn new(mismatch: Mismatch, optimized: String) -> Box<GraphFailure> {
        Box::new(GraphFailure {
            mismatch,
            optimized,
        })
    }
}

/// Optimizes one random graph with the full pipeline and compares it with the original.
pub fn check_graph(
    rg: &graphs::RandomGraph,
    rules: &RuleSet,
    tol: Tolerance,
) -> std::result::Result<crate::Optimized, Box<GraphFailure>> {
    let g = &rg.graph;
    let o = optimize(g, &g.outputs, rules, &Limits::default(), &CostModel::cpu())
        .map_err(|e| GraphFailure::new(Mismatch::Error(e.to_string()), String::new()))?;
    let listing = |og: &Graph| {
        og.nodes
            .iter()
            .map(|n| {
                let ins: Vec<&str> = n
                    .inputs
                    .iter()
                    .map(|&i| og.values[i].name.as_str())
                    .collect();
                let outs: Vec<String> = n
                    .outputs
                    .iter()
                    .map(|&o| format!("{}:{}", og.values[o].name, og.values[o].ty))
                    .collect();
                format!("    {} = {:?} ({})", outs.join(", "), n.op, ins.join(", "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let want = g
        .evaluate(&rg.inputs)
        .map_err(|e| GraphFailure::new(Mismatch::Error(format!("original: {e}")), String::new()))?;
    let mut og = o.graph.clone();
    og.outputs = o.keep.clone();
    let got = og
        .evaluate(&rg.inputs)
        .map_err(|e| GraphFailure::new(Mismatch::Error(e.to_string()), listing(&og)))?;
    for (k, (a, b)) in got.iter().zip(&want).enumerate() {
        if let Some(m) = compare(k, a, b, tol) {
            return Err(GraphFailure::new(m, listing(&og)));
        }
    }
    Ok(o)
}

/// Runs [`check_graph`] on `cfg.cases` random graphs of every generator and sizes.
pub fn verify_optimizer(rules: &RuleSet, cfg: &VerifyConfig) -> Result<OptimizerVerdict> {
    let max_size = cfg.max_size.clamp(1, graphs::MAX_SIZE);
    let mut v = OptimizerVerdict {
        graphs: 0,
        rules_applied: BTreeMap::new(),
        ops: (0, 0),
        failure: None,
    };
    for case in 0..cfg.cases {
        let seed = mix(cfg.seed ^ 0x0A7 ^ case as u64);
        let size = 1 + case % max_size;
        let rg = graphs::random_graph(seed, size);
        v.graphs += 1;
        match check_graph(&rg, rules, cfg.tolerance) {
            Ok(o) => {
                v.ops.0 += o.report.ops_before;
                v.ops.1 += o.report.ops_after;
                for (r, n) in o.report.rules_applied {
                    *v.rules_applied.entry(r).or_insert(0) += n;
                }
            }
            Err(fail) => {
                let GraphFailure {
                    mismatch: m,
                    optimized: listing,
                } = *fail;
                // Shrink: the smallest size of the same generator that still fails.
                let mut best = (rg, m, listing);
                'sizes: for s in 1..size {
                    for t in 0..24u64 {
                        let sd = mix(seed ^ ((s as u64) << 32) ^ t);
                        let k = (seed % graphs::GENERATORS.len() as u64) as usize;
                        let cand = (graphs::GENERATORS[k].1)(sd, s);
                        if let Err(fail) = check_graph(&cand, rules, cfg.tolerance) {
                            best = (cand, fail.mismatch, fail.optimized);
                            break 'sizes;
                        }
                    }
                }
                let (rg, m, listing) = best;
                let mut bindings = Vec::new();
                for (&i, t) in rg.graph.inputs.iter().zip(&rg.inputs) {
                    bindings.push((
                        rg.graph.values[i].name.clone(),
                        format!("input {}", describe_value(t)),
                    ));
                }
                v.failure = Some(Counterexample {
                    rule: "optimizer".into(),
                    at: format!("{} rules", rules.rules().len()),
                    lhs: String::new(),
                    rhs: String::new(),
                    source: format!("`{}` graph", rg.kind),
                    seed: rg.seed,
                    size: rg.size,
                    instance: sexpr(&rg.graph),
                    bindings,
                    optimized: listing,
                    mismatch: m,
                });
                return Ok(v);
            }
        }
    }
    Ok(v)
}
