//! Placement of a graph's ops between a device and its host, with the fewest-cost copies.
//!
//! An op the device has no kernel for must run on the host; every other op may run on
//! either side. A value produced on one side and read on the other is copied once per
//! direction: uploaded if its producer (or the caller, for a graph input) is on the host and
//! some reader is on the device, downloaded if its producer is on the device and some reader
//! (or the caller, for a graph output) is on the host. Weights are resident on both sides
//! and never copied per run. [`place`] minimizes the sum of the ops' times on their sides
//! (from a [`CostModel`] and its host's) and the copies' times (bytes over the link plus one
//! synchronization each).
//!
//! With two sides this is exactly a minimum *s*–*t* cut (Stone's two-processor assignment):
//! the source stands for the device and the sink for the host; each op has an edge from the
//! source costing its host time (cut when it lands on the host) and one to the sink costing
//! its device time (cut when it lands on the device; infinite without a kernel). Each value
//! gets two helper vertices: `d`, fed by its producer through an edge costing the copy and
//! feeding every reader (and, for an output, the sink) through infinite edges, so the copy
//! is paid once when any reader is on the host side of a device producer; and `h`, fed by
//! every reader through infinite edges and feeding the producer (the sink, for a graph
//! input) through an edge costing the copy, for uploads. The cut is computed on integer
//! picoseconds with Dinic's max-flow algorithm, so the result is the exact optimum of the
//! model — the tests compare it with every assignment of small graphs.

use crate::cost::{CostModel, Offload};
use kayak_ir::{Graph, TypeInfo, ValueDef, ValueId};
use std::collections::VecDeque;

/// Where an op runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The CPU (the caller's memory).
    Host,
    /// The accelerator.
    Device,
}

/// The sides of a graph's ops and the copies they imply.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Per node, in the graph's order.
    pub side: Vec<Side>,
    /// Values copied host → device each run, ascending.
    pub uploads: Vec<ValueId>,
    /// Values copied device → host each run, ascending.
    pub downloads: Vec<ValueId>,
    /// Estimated time of a run: every op on its side plus every copy, in picoseconds.
    pub cost_ps: i64,
}

impl Placement {
    /// Estimated time of a run, seconds.
    pub fn cost_s(&self) -> f64 {
        self.cost_ps as f64 * 1e-12
    }

    /// Ops on the device.
    pub fn on_device(&self) -> usize {
        self.side.iter().filter(|&&s| s == Side::Device).count()
    }
}

/// A cost that no finite sum reaches (an op without a device kernel, on the device).
const INF: i64 = i64::MAX / 4;

fn ps(seconds: f64) -> i64 {
    if seconds.is_finite() {
        ((seconds * 1e12).round() as i64).clamp(0, INF)
    } else {
        INF
    }
}

/// Per-op times on each side and per-value copy times, in picoseconds.
struct Times {
    host: Vec<i64>,
    device: Vec<i64>,
    copy: Vec<i64>,
}

fn times(g: &Graph, model: &CostModel, device_ok: Option<&[bool]>) -> Times {
    let pcie;
    let off: &Offload = match &model.offload {
        Some(o) => o,
        None => {
            pcie = Offload::pcie(|_| true);
            &pcie
        }
    };
    let mut host = Vec::with_capacity(g.nodes.len());
    let mut device = Vec::with_capacity(g.nodes.len());
    for (k, n) in g.nodes.iter().enumerate() {
        let ins: Vec<(&TypeInfo, bool)> = n
            .inputs
            .iter()
            .map(|&v| (&g.values[v].ty, g.const_value(v).is_some()))
            .collect();
        let outs: Vec<TypeInfo> = n.outputs.iter().map(|&v| g.values[v].ty.clone()).collect();
        host.push(ps(off.host.op_time(&n.op, &ins, &outs)));
        let ok = device_ok.is_none_or(|d| d.get(k).copied().unwrap_or(false));
        device.push(if ok && (off.native)(&n.op) {
            ps(model.op_time(&n.op, &ins, &outs))
        } else {
            INF
        });
    }
    let copy = g
        .values
        .iter()
        .map(|v| ps(model.type_bytes(&v.ty) / off.link_bytes_per_s + off.sync_s))
        .collect();
    Times { host, device, copy }
}

