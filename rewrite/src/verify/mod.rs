//! Property-based verification of rewrite rules and of the whole optimizer.
//!
//! - [`verify_rule`]: draws random instances of a rule's left side — concrete, well-typed
//!   graphs ([`sample`]) or, for patterns a random draw rarely hits (an attention block, a
//!   layer norm written in primitives), matches found in random model-like graphs
//!   ([`graphs`]) after the other rules have run. Instances whose conditions fail are
//!   counted as rejected, not checked. On the rest the right side is built as the optimizer
//!   builds it (the same [`crate::rules::fire_calls`], then instantiation), and both sides are
//!   evaluated with the reference semantics ([`kayak_ir::Graph::evaluate`]) and compared
//!   within a [`Tolerance`] scaled to the values. A right side of another type is a failure
//!   too. A failure is shrunk — the smallest size that still fails, then simpler leaf
//!   values — and returned as a [`Counterexample`] that prints the s-expression, shapes,
//!   attributes and differing values.
//! - [`verify_optimizer`]: random graphs through the full pipeline (saturation, extraction,
//!   lowering, constant materialization), compared with the unoptimized graph.
//!
//! ```
//! use kayak_rewrite::{verify, RuleSet};
//!
//! let mut rules = RuleSet::empty();
//! // Wrong: relu6 clamps at 6, relu does not.
//! rules.add_text("relu6_as_relu: (relu6 ?h ?x) => (relu ?x)", "mine.rules")?;
//! let cfg = verify::VerifyConfig { cases: 20, ..Default::default() };
//! let verdict = verify::verify_rule(&rules, "relu6_as_relu", &cfg)?;
//! let cex = verdict.failure.expect("relu6 is not relu");
//! assert!(cex.to_string().contains("relu6"));
//!
//! // Right: scaling by 1 with no bias is the identity.
//! assert!(verify::verify_rule(&RuleSet::builtin(), "scale_identity_elim", &cfg)?.passed());
//! # Ok::<(), kayak_rewrite::Error>(())
//! ```

pub mod graphs;
pub mod sample;
#[cfg(feature = "proptest")]
pub mod strategy;

use crate::analysis::KGraph;
use crate::cost::CostModel;
use crate::extract::extract;
use crate::lift::lift;
use crate::lower::lower;
use crate::optimize::{optimize, saturate, Limits, RuleSet};
use crate::rules::{check_conditions, fire_calls, RuleDef};
use crate::{Error, Result};
use egg::{ENodeOrVar, Id, PatternAst, Searcher, Subst, Var};
use kayak_ir::{Graph, Tensor, ValueId};
use sample::{Given, Hint, Instance};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The seedable generator of the samplers (`kayak_ir::sample::Rng`); verification runs are
/// reproducible from their seed.
pub use kayak_ir::sample::Rng;

/// SplitMix64's finalizer: spreads nearby seeds apart.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    })
}

/// `|a − b| ≤ atol · max(1, max|ref|) + rtol · |b|` for every element (`b` the reference).
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part, scaled by the largest reference magnitude.
    pub atol: f64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            rtol: 1e-3,
            atol: 1e-4,
        }
    }
}

/// How hard to look.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Instances to check per rule (graphs for [`verify_optimizer`]).
    pub cases: usize,
    /// Seed of the whole run.
    pub seed: u64,
    /// Draws per case before giving up on finding an instance that meets the conditions.
    pub attempts: usize,
    /// Largest size drawn (dimensions, blocks), 1 to [`graphs::MAX_SIZE`].
    pub max_size: usize,
    /// Comparison tolerance.
    pub tolerance: Tolerance,
}

impl Default for VerifyConfig {
    fn default() -> VerifyConfig {
        VerifyConfig {
            cases: 30,
            seed: 0,
            attempts: 60,
            max_size: graphs::MAX_SIZE,
            tolerance: Tolerance::default(),
        }
    }
}

