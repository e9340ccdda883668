//! Subgraph partitioning for engines that run parts of a graph (TensorRT, as Paddle's
//! `tensorrt_subgraph_pass` does): an engine declares which nodes it supports (a
//! predicate over the node, its attributes and its values' types), and [`partition`] finds
//! **convex** groups of supported nodes — no path leaves a group and comes back into it,
//! so a group can run as one engine call between the nodes around it — grown greedily
//! until no two adjacent groups can join without breaking that, keeping those of at least
//! `min_size` nodes. [`Subgraph::extract`] makes a group a standalone [`Graph`] (its inputs
//! the values it reads from outside, its weights copied in, its outputs the values read
//! outside it or kept), which is what an engine builds from; [`Subgraph::key`] is a hash of
//! that graph's ops, attributes, types and weights, for an engine cache on disk.

use crate::graph::{Graph, ValueDef, ValueId};
use crate::Result;

/// A convex group of nodes of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subgraph {
    /// The nodes, in the graph's (execution) order.
    pub nodes: Vec<usize>,
    /// Values the nodes read that are neither produced inside nor constants, in order of
    /// first use.
    pub inputs: Vec<ValueId>,
    /// Constants the nodes read, in order of first use.
    pub weights: Vec<ValueId>,
    /// Values produced inside that a node outside reads or the graph outputs, in the
    /// order they are produced.
    pub outputs: Vec<ValueId>,
}

/// Node-level edges: `succ[n]` the nodes reading an output of `n`, `pred[n]` the nodes
/// producing an input of `n` (each once, ascending).
fn edges(g: &Graph) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let n = g.nodes.len();
    let (mut succ, mut pred) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for (c, node) in g.nodes.iter().enumerate() {
        for &v in &node.inputs {
            if let ValueDef::Node { node: p, .. } = g.values[v].def {
                pred[c].push(p);
                succ[p].push(c);
            }
        }
    }
    for l in succ.iter_mut().chain(pred.iter_mut()) {
        l.sort_unstable();
        l.dedup();
    }
    (succ, pred)
}

/// Whether some path from a node in `from` reaches a node in `to` through at least one
/// node in neither (`group[k]` names each node's group; the nodes are in topological
/// order, so a path into `to` cannot pass a node after `to`'s last).
fn detour(
    succ: &[Vec<usize>],
    group: &[usize],
    members: &[Vec<usize>],
    (from, to): (usize, usize),
) -> bool {
    let last = *members[to].iter().max().expect("a group has a node");
    let mut seen = vec![false; succ.len()];
    let mut stack: Vec<usize> = members[from]
        .iter()
        .flat_map(|&m| succ[m].iter().copied())
        .filter(|&s| group[s] != from && group[s] != to)
        .collect();
    while let Some(k) = stack.pop() {
        if k > last || std::mem::replace(&mut seen[k], true) {
            continue;
        }
        for &s in &succ[k] {
            if group[s] == to {
                return true;
            }
            if group[s] != from {
                stack.push(s);
            }
        }
    }
    false
}

/// The convex groups of nodes `supported` accepts, of at least `min_size` nodes, in the
/// order of their first node. Groups grow greedily: walking the nodes in order, a node's
/// group joins the group of each supported producer of its inputs unless the joined group
/// would not be convex (a path from one to the other through a node outside both), in
/// passes until no two groups joined by an edge can join.
pub fn partition(
    g: &Graph,
    supported: &dyn Fn(&Graph, usize) -> bool,
    min_size: usize,
) -> Vec<Subgraph> {
    let n = g.nodes.len();
    let (succ, pred) = edges(g);
    let ok: Vec<bool> = (0..n).map(|k| supported(g, k)).collect();
    // Group ids: a supported node starts alone; unsupported nodes share none.
    let none = usize::MAX;
    let mut group: Vec<usize> = (0..n).map(|k| if ok[k] { k } else { none }).collect();
    let mut members: Vec<Vec<usize>> = (0..n)
        .map(|k| if ok[k] { vec![k] } else { Vec::new() })
        .collect();
    // Passes until none joins two groups: a join refused for a path through a node that a
    // later join took into one of the two can be made on the next pass.
    let mut joined = true;
    while joined {
        joined = false;
        for c in 0..n {
            if !ok[c] {
                continue;
            }
            for &p in &pred[c] {
                let (a, b) = (group[p], group[c]);
                if !ok[p] || a == b {
                    continue;
                }
                if detour(&succ, &group, &members, (a, b))
                    || detour(&succ, &group, &members, (b, a))
                {
                    continue;
                }
                // Join the smaller into the larger.
                let (keep, gone) = if members[a].len() >= members[b].len() {
                    (a, b)
                } else {
                    (b, a)
                };
                let moved = std::mem::take(&mut members[gone]);
                for &m in &moved {
                    group[m] = keep;
                }
                members[keep].extend(moved);
                joined = true;
            }
        }
    }
    let mut out: Vec<Subgraph> = members
        .into_iter()
        .filter(|m| !m.is_empty() && m.len() >= min_size.max(1))
        .map(|mut nodes| {
            nodes.sort_unstable();
            boundary(g, nodes)
        })
        .collect();
    out.sort_by_key(|s| s.nodes[0]);
    out
}

