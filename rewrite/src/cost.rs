//! The cost model: a per-node time estimate from shapes.
//!
//! `cost = launch + flops / flops_per_s + bytes / bytes_per_s`, where `bytes` counts every
//! tensor the op reads (inputs and weights) and writes. A fused op therefore costs less than
//! its parts exactly by the launches it saves and the intermediate tensors it neither
//! writes nor reads back — the reason fusion pays. View ops (reshape, squeeze, unsqueeze,
//! flatten, identity) move no data: they cost a small fraction of a launch. Leaves
//! (inputs, weights, folded constants, attributes) cost nothing. Symbolic dims are costed
//! at [`CostModel::symbolic_dim`].

use crate::analysis::{node_op, Data, KGraph};
use crate::language::Node;
use kayak_ir::{Op, Shape, TypeInfo};

/// Machine numbers for one backend.
#[derive(Debug, Clone)]
pub struct CostModel {
    /// Sustained arithmetic rate.
    pub flops_per_s: f64,
    /// Sustained memory bandwidth.
    pub bytes_per_s: f64,
    /// Fixed overhead of running one kernel.
    pub launch_s: f64,
    /// Size assumed for a dim not known at optimization time.
    pub symbolic_dim: usize,
}

impl CostModel {
    /// The CPU table (one x86 core: ~50 GFLOP/s f32 GEMM, ~10 GB/s, 1 µs per op).
    pub fn cpu() -> CostModel {
        CostModel {
            flops_per_s: 50e9,
            bytes_per_s: 10e9,
            launch_s: 1e-6,
            symbolic_dim: 64,
        }
    }

    /// A GPU table (pluggable: datacenter GPU, launch-bound for small ops).
    pub fn gpu() -> CostModel {
        CostModel {
            flops_per_s: 20e12,
            bytes_per_s: 1.5e12,
            launch_s: 5e-6,
            symbolic_dim: 64,
        }
    }

    fn numel(&self, s: &Shape) -> f64 {
        s.dims()
            .iter()
            .map(|d| d.known().unwrap_or(self.symbolic_dim) as f64)
            .product()
    }

    fn bytes(&self, t: &TypeInfo) -> f64 {
        self.numel(&t.shape) * t.dtype.size_of() as f64
    }

    /// Cost of one e-node (infinite for nodes that do not type-check).
    pub fn node_cost(&self, egraph: &KGraph, node: &Node) -> f64 {
        let Node::Op(kind, children) = node else {
            return 0.0;
        };
        let Some((op, tensors)) = node_op(egraph, kind.as_str(), children) else {
            return f64::INFINITY;
        };
        let ins: Vec<&TypeInfo> = match tensors
            .iter()
            .map(|&c| egraph[c].data.ty())
            .collect::<Option<Vec<_>>>()
        {
            Some(v) => v,
            None => return f64::INFINITY,
        };
        let outs: Vec<TypeInfo> = match crate::analysis::check_node(egraph, node, false) {
            Data::Tensor { ty, .. } => vec![ty],
            Data::Tuple(ts) => ts,
            _ => return f64::INFINITY,
        };
        if op.is_view() {
            return self.launch_s * 0.1;
        }
        let out_elems: f64 = outs.iter().map(|t| self.numel(&t.shape)).sum();
        let bytes: f64 = ins.iter().map(|t| self.bytes(t)).sum::<f64>()
            + outs.iter().map(|t| self.bytes(t)).sum::<f64>();
        let flops = match op.as_ref() {
            Op::Conv2d(_) => conv_flops(self, ins[1], out_elems),
            Op::FusedConv(_) => conv_flops(self, ins[1], out_elems) + out_elems * 4.0,
            Op::Conv2dTranspose(_) => conv_flops(self, ins[1], self.numel(&ins[0].shape)),
            Op::MatMul(_) | Op::FusedMatMul(_) => {
                let k = ins[0]
                    .shape
                    .dims()
                    .last()
                    .and_then(|d| d.known())
                    .unwrap_or(self.symbolic_dim) as f64;
                2.0 * out_elems * k
            }
            Op::Mul(_) | Op::Fc(_) => {
                2.0 * out_elems * self.numel(&ins[1].shape)
                    / ins[1]
                        .shape
                        .dims()
                        .last()
                        .and_then(|d| d.known())
                        .unwrap_or(1)
                        .max(1) as f64
            }
            Op::SeBlock(_) => 2.0 * self.numel(&ins[1].shape) * 2.0 + out_elems * 3.0,
            _ => out_elems * 2.0,
        };
        self.launch_s + flops / self.flops_per_s + bytes / self.bytes_per_s
    }
}

fn conv_flops(m: &CostModel, w: &TypeInfo, out_elems: f64) -> f64 {
    // Each output element: IC/groups × KH × KW multiply-adds; w is [OC, IC/groups, KH, KW].
    let per_out = m.numel(&Shape(w.shape.dims()[1..].to_vec()));
    2.0 * out_elems * per_out
}
