//! The optimizer pipeline: lift → saturate → extract → lower.

use crate::analysis::KAnalysis;
use crate::cost::CostModel;
use crate::extract::{dag_cost, extract_refined};
use crate::language::Node;
use crate::registry::Registry;
use crate::rules::{parse_rules, rewrites, Phase, RuleDef};
use crate::{lift, lower, Error, Result};
use egg::{BackoffScheduler, Rewrite, Runner};
use kayak_ir::{Graph, ValueId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The built-in rule files, embedded in the binary.
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    ("canonical.rules", include_str!("../rules/canonical.rules")),
    ("conv.rules", include_str!("../rules/conv.rules")),
    ("matmul.rules", include_str!("../rules/matmul.rules")),
];

/// A set of rules: built-ins, user files, and the names disabled.
#[derive(Clone)]
pub struct RuleSet {
    defs: Vec<RuleDef>,
    disabled: BTreeSet<String>,
    reg: Arc<Registry>,
}

impl RuleSet {
    /// No rules.
    pub fn empty() -> RuleSet {
        RuleSet {
            defs: vec![],
            disabled: BTreeSet::new(),
            reg: Arc::new(Registry::default()),
        }
    }

    /// The built-in library.
    pub fn builtin() -> RuleSet {
        let mut s = RuleSet::empty();
        for (name, text) in BUILTIN_RULES {
            s.add_text(text, &format!("builtin/{name}"))
                .expect("built-in rules parse (a unit test checks)");
        }
        s
    }

    /// The conditions and appliers rule texts may call.
    pub fn registry(&self) -> &Registry {
        &self.reg
    }

    /// Registers a condition written in Rust for rule texts added after this call (it reads
    /// at least `arity` arguments). Replaces a built-in of the same name.
    pub fn register_condition(&mut self, name: &'static str, arity: usize, f: crate::Condition) {
        Arc::make_mut(&mut self.reg).condition(name, arity, f);
    }

    /// Registers an applier written in Rust for rule texts added after this call (it reads
    /// at least `arity` arguments). Replaces a built-in of the same name.
    pub fn register_applier(&mut self, name: &'static str, arity: usize, f: crate::ApplierFn) {
        Arc::make_mut(&mut self.reg).applier(name, arity, f);
    }

    /// Adds the rules of a text (named `file` in messages).
    pub fn add_text(&mut self, text: &str, file: &str) -> Result<()> {
        for d in parse_rules(text, file, &self.reg)? {
            if let Some(prev) = self.defs.iter().find(|r| r.name == d.name) {
                return Err(Error::Rule {
                    at: d.at.clone(),
                    msg: format!("rule `{}` already defined at {}", d.name, prev.at),
                });
            }
            self.defs.push(d);
        }
        Ok(())
    }

    /// Adds the rules of a file.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Rule {
            at: path.display().to_string(),
            msg: e.to_string(),
        })?;
        self.add_text(&text, &path.display().to_string())
    }

    /// Disables a rule by name (like Paddle's DeletePass).
    pub fn disable(&mut self, name: &str) -> Result<()> {
        if !self.defs.iter().any(|r| r.name == name) {
            return Err(Error::Rule {
                at: "disable".into(),
                msg: format!("no rule named `{name}`"),
            });
        }
        self.disabled.insert(name.to_string());
        Ok(())
    }

    /// Every rule, in order (disabled ones included).
    pub fn rules(&self) -> &[RuleDef] {
        &self.defs
    }

    /// True if a rule is enabled.
    pub fn enabled(&self, name: &str) -> bool {
        !self.disabled.contains(name)
    }

    /// The egg rewrites of the enabled rules.
    pub fn rewrites(&self) -> Result<Vec<Rewrite<Node, KAnalysis>>> {
        self.rewrites_upto(Phase::Fuse)
    }

    /// The egg rewrites of the enabled rules of phases up to `phase`.
    pub fn rewrites_upto(&self, phase: Phase) -> Result<Vec<Rewrite<Node, KAnalysis>>> {
        let mut out = Vec::new();
        for d in self
            .defs
            .iter()
            .filter(|d| self.enabled(&d.name) && d.phase <= phase)
        {
            out.extend(rewrites(d, &self.reg)?);
        }
        Ok(out)
    }

    /// A hash of the rule texts in force (for the optimized-graph cache key).
    pub fn fingerprint(&self) -> String {
        let mut s = String::new();
        for d in self.defs.iter().filter(|d| self.enabled(&d.name)) {
            s.push_str(&format!(
                "{}|{}|{}|{:?}|{:?};",
                d.name,
                d.lhs,
                d.rhs,
                d.conds.iter().map(|c| &c.name).collect::<Vec<_>>(),
                d.lets
                    .iter()
                    .map(|(v, c)| (v.to_string(), c.name.clone()))
                    .collect::<Vec<_>>()
            ));
        }
        s
    }
}