/// A group's inputs, weights and outputs.
fn boundary(g: &Graph, nodes: Vec<usize>) -> Subgraph {
    let mut inside = vec![false; g.nodes.len()];
    for &k in &nodes {
        inside[k] = true;
    }
    let produced_inside =
        |v: ValueId| matches!(g.values[v].def, ValueDef::Node { node, .. } if inside[node]);
    let (mut inputs, mut weights, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for &k in &nodes {
        for &v in &g.nodes[k].inputs {
            if produced_inside(v) {
                continue;
            }
            let list = match g.values[v].def {
                ValueDef::Const(_) => &mut weights,
                _ => &mut inputs,
            };
            if !list.contains(&v) {
                list.push(v);
            }
        }
    }
    let read_outside: Vec<bool> = {
        let mut r = vec![false; g.values.len()];
        for (k, node) in g.nodes.iter().enumerate() {
            if !inside[k] {
                node.inputs.iter().for_each(|&v| r[v] = true);
            }
        }
        g.outputs.iter().for_each(|&v| r[v] = true);
        r
    };
    for &k in &nodes {
        for &v in &g.nodes[k].outputs {
            if read_outside[v] {
                outputs.push(v);
            }
        }
    }
    Subgraph {
        nodes,
        inputs,
        weights,
        outputs,
    }
}

impl Subgraph {
    /// The group as a graph of its own: its inputs as graph inputs (their names and
    /// types), its weights as constants, its nodes in order, its outputs as graph outputs.
    ///
    /// # Errors
    /// If a node's types no longer infer (the group is not one of `g`'s).
    pub fn extract(&self, g: &Graph) -> Result<Graph> {
        let mut sub = Graph::new();
        let mut map = vec![usize::MAX; g.values.len()];
        for &v in &self.inputs {
            map[v] = sub.add_input(&g.values[v].name, g.values[v].ty.clone())?;
        }
        for &v in &self.weights {
            let ValueDef::Const(t) = &g.values[v].def else {
                unreachable!("weights are constants")
            };
            map[v] = sub.add_const(&g.values[v].name, t.clone())?;
        }
        for &k in &self.nodes {
            let node = &g.nodes[k];
            let ins = node.inputs.iter().map(|&v| map[v]).collect();
            let names: Vec<&str> = node
                .outputs
                .iter()
                .map(|&v| g.values[v].name.as_str())
                .collect();
            let outs = sub.add_node(node.op.clone(), ins, &names, &node.origin)?;
            for (&v, o) in node.outputs.iter().zip(outs) {
                map[v] = o;
            }
        }
        for &v in &self.outputs {
            sub.add_output(map[v]);
        }
        Ok(sub)
    }

    /// A hash of the group as [`Subgraph::extract`] makes it — ops with their attributes,
    /// input and output types, weights' bytes, the wiring — and not of value names or the
    /// nodes' places in `g`: equal groups of two graphs share an engine built once (a
    /// cache key, FNV-1a over the graph's serialized form with the names blanked).
    ///
    /// # Errors
    /// As [`Subgraph::extract`].
    pub fn key(&self, g: &Graph) -> Result<u64> {
        let mut sub = self.extract(g)?;
        for v in &mut sub.values {
            v.name.clear();
        }
        for n in &mut sub.nodes {
            n.origin.clear();
        }
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        // The nodes (ops with every attribute, and their wiring) and the types as `Debug`
        // prints them; each weight's dtype, shape and bytes.
        use std::fmt::Write;
        write!(h, "{:?}|{:?}|{:?}", sub.nodes, sub.inputs, sub.outputs)
            .expect("hashing never fails");
        for v in &sub.values {
            write!(h, "|{:?}", v.ty).expect("hashing never fails");
            if let ValueDef::Const(t) = &v.def {
                write!(h, "{:?}{:?}", t.dtype(), t.shape()).expect("hashing never fails");
                h.bytes(&t.to_le_bytes());
            }
        }
        Ok(h.0)
    }
}

/// FNV-1a, 64 bits, over what is written into it.
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Binary, BinaryOp, UnaryOp};
    use crate::{DType, Op, Tensor, TypeInfo};
    use std::sync::Arc;

    fn relu() -> Op {
        Op::Unary(UnaryOp::Relu)
    }

    /// Node `k`'s op is supported unless it is `abs`.
    fn not_abs(g: &Graph, k: usize) -> bool {
        !matches!(g.nodes[k].op, Op::Unary(UnaryOp::Abs))
    }

    fn input(g: &mut Graph) -> ValueId {
        g.add_input("x", TypeInfo::known(DType::F32, &[2, 3]))
            .unwrap()
    }

    /// A chain cut by an unsupported node gives a group on each side; `min_size` drops
    /// the groups below it.
    #[test]
    fn an_unsupported_node_cuts_a_chain() {
        let mut g = Graph::new();
        let mut v = input(&mut g);
        for (k, op) in [
            relu(),
            relu(),
            Op::Unary(UnaryOp::Abs),
            relu(),
            relu(),
            relu(),
        ]
        .into_iter()
        .enumerate()
        {
            v = g.add_node(op, vec![v], &[&format!("v{k}")], "t").unwrap()[0];
        }
        g.add_output(v);
        let parts = partition(&g, &not_abs, 2);
        let nodes: Vec<_> = parts.iter().map(|p| p.nodes.clone()).collect();
        assert_eq!(nodes, [vec![0, 1], vec![3, 4, 5]]);
        assert_eq!(parts[0].inputs, [g.inputs[0]]);
        assert_eq!(parts[0].outputs, g.nodes[1].outputs);
        assert_eq!(parts[1].outputs, [v]);
        assert_eq!(partition(&g, &not_abs, 3).len(), 1);
    }

    /// `a → abs → c` beside `a → c`: joining `a` and `c` would put `abs` on a path out of
    /// the group and back, so they stay two groups.
    #[test]
    fn a_group_never_joins_across_an_unsupported_detour() {
        let mut g = Graph::new();
        let x = input(&mut g);
        let a = g.add_node(relu(), vec![x], &["a"], "t").unwrap()[0];
        let u = g
            .add_node(Op::Unary(UnaryOp::Abs), vec![a], &["u"], "t")
            .unwrap()[0];
        let c = g
            .add_node(
                Op::Binary(Binary {
                    op: BinaryOp::Add,
                    axis: -1,
                }),
                vec![u, a],
                &["c"],
                "t",
            )
            .unwrap()[0];
        g.add_output(c);
        let parts = partition(&g, &not_abs, 1);
        let nodes: Vec<_> = parts.iter().map(|p| p.nodes.clone()).collect();
        assert_eq!(nodes, [vec![0], vec![2]]);
        assert_eq!(parts[1].inputs, [u, a]);
    }

    /// A small deterministic generator.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    /// Whether some path from a node of `set` leaves it and comes back.
    fn leaves_and_returns(g: &Graph, set: &[usize]) -> bool {
        let (succ, _) = edges(g);
        let inside = |k: usize| set.contains(&k);
        let mut seen = vec![false; g.nodes.len()];
        let mut stack: Vec<usize> = set
            .iter()
            .flat_map(|&m| succ[m].iter().copied())
            .filter(|&s| !inside(s))
            .collect();
        while let Some(k) = stack.pop() {
            if std::mem::replace(&mut seen[k], true) {
                continue;
            }
            for &s in &succ[k] {
                if inside(s) {
                    return true;
                }
                stack.push(s);
            }
        }
        false
    }

    /// Random graphs of unary and binary nodes, a random third unsupported: every group is
    /// convex, holds supported nodes only, and no two groups joined by an edge could join
    /// (their union would not be convex); every group, extracted as a graph and fed the
    /// values its inputs have in the whole graph, computes the values its outputs have
    /// there; a graph with the same nodes under other names has the same keys, and one
    /// with another weight does not.
    #[test]
    fn random_graphs_partition_into_maximal_convex_groups_that_compute_the_same() {
        // Groups of several nodes, and edges between two groups (joins refused), seen.
        let (mut multi, mut refused) = (0, 0);
        for seed in 0..60u64 {
            let build = |r: &mut Lcg, prefix: &str, w: f32| {
                let mut g = Graph::new();
                let x = g
                    .add_input(&format!("{prefix}x"), TypeInfo::known(DType::F32, &[2, 3]))
                    .unwrap();
                let k = g
                    .add_const(
                        &format!("{prefix}w"),
                        Arc::new(Tensor::from_f32s(&[3], vec![w, -0.5, 0.25]).unwrap()),
                    )
                    .unwrap();
                let mut vals = vec![x];
                for i in 0..18 {
                    let a = vals[r.next(vals.len())];
                    let (op, ins) = match r.next(4) {
                        0 => (Op::Unary(UnaryOp::Abs), vec![a]),
                        1 => (relu(), vec![a]),
                        2 => (
                            Op::Binary(Binary {
                                op: BinaryOp::Mul,
                                axis: -1,
                            }),
                            vec![a, k],
                        ),
                        _ => (
                            Op::Binary(Binary {
                                op: BinaryOp::Add,
                                axis: -1,
                            }),
                            vec![a, vals[r.next(vals.len())]],
                        ),
                    };
                    vals.push(
                        g.add_node(op, ins, &[&format!("{prefix}v{i}")], "t")
                            .unwrap()[0],
                    );
                }
                g.add_output(*vals.last().unwrap());
                g
            };
            let g = build(&mut Lcg(seed), "", 1.5);
            let parts = partition(&g, &not_abs, 1);
            let mut owner = vec![None; g.nodes.len()];
            for (i, p) in parts.iter().enumerate() {
                multi += usize::from(p.nodes.len() > 1);
                assert!(!leaves_and_returns(&g, &p.nodes), "seed {seed}: {p:?}");
                for &k in &p.nodes {
                    assert!(not_abs(&g, k) && owner[k].is_none());
                    owner[k] = Some(i);
                }
            }
            for (k, o) in owner.iter().enumerate() {
                assert_eq!(o.is_some(), not_abs(&g, k), "seed {seed}: node {k}");
            }
            let (succ, _) = edges(&g);
            for (k, s) in succ.iter().enumerate() {
                for &c in s {
                    if let (Some(a), Some(b)) = (owner[k], owner[c]) {
                        if a != b {
                            refused += 1;
                            let mut both = parts[a].nodes.clone();
                            both.extend(&parts[b].nodes);
                            assert!(
                                leaves_and_returns(&g, &both),
                                "seed {seed}: groups {a} and {b} could join"
                            );
                        }
                    }
                }
            }
            // Every value of the whole graph, by the reference evaluation.
            let mut all = g.clone();
            all.outputs = (0..g.values.len())
                .filter(|&v| !matches!(g.values[v].def, ValueDef::Const(_)))
                .collect();
            let xt = Tensor::from_f32s(&[2, 3], vec![-1.0, 2.0, -0.5, 0.75, 3.0, -2.5]).unwrap();
            let vals = all.evaluate(&[xt]).unwrap();
            let val = |v: ValueId| &vals[all.outputs.iter().position(|&o| o == v).unwrap()];
            for p in &parts {
                let sub = p.extract(&g).unwrap();
                let ins: Vec<Tensor> = p.inputs.iter().map(|&v| val(v).clone()).collect();
                let got = sub.evaluate(&ins).unwrap();
                for (&v, t) in p.outputs.iter().zip(&got) {
                    assert_eq!(t.to_f64_vec(), val(v).to_f64_vec(), "seed {seed}");
                }
            }
            // Keys: the same nodes under other names agree; another weight differs.
            let renamed = build(&mut Lcg(seed), "other_", 1.5);
            let reweighted = build(&mut Lcg(seed), "", 2.5);
            for p in &parts {
                let key = p.key(&g).unwrap();
                assert_eq!(key, p.key(&renamed).unwrap(), "seed {seed}");
                if !p.weights.is_empty() {
                    assert_ne!(key, p.key(&reweighted).unwrap(), "seed {seed}");
                }
            }
        }
        assert!(
            multi > 60 && refused > 10,
            "{multi} groups of several nodes, {refused} refused joins"
        );
    }
}