/// How the two sides differ.
#[derive(Debug, Clone)]
pub enum Mismatch {
    /// The right side has another type than the left.
    Type {
        /// Left side's type.
        lhs: String,
        /// Right side's type.
        rhs: String,
    },
    /// Values differ beyond the tolerance.
    Values {
        /// Which root (multi-pattern rules have several).
        root: usize,
        /// Shape of the output.
        shape: Vec<usize>,
        /// Left side's values (the reference), the first few.
        lhs: Vec<f64>,
        /// Right side's values, the first few.
        rhs: Vec<f64>,
        /// Index of the worst element.
        worst_at: Vec<usize>,
        /// Left and right values there.
        worst: (f64, f64),
        /// The tolerance there.
        allowed: f64,
    },
    /// The right side fails to build or evaluate.
    Error(String),
}

/// A shrunk instance on which a rule (or the optimizer) computes something else.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// Rule name (or `optimizer`).
    pub rule: String,
    /// Where the rule is defined.
    pub at: String,
    /// Left pattern as written.
    pub lhs: String,
    /// Right pattern as written.
    pub rhs: String,
    /// Where the instance came from: `random instance` or a generator's name.
    pub source: String,
    /// Seed and size that reproduce it.
    pub seed: u64,
    /// Size (1 is the smallest).
    pub size: usize,
    /// The instance as an s-expression (leaves named, with their types).
    pub instance: String,
    /// Every variable's binding: attributes, or a tensor's kind, type and values.
    pub bindings: Vec<(String, String)>,
    /// For the optimizer: the optimized graph, one node a line.
    pub optimized: String,
    /// What differs.
    pub mismatch: Mismatch,
}

fn fmt_vals(v: &[f64]) -> String {
    let s: Vec<String> = v.iter().take(12).map(|x| format!("{x:.6}")).collect();
    if v.len() > 12 {
        format!("[{}, …]", s.join(", "))
    } else {
        format!("[{}]", s.join(", "))
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rule `{}` ({}) is wrong; counterexample shrunk to size {} (seed {}, {}):",
            self.rule, self.at, self.size, self.seed, self.source
        )?;
        if !self.lhs.is_empty() {
            writeln!(f, "  lhs: {}", self.lhs)?;
            writeln!(f, "  rhs: {}", self.rhs)?;
        }
        writeln!(f, "  instance: {}", self.instance)?;
        for (k, v) in &self.bindings {
            writeln!(f, "    {k} = {v}")?;
        }
        if !self.optimized.is_empty() {
            writeln!(f, "  optimized:\n{}", self.optimized)?;
        }
        match &self.mismatch {
            Mismatch::Type { lhs, rhs } => {
                write!(f, "  type differs: left side {lhs}, right side {rhs}")
            }
            Mismatch::Values {
                root,
                shape,
                lhs,
                rhs,
                worst_at,
                worst,
                allowed,
            } => {
                writeln!(f, "  output {root} {shape:?}:")?;
                writeln!(f, "    lhs: {}", fmt_vals(lhs))?;
                writeln!(f, "    rhs: {}", fmt_vals(rhs))?;
                write!(
                    f,
                    "    worst at {worst_at:?}: lhs {:.6} rhs {:.6}, |diff| {:.3e} > tolerance {:.3e}",
                    worst.0,
                    worst.1,
                    (worst.0 - worst.1).abs(),
                    allowed
                )
            }
            Mismatch::Error(e) => write!(f, "  right side fails: {e}"),
        }
    }
}

/// What verifying one rule found.
#[derive(Debug, Clone)]
pub struct RuleVerdict {
    /// The rule.
    pub rule: String,
    /// Instances checked (conditions held, both sides compared).
    pub checked: usize,
    /// Of those, drawn directly from the pattern.
    pub drawn: usize,
    /// Of those, found in generated model-like graphs.
    pub found: usize,
    /// Draws rejected, by reason (a condition false, an applier declining, no fit).
    pub rejected: BTreeMap<String, usize>,
    /// The counterexample, if the rule is wrong.
    pub failure: Option<Counterexample>,
}

impl RuleVerdict {
    /// Checked at least one instance and found no counterexample.
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.checked > 0
    }
}

