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
    set: Rc<BTreeMap<Id, f64>>,
    node: usize,
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
    let mut pins: std::collections::HashSet<Id> = std::collections::HashSet::new();
    let (mut best, _) = extract_pinned(egraph, model, roots, &pins)?;
    let mut best_cost = dag_cost(egraph, model, &best, roots)?;
    for &c in candidates {
        let c = egraph.find(c);
        if pins.contains(&c) {
            continue;
        }
        pins.insert(c);
        match extract_pinned(egraph, model, roots, &pins)
            .and_then(|(ch, _)| dag_cost(egraph, model, &ch, roots).map(|cost| (ch, cost)))
        {
            Some((ch, cost)) if cost < best_cost * (1.0 - 1e-12) => {
                best = ch;
                best_cost = cost;
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
    extract_pinned(egraph, model, roots, &Default::default())
}

/// Greedy DAG extraction where the `pinned` classes count as already paid for.
fn extract_pinned(
    egraph: &KGraph,
    model: &CostModel,
    roots: &[Id],
    pinned: &std::collections::HashSet<Id>,
) -> Option<(Choice, f64)> {
    let mut ids: Vec<Id> = egraph.classes().map(|c| c.id).collect();
    ids.sort();
    // Node costs computed once.
    let node_costs: HashMap<Id, Vec<f64>> = ids
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
    let mut best: HashMap<Id, Best> = HashMap::new();
    for _pass in 0..100 {
        let mut changed = false;
        for &id in &ids {
            for (i, node) in egraph[id].nodes.iter().enumerate() {
                let c = node_costs[&id][i];
                if !c.is_finite() {
                    continue;
                }
                let kids: Vec<Id> = node.children().iter().map(|&k| egraph.find(k)).collect();
                if kids.iter().any(|k| !best.contains_key(k)) {
                    continue;
                }
                if kids
                    .iter()
                    .any(|k| *k == id || best[k].set.contains_key(&id))
                {
                    continue;
                }
                let mut set: BTreeMap<Id, f64> = BTreeMap::new();
                for k in &kids {
                    for (cls, cost) in best[k].set.iter() {
                        set.insert(*cls, *cost);
                    }
                }
                set.insert(id, if pinned.contains(&id) { 0.0 } else { c });
                let total: f64 = set.values().sum();
                let better = match best.get(&id) {
                    None => true,
                    Some(b) => total < b.total - 1e-15 * b.total.abs().max(1e-12),
                };
                if better {
                    best.insert(
                        id,
                        Best {
                            total,
                            set: Rc::new(set),
                            node: i,
                        },
                    );
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut all: BTreeMap<Id, f64> = BTreeMap::new();
    for r in roots {
        let b = best.get(&egraph.find(*r))?;
        for (k, v) in b.set.iter() {
            all.insert(*k, *v);
        }
    }
    let total = all.values().sum();
    Some((
        Choice {
            node: best.into_iter().map(|(k, b)| (k, b.node)).collect(),
        },
        total,
    ))
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