/// Saturation limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most e-nodes.
    pub node_limit: usize,
    /// Most iterations.
    pub iter_limit: usize,
    /// Most time.
    pub time_limit: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            node_limit: 200_000,
            iter_limit: 30,
            time_limit: Duration::from_secs(10),
        }
    }
}

/// What an optimization did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Compute nodes before.
    pub ops_before: usize,
    /// Compute nodes after.
    pub ops_after: usize,
    /// Compute nodes after, by op type.
    pub ops_after_by_type: BTreeMap<String, usize>,
    /// How often each rule fired.
    pub rules_applied: BTreeMap<String, usize>,
    /// E-graph size at the end.
    pub egraph_nodes: usize,
    /// E-classes at the end.
    pub egraph_classes: usize,
    /// Saturation iterations.
    pub iterations: usize,
    /// Why saturation stopped.
    pub stop_reason: String,
    /// Saturation + extraction + lowering, in ms.
    pub optimize_ms: f64,
    /// Estimated cost of the graph before (seconds, [`CostModel`]).
    pub cost_before: f64,
    /// Estimated cost after.
    pub cost_after: f64,
    /// The graph came from the optimized-graph cache (no saturation ran).
    pub from_cache: bool,
}

/// An optimized graph.
#[derive(Debug, Clone)]
pub struct Optimized {
    /// The graph.
    pub graph: Graph,
    /// Where each kept value is now.
    pub keep: Vec<ValueId>,
    /// What happened.
    pub report: Report,
    /// Per node of `graph`: the rule chain that made it (empty for an op kept as imported),
    /// e.g. `fused_conv <- conv_relu(fused_conv <- conv_canonical(conv2d))`.
    pub explain: Vec<String>,
}

/// Explains each lowered node through the recorded provenance.
fn explain_all(egraph: &crate::KGraph, origin: &[Node]) -> Vec<String> {
    use egg::Language;
    use std::collections::HashMap;
    let canon = |n: &Node| n.clone().map_children(|c| egraph.find(c));
    let prov: HashMap<Node, (String, Vec<Node>)> = egraph
        .analysis
        .provenance
        .iter()
        .map(|(k, (r, ps))| (canon(k), (r.clone(), ps.iter().map(canon).collect())))
        .collect();
    fn go(n: &Node, prov: &HashMap<Node, (String, Vec<Node>)>, depth: usize) -> String {
        let kind = n.to_string();
        match prov.get(n) {
            Some((rule, parents)) if depth < 12 => {
                let inner: Vec<String> = parents
                    .iter()
                    .filter(|p| *p != n)
                    .map(|p| go(p, prov, depth + 1))
                    .collect();
                format!("{kind} <- {rule}({})", inner.join(", "))
            }
            _ => kind,
        }
    }
    origin
        .iter()
        .map(|n| {
            if prov.contains_key(n) {
                go(n, &prov, 0)
            } else {
                String::new()
            }
        })
        .collect()
}

/// An e-graph after saturation, with what extraction needs.
pub struct Saturated {
    /// The e-graph.
    pub egraph: crate::KGraph,
    /// Classes of the kept values.
    pub roots: Vec<egg::Id>,
    /// Classes read by several ops of the original graph (sharing candidates).
    pub shared: Vec<egg::Id>,
    /// The e-nodes of the original graph's ops (to cost it as it was).
    pub original: Vec<Node>,
    /// Names of the constants.
    pub const_names: Vec<String>,
    /// How often each rule fired.
    pub rules_applied: BTreeMap<String, usize>,
    /// Iterations over all phases.
    pub iterations: usize,
    /// Why each phase stopped.
    pub stop_reason: String,
}