enum Outcome {
    Rejected(String),
    Passed,
    Failed(Mismatch, Vec<(String, String)>),
}

fn hints_of(def: &RuleDef) -> HashMap<Var, Hint> {
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

fn patterns(def: &RuleDef) -> Vec<&PatternAst<crate::Node>> {
    match &def.multi {
        Some((l, _)) => l.iter().map(|(_, p)| p).collect(),
        None => vec![&def.lhs.ast],
    }
}

fn describe_value(t: &Tensor) -> String {
    let v = t.to_f64_vec();
    format!("{} {}", t.type_info(), fmt_vals(&v))
}

/// Checks one instance: match the left side at its roots, run the rule's conditions and
/// appliers, build the right side, compare.
fn check(def: &RuleDef, rules: &RuleSet, inst: &Instance, tol: Tolerance) -> Outcome {
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
fn eval_classes(
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

fn compare(root: usize, got: &Tensor, want: &Tensor, tol: Tolerance) -> Option<Mismatch> {
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
fn bindings_of(def: &RuleDef, eg: &KGraph, s: &Subst, inst: &Instance) -> Vec<(String, String)> {
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
fn sexpr(g: &Graph) -> String {
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
fn var_classes(def: &RuleDef) -> Vec<Var> {
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

/// Instances of `def` found in a generated graph after the other rules ran: each match's
/// attribute variables keep their attributes, tensor variables become leaves holding the
/// values they had there.
fn found_instances(
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

/// A failing instance, what differs, and the bindings.
type Found = (Instance, Mismatch, Vec<(String, String)>);

/// What one draw gave.
enum Draw {
    Rejected(String),
    Passed,
    Failed(Box<Found>),
}

/// One rule under verification, with what every draw needs computed once.
struct Verifier<'a> {
    def: &'a RuleDef,
    rules: &'a RuleSet,
    /// The rule set without this rule (it saturates the generated graphs).
    others: RuleSet,
    hints: HashMap<Var, Hint>,
    tol: Tolerance,
}

impl Verifier<'_> {
    /// A random instance of the left side, checked.
    fn draw_random(&self, seed: u64, size: usize) -> Draw {
        let mut r = Rng::new(seed);
        let Some(inst) = sample::instantiate(
            &patterns(self.def),
            &mut r,
            size,
            &self.hints,
            &HashMap::new(),
        ) else {
            return Draw::Rejected("no well-typed draw".into());
        };
        match check(self.def, self.rules, &inst, self.tol) {
            Outcome::Rejected(why) => Draw::Rejected(why),
            Outcome::Passed => Draw::Passed,
            Outcome::Failed(m, b) => Draw::Failed(Box::new((inst, m, b))),
        }
    }

    /// Instances found in one generated graph, checked: how many passed, or a failure.
    fn draw_found(&self, generator: usize, seed: u64, size: usize) -> (usize, Option<Box<Found>>) {
        let rg = (graphs::GENERATORS[generator].1)(seed, size);
        let mut passed = 0;
        for inst in found_instances(self.def, &self.others, &rg, 3) {
            match check(self.def, self.rules, &inst, self.tol) {
                Outcome::Passed => passed += 1,
                Outcome::Failed(m, b) => return (passed, Some(Box::new((inst, m, b)))),
                Outcome::Rejected(_) => {}
            }
        }
        (passed, None)
    }

    /// Shrinks a failure found at `size`: the smallest size at which one of `tries` seeds
    /// (`seed_of(size, try)`) still fails under `draw`, then simpler leaf values.
    #[allow(clippy::too_many_arguments)]
    fn shrink(
        &self,
        size: usize,
        seed: u64,
        found: Found,
        tries: u64,
        seed_of: impl Fn(usize, u64) -> u64,
        draw: impl Fn(u64, usize) -> Option<Box<Found>>,
        source: &str,
    ) -> Counterexample {
        let mut best = (size, seed, found);
        'sizes: for s in 1..size {
            for t in 0..tries {
                let sd = seed_of(s, t);
                if let Some(f) = draw(sd, s) {
                    best = (s, sd, *f);
                    break 'sizes;
                }
            }
        }
        let (size, seed, (inst, m, b)) = best;
        let (inst, m, b) = simplify(self.def, self.rules, inst, m, b, self.tol);
        counterexample(self.def, source, seed, size, &inst, m, b)
    }
}

/// Verifies one rule of `rules` by name (see the module docs).
pub fn verify_rule(rules: &RuleSet, name: &str, cfg: &VerifyConfig) -> Result<RuleVerdict> {
    let def = rules
        .rules()
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| Error::Rule {
            at: "verify".into(),
            msg: format!("no rule named `{name}`"),
        })?;
    let mut others = rules.clone();
    others.disable(name)?;
    let v = Verifier {
        def,
        rules,
        others,
        hints: hints_of(def),
        tol: cfg.tolerance,
    };
    let max_size = cfg.max_size.clamp(1, graphs::MAX_SIZE);
    let base = mix(cfg.seed ^ hash_str(name));
    let mut verdict = RuleVerdict {
        rule: name.to_string(),
        checked: 0,
        drawn: 0,
        found: 0,
        rejected: BTreeMap::new(),
        failure: None,
    };
    let mut preferred: Option<usize> = None;
    for case in 0..cfg.cases {
        let size = 1 + case % max_size;
        let mut done = false;
        // Random draws first, unless they never met the conditions so far.
        let random_useless = case >= 3 && verdict.drawn == 0;
        if !random_useless {
            for attempt in 0..cfg.attempts {
                let seed = mix(base ^ mix((case as u64) << 20 | attempt as u64));
                match v.draw_random(seed, size) {
                    Draw::Rejected(why) => *verdict.rejected.entry(why).or_insert(0) += 1,
                    Draw::Passed => {
                        verdict.checked += 1;
                        verdict.drawn += 1;
                        done = true;
                        break;
                    }
                    Draw::Failed(found) => {
                        verdict.failure = Some(v.shrink(
                            size,
                            seed,
                            *found,
                            cfg.attempts as u64 * 4,
                            |s, t| mix(base ^ 0x5EED ^ ((s as u64) << 32 | t)),
                            |sd, s| match v.draw_random(sd, s) {
                                Draw::Failed(f) => Some(f),
                                _ => None,
                            },
                            "random instance",
                        ));
                        return Ok(verdict);
                    }
                }
            }
        }
        if done {
            continue;
        }
        // Matches in generated graphs: the generator that matched before first.
        let n = graphs::GENERATORS.len();
        let order: Vec<usize> = match preferred {
            Some(p) => std::iter::repeat_n(p, 4)
                .chain((0..n).filter(|&k| k != p))
                .collect(),
            None => (0..n).collect(),
        };
        for (j, k) in order.into_iter().enumerate() {
            let seed = mix(base ^ 0xF00D ^ ((case as u64) << 8 | j as u64));
            let (passed, failed) = v.draw_found(k, seed, size);
            if let Some(found) = failed {
                let source = format!("found in a `{}` graph", graphs::GENERATORS[k].0);
                verdict.failure = Some(v.shrink(
                    size,
                    seed,
                    *found,
                    40,
                    |s, t| mix(seed ^ (s as u64) << 40 ^ t),
                    |sd, s| v.draw_found(k, sd, s).1,
                    &source,
                ));
                return Ok(verdict);
            }
            if passed > 0 {
                verdict.checked += passed;
                verdict.found += passed;
                preferred = Some(k);
                break;
            }
        }
    }
    Ok(verdict)
}

/// Verifies every enabled rule.
pub fn verify_rules(rules: &RuleSet, cfg: &VerifyConfig) -> Result<Vec<RuleVerdict>> {
    rules
        .rules()
        .iter()
        .filter(|d| rules.enabled(&d.name))
        .map(|d| verify_rule(rules, &d.name, cfg))
        .collect()
}

/// Simpler leaf values that still fail: each leaf rounded to halves, then all ones.
fn simplify(
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

fn counterexample(
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
