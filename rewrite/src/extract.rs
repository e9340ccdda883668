//! DAG-aware extraction: a tensor used twice is paid for once, and no cycle is ever chosen.
//!
//! Greedy DAG extraction: each class keeps the cheapest node whose *set* of classes below it
//! (the node's class plus the union of its children's sets, each class costed once) has the
//! smallest total. A node whose children's sets contain its own class would close a cycle
//! and is skipped. Passes repeat until nothing improves; at the fixed point every choice is
//! consistent with its children's current sets, so following the choices never cycles.

use crate::analysis::KGraph;
use crate::cost::CostModel;
use egg::{Id, Language};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// The chosen node (index into the class' nodes) per class.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Class → node index.
    pub node: HashMap<Id, usize>,
}

struct Best {
    total: f64,
    /// The classes below (and including) this one with their costs, sorted by class.
    set: Rc<Vec<(Id, f64)>>,
    node: usize,
}

/// Node costs, computed once per class (extraction runs many times during refinement).
struct Costs {
    ids: Vec<Id>,
    nodes: HashMap<Id, Vec<f64>>,
}

impl Costs {
    fn new(egraph: &KGraph, model: &CostModel) -> Costs {
        let mut ids: Vec<Id> = egraph.classes().map(|c| c.id).collect();
        ids.sort();
        let nodes = ids
            .iter()
            .map(|&id| {
                (
                    id,
                    egraph[id]
                        .nodes
                        .iter()
                        .map(|n| model.node_cost(egraph, n))
                        .collect(),
                )
            })
            .collect();
        Costs { ids, nodes }
    }
}

/// Extracts a cheap DAG for `roots`: greedy DAG extraction, then refinement by *pinning*
/// shared tensors. Greedy extraction decides per class, so two readers of one tensor may
/// each absorb (recompute) it when together they should share it; for each candidate
/// class (a tensor read by several ops in the original graph), extraction is re-run with
/// that class already paid for, and the pin is kept when the true DAG cost drops.
pub fn extract_refined(
    egraph: &KGraph,
    model: &CostModel,
    roots: &[Id],
    candidates: &[Id],
) -> Option<(Choice, f64)> {
    let costs = Costs::new(egraph, model);
    let mut pins: std::collections::HashSet<Id> = std::collections::HashSet::new();
    let mut state = Greedy::default();
    state.run(egraph, &costs, &pins, None);
    let mut best = state.choice(egraph, roots)?;
    let mut best_cost = dag_cost(egraph, model, &best, roots)?;
    for &c in candidates {
        let c = egraph.find(c);
        if pins.contains(&c) {
            continue;
        }
        pins.insert(c);
        // Pinning only lowers costs, and only of the classes above `c`: start from the
        // current fixed point with `c` marked changed, instead of from scratch.
        let mut trial = state.clone();
        trial.run(egraph, &costs, &pins, Some(c));
        match trial
            .choice(egraph, roots)
            .and_then(|ch| dag_cost(egraph, model, &ch, roots).map(|cost| (ch, cost)))
        {
            Some((ch, cost)) if cost < best_cost * (1.0 - 1e-12) => {
                best = ch;
                best_cost = cost;
                state = trial;
            }
            _ => {
                pins.remove(&c);
            }
        }
    }
    Some((best, best_cost))
}

/// Greedy DAG extraction for `roots`.
pub fn extract(egraph: &KGraph, model: &CostModel, roots: &[Id]) -> Option<(Choice, f64)> {
    let mut g = Greedy::default();
    g.run(
        egraph,
        &Costs::new(egraph, model),
        &Default::default(),
        None,
    );
    let choice = g.choice(egraph, roots)?;
    let total = g.total(egraph, roots)?;
    Some((choice, total))
}