/// Readers of each value: node indices, and whether the caller reads it (a graph output).
fn readers(g: &Graph) -> (Vec<Vec<usize>>, Vec<bool>) {
    let mut r = vec![Vec::new(); g.values.len()];
    for (k, n) in g.nodes.iter().enumerate() {
        for &v in &n.inputs {
            if r[v].last() != Some(&k) {
                r[v].push(k);
            }
        }
    }
    let mut out = vec![false; g.values.len()];
    for &v in &g.outputs {
        out[v] = true;
    }
    (r, out)
}

/// The cost and copies of a given assignment of sides (`side[k]` for node `k`).
///
/// # Panics
/// If `side` does not have one entry per node (a caller's bug, not bad input).
pub fn placement_cost(g: &Graph, model: &CostModel, side: &[Side]) -> Placement {
    assert_eq!(side.len(), g.nodes.len(), "one side per node");
    let t = times(g, model, None);
    evaluate(g, &t, side)
}

fn evaluate(g: &Graph, t: &Times, side: &[Side]) -> Placement {
    let (readers, is_output) = readers(g);
    let mut cost: i64 = 0;
    for (k, s) in side.iter().enumerate() {
        cost = cost.saturating_add(match s {
            Side::Host => t.host[k],
            Side::Device => t.device[k],
        });
    }
    let (mut uploads, mut downloads) = (Vec::new(), Vec::new());
    for (v, value) in g.values.iter().enumerate() {
        let from = match value.def {
            ValueDef::Node { node, .. } => side[node],
            ValueDef::Input => Side::Host,
            ValueDef::Const(_) => continue,
        };
        let on =
            |s: Side| readers[v].iter().any(|&k| side[k] == s) || (s == Side::Host && is_output[v]);
        if from == Side::Host && on(Side::Device) {
            uploads.push(v);
            cost = cost.saturating_add(t.copy[v]);
        }
        if from == Side::Device && on(Side::Host) {
            downloads.push(v);
            cost = cost.saturating_add(t.copy[v]);
        }
    }
    Placement {
        side: side.to_vec(),
        uploads,
        downloads,
        cost_ps: cost.min(INF),
    }
}

/// The cheapest placement of `g`'s ops under `model` (its device) and the model's host
/// ([`CostModel::offload`]; without one, every op has a device kernel and copies cross a
/// PCIe link as [`CostModel::with_native`] sets). Ops without a device kernel are always
/// on the host; graph inputs arrive and outputs leave in host memory.
pub fn place(g: &Graph, model: &CostModel) -> Placement {
    place_inner(g, model, None)
}

/// [`place`], with node `k` allowed on the device only where `device_ok[k]` (the device
/// backend's own answer for that node, its shapes and dtypes included).
pub fn place_with(g: &Graph, model: &CostModel, device_ok: &[bool]) -> Placement {
    place_inner(g, model, Some(device_ok))
}

fn place_inner(g: &Graph, model: &CostModel, device_ok: Option<&[bool]>) -> Placement {
    let t = times(g, model, device_ok);
    let (readers, is_output) = readers(g);
    let n = g.nodes.len();
    // Vertices: 0 source (device), 1 sink (host), 2.. the ops, then the helpers.
    let (s, sink) = (0usize, 1usize);
    let mut net = Net::new(2 + n);
    for k in 0..n {
        net.edge(s, 2 + k, t.host[k]);
        net.edge(2 + k, sink, t.device[k]);
    }
    for (v, value) in g.values.iter().enumerate() {
        let producer = match value.def {
            ValueDef::Node { node, .. } => Some(2 + node),
            ValueDef::Input => None,
            ValueDef::Const(_) => continue,
        };
        if readers[v].is_empty() && !is_output[v] {
            continue;
        }
        if let Some(p) = producer {
            // Download: the producer on the device, a reader (or the caller) on the host.
            let d = net.vertex();
            net.edge(p, d, t.copy[v]);
            for &k in &readers[v] {
                net.edge(d, 2 + k, INF);
            }
            if is_output[v] {
                net.edge(d, sink, INF);
            }
        }
        if !readers[v].is_empty() {
            // Upload: the producer (or the caller) on the host, a reader on the device.
            let h = net.vertex();
            for &k in &readers[v] {
                net.edge(2 + k, h, INF);
            }
            net.edge(h, producer.unwrap_or(sink), t.copy[v]);
        }
    }
    let flow = net.max_flow(s, sink);
    let device_side = net.reachable(s);
    let side: Vec<Side> = (0..n)
        .map(|k| {
            if device_side[2 + k] {
                Side::Device
            } else {
                Side::Host
            }
        })
        .collect();
    let p = evaluate(g, &t, &side);
    debug_assert_eq!(
        p.cost_ps,
        flow.min(INF),
        "the cut's value is the placement's cost"
    );
    p
}

