//! A memory-aware execution order: the ready node that frees the most goes first.

use kayak_ir::{Graph, ValueId};

/// A topological order of the nodes that run, scheduled greedily to keep less memory
/// alive: among the ready nodes, the one that frees the most bytes (inputs it reads for
/// the last time) net of what it allocates (its outputs; views allocate nothing) goes
/// first; ties keep the graph's order.
pub(super) fn memory_order(
    graph: &Graph,
    spec: &kayak_ir::Specialized,
    run_node: &[bool],
    keep: &[ValueId],
) -> Vec<usize> {
    let nv = graph.values.len();
    let mut producer: Vec<Option<usize>> = vec![None; nv];
    for (n, node) in graph.nodes.iter().enumerate() {
        if run_node[n] {
            for &o in &node.outputs {
                producer[o] = Some(n);
            }
        }
    }
    let bytes = |v: ValueId| -> i64 {
        if producer[v].is_none() || keep.contains(&v) {
            return 0;
        }
        spec.types[v].shape.to_known().map_or(0, |s| {
            (s.iter().product::<usize>() * spec.types[v].dtype.size_of()) as i64
        })
    };
    let mut readers = vec![0usize; nv];
    let mut waiting = vec![0usize; graph.nodes.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        if !run_node[n] {
            continue;
        }
        let mut deps = std::collections::BTreeSet::new();
        for &i in &node.inputs {
            readers[i] += 1;
            if let Some(p) = producer[i] {
                deps.insert(p);
            }
        }
        waiting[n] = deps.len();
    }
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        if !run_node[n] {
            continue;
        }
        let mut seen = std::collections::BTreeSet::new();
        for &i in &node.inputs {
            if let Some(p) = producer[i] {
                if seen.insert(p) {
                    consumers[p].push(n);
                }
            }
        }
    }
    let mut ready: Vec<usize> = (0..graph.nodes.len())
        .filter(|&n| run_node[n] && waiting[n] == 0)
        .collect();
    let mut order = Vec::new();
    while !ready.is_empty() {
        let score = |n: usize| -> i64 {
            let node = &graph.nodes[n];
            let mut freed = 0;
            let mut counted = std::collections::BTreeSet::new();
            for &i in &node.inputs {
                let uses = node.inputs.iter().filter(|&&j| j == i).count();
                if readers[i] == uses && counted.insert(i) {
                    freed += bytes(i);
                }
            }
            let alloc: i64 = if node.op.is_view() {
                0
            } else {
                node.outputs.iter().map(|&o| bytes(o)).sum()
            };
            freed - alloc
        };
        let (pos, &n) = ready
            .iter()
            .enumerate()
            .max_by_key(|&(_, &n)| (score(n), std::cmp::Reverse(n)))
            .expect("non-empty");
        ready.swap_remove(pos);
        order.push(n);
        for &i in &graph.nodes[n].inputs {
            readers[i] -= 1;
        }
        for &c in &consumers[n] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(c);
            }
        }
    }
    order
}