/// `a ∪ b` of sorted sets into `out`; on a class in both, `b`'s cost wins (as inserting
/// `b`'s entries after `a`'s would).
fn merge_into(a: &[(Id, f64)], b: &[(Id, f64)], out: &mut Vec<(Id, f64)>) {
    out.clear();
    out.reserve(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(b[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// The state of greedy DAG extraction: each class' best node and its cost set, and when
/// each class last improved / each node was last evaluated.
#[derive(Clone, Default)]
struct Greedy {
    best: HashMap<Id, Best>,
    clock: u64,
    changed_at: HashMap<Id, u64>,
    evaluated_at: HashMap<(Id, usize), u64>,
}

impl Clone for Best {
    fn clone(&self) -> Best {
        Best {
            total: self.total,
            set: self.set.clone(),
            node: self.node,
        }
    }
}

impl Greedy {
    /// Runs greedy DAG extraction, where the `pinned` classes count as already paid for,
    /// to a fixed point. A node is re-evaluated only when one of its children's best
    /// choice changed since it was last evaluated: with unchanged children it would compute
    /// the same set and total, and a class's best only ever improves, so skipping it changes
    /// nothing. `dirty` (a class just pinned) has its own nodes re-evaluated.
    fn run(
        &mut self,
        egraph: &KGraph,
        costs: &Costs,
        pinned: &std::collections::HashSet<Id>,
        dirty: Option<Id>,
    ) {
        if let Some(d) = dirty {
            for i in 0..egraph[d].nodes.len() {
                self.evaluated_at.remove(&(d, i));
            }
            // Its current best must be re-derived with the pinned cost.
            self.best.remove(&d);
            self.clock += 1;
            self.changed_at.insert(d, self.clock);
        }
        let mut acc: Vec<(Id, f64)> = Vec::new();
        let mut tmp: Vec<(Id, f64)> = Vec::new();
        let mut kids: Vec<Id> = Vec::new();
        for _pass in 0..100 {
            let mut changed = false;
            for &id in &costs.ids {
                for (i, node) in egraph[id].nodes.iter().enumerate() {
                    let c = costs.nodes[&id][i];
                    if !c.is_finite() {
                        continue;
                    }
                    kids.clear();
                    kids.extend(node.children().iter().map(|&k| egraph.find(k)));
                    if kids.iter().any(|k| !self.best.contains_key(k)) {
                        continue;
                    }
                    if let Some(&at) = self.evaluated_at.get(&(id, i)) {
                        if kids
                            .iter()
                            .all(|k| self.changed_at.get(k).is_none_or(|&t| t <= at))
                        {
                            continue;
                        }
                    }
                    self.evaluated_at.insert((id, i), self.clock);
                    if kids.iter().any(|k| {
                        *k == id || self.best[k].set.binary_search_by_key(&id, |e| e.0).is_ok()
                    }) {
                        continue;
                    }
                    acc.clear();
                    for k in &kids {
                        merge_into(&acc, &self.best[k].set, &mut tmp);
                        std::mem::swap(&mut acc, &mut tmp);
                    }
                    let me = (id, if pinned.contains(&id) { 0.0 } else { c });
                    let at = acc.partition_point(|e| e.0 < id);
                    acc.insert(at, me);
                    let total: f64 = acc.iter().map(|e| e.1).sum();
                    let better = match self.best.get(&id) {
                        None => true,
                        Some(b) => total < b.total - 1e-15 * b.total.abs().max(1e-12),
                    };
                    if better {
                        self.best.insert(
                            id,
                            Best {
                                total,
                                set: Rc::new(acc.clone()),
                                node: i,
                            },
                        );
                        self.clock += 1;
                        self.changed_at.insert(id, self.clock);
                        self.evaluated_at.insert((id, i), self.clock);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// The chosen node per class (`None` if a root has no finite choice).
    fn choice(&self, egraph: &KGraph, roots: &[Id]) -> Option<Choice> {
        for r in roots {
            self.best.get(&egraph.find(*r))?;
        }
        Some(Choice {
            node: self.best.iter().map(|(k, b)| (*k, b.node)).collect(),
        })
    }

    /// The greedy estimate of the roots' DAG cost (the union of their sets).
    fn total(&self, egraph: &KGraph, roots: &[Id]) -> Option<f64> {
        let mut all: BTreeMap<Id, f64> = BTreeMap::new();
        for r in roots {
            for (k, v) in self.best.get(&egraph.find(*r))?.set.iter() {
                all.insert(*k, *v);
            }
        }
        Some(all.values().sum())
    }
}

/// The DAG cost of a choice from `roots`: each reachable class once. `None` if the choice
/// reaches a cycle or a class without a choice.
pub fn dag_cost(egraph: &KGraph, model: &CostModel, choice: &Choice, roots: &[Id]) -> Option<f64> {
    let mut state: HashMap<Id, u8> = HashMap::new(); // 1 visiting, 2 done
    let mut total = 0.0;
    fn visit(
        egraph: &KGraph,
        model: &CostModel,
        choice: &Choice,
        id: Id,
        state: &mut HashMap<Id, u8>,
        total: &mut f64,
    ) -> bool {
        let id = egraph.find(id);
        match state.get(&id) {
            Some(2) => return true,
            Some(_) => return false,
            None => {}
        }
        state.insert(id, 1);
        let Some(&i) = choice.node.get(&id) else {
            return false;
        };
        let node = &egraph[id].nodes[i];
        for &k in node.children() {
            if !visit(egraph, model, choice, k, state, total) {
                return false;
            }
        }
        *total += model.node_cost(egraph, node);
        state.insert(id, 2);
        true
    }
    for &r in roots {
        if !visit(egraph, model, choice, r, &mut state, &mut total) {
            return None;
        }
    }
    Some(total)
}

/// The exact optimum (feature `ilp`), for verifying extraction: see [`ilp_optimum`].
#[cfg(feature = "ilp")]
mod ilp {
    use super::*;
    use good_lp::{constraint, variable, Expression, ProblemVariables, Solution, SolverModel};
    use std::collections::HashSet;

    /// The exact minimum DAG cost: binary x_n per e-node, a chosen node needs one chosen node in
    /// each child class, roots need one, and class orders o_c forbid cycles.
    pub fn ilp_optimum(eg: &KGraph, model: &CostModel, roots: &[Id]) -> Option<f64> {
        solve(eg, model, roots, true)
    }

    /// A lower bound on the optimum: the same program with `0 ≤ x ≤ 1` (its LP relaxation).
    pub fn lp_lower_bound(eg: &KGraph, model: &CostModel, roots: &[Id]) -> Option<f64> {
        solve(eg, model, roots, false)
    }

    fn solve(eg: &KGraph, model: &CostModel, roots: &[Id], integral: bool) -> Option<f64> {
        // Classes reachable from the roots through any node.
        let mut seen: HashSet<Id> = HashSet::new();
        let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                for n in &eg[c].nodes {
                    for &k in n.children() {
                        stack.push(eg.find(k));
                    }
                }
            }
        }
        let classes: Vec<Id> = {
            let mut v: Vec<Id> = seen.into_iter().collect();
            v.sort();
            v
        };
        let big = classes.len() as f64 + 1.0;
        let mut vars = ProblemVariables::new();
        let mut x: HashMap<(Id, usize), good_lp::Variable> = HashMap::new();
        let mut order: HashMap<Id, good_lp::Variable> = HashMap::new();
        let mut objective = Expression::from(0.0);
        for &c in &classes {
            order.insert(c, vars.add(variable().min(0.0).max(big)));
            for (i, n) in eg[c].nodes.iter().enumerate() {
                let cost = model.node_cost(eg, n);
                if cost.is_finite() {
                    let v = if integral {
                        vars.add(variable().binary())
                    } else {
                        vars.add(variable().min(0.0).max(1.0))
                    };
                    objective += cost * 1e6 * v;
                    x.insert((c, i), v);
                }
            }
        }
        let mut problem = vars
            .minimise(objective.clone())
            .using(good_lp::solvers::microlp::microlp);
        let in_class = |c: Id| -> Expression {
            x.iter()
                .filter(|((k, _), _)| *k == c)
                .map(|(_, v)| Expression::from(*v))
                .sum()
        };
        for &r in roots {
            problem = problem.with(constraint!(in_class(eg.find(r)) >= 1.0));
        }
        for (&(c, i), &v) in &x {
            for &k in eg[c].nodes[i].children() {
                let k = eg.find(k);
                problem = problem.with(constraint!(in_class(k) - v >= 0.0));
                problem = problem.with(constraint!(order[&c] - order[&k] - big * v >= 1.0 - big));
            }
        }
        let sol = problem.solve().ok()?;
        Some(sol.eval(objective) / 1e6)
    }
}
#[cfg(feature = "ilp")]
pub use ilp::{ilp_optimum, lp_lower_bound};