/// A flow network with integer capacities (Dinic's algorithm).
struct Net {
    /// Per vertex, indices into `to`/`cap` of its outgoing (and residual) edges.
    adj: Vec<Vec<usize>>,
    to: Vec<usize>,
    cap: Vec<i64>,
}

impl Net {
    fn new(vertices: usize) -> Net {
        Net {
            adj: vec![Vec::new(); vertices],
            to: Vec::new(),
            cap: Vec::new(),
        }
    }

    fn vertex(&mut self) -> usize {
        self.adj.push(Vec::new());
        self.adj.len() - 1
    }

    /// An edge `a → b` of capacity `c`, and its residual `b → a` of 0 (edge `e ^ 1`).
    fn edge(&mut self, a: usize, b: usize, c: i64) {
        for (from, to, cap) in [(a, b, c), (b, a, 0)] {
            self.adj[from].push(self.to.len());
            self.to.push(to);
            self.cap.push(cap);
        }
    }

    fn levels(&self, s: usize) -> Vec<usize> {
        let mut level = vec![usize::MAX; self.adj.len()];
        level[s] = 0;
        let mut q = VecDeque::from([s]);
        while let Some(u) = q.pop_front() {
            for &e in &self.adj[u] {
                if self.cap[e] > 0 && level[self.to[e]] == usize::MAX {
                    level[self.to[e]] = level[u] + 1;
                    q.push_back(self.to[e]);
                }
            }
        }
        level
    }

    /// Pushes at most `limit` along level-increasing edges from `u` (iterative DFS over
    /// each vertex's next untried edge), returning what reached `t`.
    fn push(&mut self, s: usize, t: usize, level: &[usize], next: &mut [usize]) -> i64 {
        // The path so far, as the edges taken.
        let mut path: Vec<usize> = Vec::new();
        let mut u = s;
        loop {
            if u == t {
                let f = path.iter().map(|&e| self.cap[e]).min().unwrap_or(0);
                for &e in &path {
                    self.cap[e] -= f;
                    self.cap[e ^ 1] += f;
                }
                return f;
            }
            let mut advanced = false;
            while next[u] < self.adj[u].len() {
                let e = self.adj[u][next[u]];
                let v = self.to[e];
                if self.cap[e] > 0 && level[v] == level[u] + 1 {
                    path.push(e);
                    u = v;
                    advanced = true;
                    break;
                }
                next[u] += 1;
            }
            if !advanced {
                // Dead end: retreat, and never try the edge into it again this phase.
                match path.pop() {
                    Some(e) => {
                        u = self.to[e ^ 1];
                        next[u] += 1;
                    }
                    None => return 0,
                }
            }
        }
    }

    fn max_flow(&mut self, s: usize, t: usize) -> i64 {
        let mut flow: i64 = 0;
        loop {
            let level = self.levels(s);
            if level[t] == usize::MAX {
                return flow;
            }
            let mut next = vec![0usize; self.adj.len()];
            loop {
                let f = self.push(s, t, &level, &mut next);
                if f == 0 {
                    break;
                }
                flow = flow.saturating_add(f);
            }
        }
    }

    /// The vertices reachable from `s` through edges with capacity left (the source side
    /// of a minimum cut once the flow is maximal).
    fn reachable(&self, s: usize) -> Vec<bool> {
        let mut seen = vec![false; self.adj.len()];
        seen[s] = true;
        let mut q = vec![s];
        while let Some(u) = q.pop() {
            for &e in &self.adj[u] {
                if self.cap[e] > 0 && !seen[self.to[e]] {
                    seen[self.to[e]] = true;
                    q.push(self.to[e]);
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_flow_of_a_textbook_network() {
        // CLRS figure 26.1: the maximum flow is 23.
        let mut n = Net::new(6);
        for (a, b, c) in [
            (0, 1, 16),
            (0, 2, 13),
            (2, 1, 4),
            (1, 3, 12),
            (3, 2, 9),
            (2, 4, 14),
            (4, 3, 7),
            (3, 5, 20),
            (4, 5, 4),
        ] {
            n.edge(a, b, c);
        }
        assert_eq!(n.max_flow(0, 5), 23);
        let side = n.reachable(0);
        // The minimum cut {s, v1, v2, v4} | {v3, t}: 12 + 7 + 4 = 23.
        assert_eq!(side, [true, true, true, false, true, false]);
    }
}