/// Lifts `g` and runs the rule phases.
pub fn saturate(
    g: &Graph,
    keep: &[ValueId],
    rules: &RuleSet,
    limits: &Limits,
) -> Result<Saturated> {
    let lifted = lift::lift(g, keep, true)?;
    // Phases on one e-graph: canonicalize, then everything. Limits apply per phase.
    let mut egraph = lifted.egraph;
    let mut rules_applied = BTreeMap::new();
    let mut stops = Vec::new();
    let mut iterations = 0;
    for (name, phase) in [("canonicalize", Phase::Canonicalize), ("fuse", Phase::Fuse)] {
        let rws = rules.rewrites_upto(phase)?;
        if rws.is_empty() {
            continue;
        }
        let runner = Runner::default()
            .with_egraph(egraph)
            .with_node_limit(limits.node_limit)
            .with_iter_limit(limits.iter_limit)
            .with_time_limit(limits.time_limit)
            .with_scheduler(BackoffScheduler::default())
            .run(&rws);
        for it in &runner.iterations {
            for (rule, n) in &it.applied {
                let base = rule.as_str().trim_end_matches("_rev").to_string();
                *rules_applied.entry(base).or_insert(0) += n;
            }
        }
        iterations += runner.iterations.len();
        let why = match &runner.stop_reason {
            Some(egg::StopReason::Saturated) => "saturated".to_string(),
            Some(egg::StopReason::IterationLimit(n)) => format!("iteration limit {n}"),
            Some(egg::StopReason::NodeLimit(n)) => format!("node limit {n}"),
            Some(egg::StopReason::TimeLimit(t)) => format!("time limit {t:.1}s"),
            Some(egg::StopReason::Other(s)) => s.clone(),
            None => "not run".to_string(),
        };
        stops.push(format!("{name}: {why}"));
        egraph = runner.egraph;
    }
    let stop_reason = stops.join("; ");

    let roots: Vec<egg::Id> = lifted.roots.iter().map(|&r| egraph.find(r)).collect();
    // Tensors read by more than one op of the original graph: candidates for sharing.
    let mut readers: std::collections::HashMap<egg::Id, usize> = std::collections::HashMap::new();
    for n in &lifted.original {
        for &c in egg::Language::children(n) {
            if matches!(
                egraph[c].data,
                crate::analysis::Data::Tensor { value: None, .. }
            ) {
                *readers.entry(egraph.find(c)).or_insert(0) += 1;
            }
        }
    }
    let mut shared: Vec<egg::Id> = readers
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(c, _)| c)
        .collect();
    shared.sort();
    // A multi-output op made by a rewrite (a horizontal fusion's split) exists to be read by
    // several classes at once, which greedy extraction, deciding per class, never credits:
    // its tensor inputs (the merged product) and the op's own class are candidates too,
    // inputs first, so pinning the product lets every reader take its share.
    let mut tuples: Vec<egg::Id> = Vec::new();
    for class in egraph.classes() {
        if matches!(class.data, crate::analysis::Data::Tuple(_)) {
            for n in &class.nodes {
                for &c in egg::Language::children(n) {
                    let c = egraph.find(c);
                    if matches!(
                        egraph[c].data,
                        crate::analysis::Data::Tensor { value: None, .. }
                    ) {
                        tuples.push(c);
                    }
                }
            }
            tuples.push(class.id);
        }
    }
    for c in tuples {
        if !shared.contains(&c) {
            shared.push(c);
        }
    }
    Ok(Saturated {
        egraph,
        roots,
        shared,
        original: lifted.original,
        const_names: lifted.const_names,
        rules_applied,
        iterations,
        stop_reason,
    })
}

/// Optimizes `g`, keeping `keep` (outputs and fetched variables) computable.
pub fn optimize(
    g: &Graph,
    keep: &[ValueId],
    rules: &RuleSet,
    limits: &Limits,
    model: &CostModel,
) -> Result<Optimized> {
    let t0 = Instant::now();
    let Saturated {
        egraph,
        roots,
        shared,
        original,
        const_names: lifted_names,
        rules_applied,
        iterations,
        stop_reason,
    } = saturate(g, keep, rules, limits)?;
    let cost_before: f64 = original.iter().map(|n| model.node_cost(&egraph, n)).sum();
    let (choice, _) = extract_refined(&egraph, model, &roots, &shared)
        .ok_or_else(|| Error::Extract("no finite-cost extraction for a kept value".into()))?;
    let cost_after = dag_cost(&egraph, model, &choice, &roots)
        .ok_or_else(|| Error::Extract("extraction reached a cycle".into()))?;
    let input_names: Vec<String> = g.inputs.iter().map(|&v| g.values[v].name.clone()).collect();
    // Constants folded during saturation have no name yet; `lower` names them `folded_K`.
    let (graph, keep, origin) =
        lower::lower(&egraph, &choice, &roots, &input_names, &lifted_names)?;
    let explain = explain_all(&egraph, &origin);
    let mut by_type = BTreeMap::new();
    for n in &graph.nodes {
        *by_type.entry(n.op.name().to_string()).or_insert(0) += 1;
    }
    let report = Report {
        ops_before: g.nodes.len(),
        ops_after: graph.nodes.len(),
        ops_after_by_type: by_type,
        rules_applied,
        egraph_nodes: egraph.total_number_of_nodes(),
        egraph_classes: egraph.number_of_classes(),
        iterations,
        stop_reason,
        optimize_ms: t0.elapsed().as_secs_f64() * 1e3,
        cost_before,
        cost_after,
        from_cache: false,
    };
    Ok(Optimized {
        graph,
        keep,
        report,
        explain,
    })
}
