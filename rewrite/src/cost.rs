//! The cost model: a per-node time estimate from shapes, for one backend.
//!
//! Each op is reduced to its arithmetic (`flops`), the bytes it reads (inputs and weights)
//! and writes, and the number of output elements, and a backend's numbers turn those into
//! seconds:
//!
//! - **CPU** ([`CostModel::cpu`]): `launch + flops / flops_per_s + bytes / bytes_per_s` —
//!   one core does the arithmetic and the memory traffic in turn. A fused op therefore
//!   costs less than its parts exactly by the launches it saves and the intermediate tensors
//!   it neither writes nor reads back — the reason fusion pays.
//! - **GPU** ([`CostModel::gpu`]): a roofline, `launch + max(flops / (F·u), bytes / (B·u))`
//!   (arithmetic and memory traffic overlap), where the utilization `u` is the fraction of
//!   the device's parallel units ([`Occupancy`]) the op's output can keep busy: a GEMM
//!   whose output makes fewer thread-block tiles than there are SMs runs at that fraction of
//!   the peak rate. Launches cost more relative to work, so merging small kernels pays more
//!   than on a CPU; an op the device has no kernel for ([`Offload`]) costs its host time
//!   plus moving its activations across the link and back, so extraction keeps the forms
//!   the device can run. The two models can choose different graphs from the same e-graph
//!   (`rewrite/tests/gpu_cost.rs` shows both kinds of difference).
//!
//! View ops (reshape, squeeze, unsqueeze, flatten, identity) move no data: they cost a
//! small fraction of a launch. Leaves (inputs, weights, folded constants, attributes) cost
//! nothing. Symbolic dims are costed at [`CostModel::symbolic_dim`].

use crate::analysis::{node_op, Data, KGraph};
use crate::language::Node;
use kayak_ir::{Op, Shape, TypeInfo};
use std::sync::Arc;

/// How many parallel units a device has and how much output one unit computes: an op whose
/// output fills fewer units than the device has runs at that fraction of its rates.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupancy {
    /// Parallel units (an NVIDIA GPU's streaming multiprocessors, one resident block each
    /// for a GEMM tile).
    pub units: f64,
    /// Output elements of one GEMM-like op's tile (convolutions, matrix products,
    /// attention): a 128×128 thread-block tile is 16384.
    pub gemm_tile: f64,
    /// Output elements one unit needs to stream at full rate in every other op (enough
    /// resident threads to hide memory latency).
    pub stream_tile: f64,
}

/// Which ops a device has kernels for; the others run on the host, their activations
/// copied across the link both ways.
#[derive(Clone)]
pub struct Offload {
    /// True for the ops (with their attributes) the device runs.
    pub native: Arc<dyn Fn(&Op) -> bool + Send + Sync>,
    /// The host's model, for the ops it runs.
    pub host: Box<CostModel>,
    /// Host ↔ device bandwidth (PCIe or NVLink-C2C), bytes per second.
    pub link_bytes_per_s: f64,
    /// One synchronization with the host, each way (the device waits for the copy back).
    pub sync_s: f64,
}

impl Offload {
    /// A device with the kernels `native` accepts, behind a PCIe 5 link (25 GB/s
    /// sustained, 10 µs per synchronization) from a host costed as [`CostModel::cpu`].
    pub fn pcie(native: impl Fn(&Op) -> bool + Send + Sync + 'static) -> Offload {
        Offload {
            native: Arc::new(native),
            host: Box::new(CostModel::cpu()),
            link_bytes_per_s: 25e9,
            sync_s: 10e-6,
        }
    }
}

impl std::fmt::Debug for Offload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offload")
            .field("host", &self.host.name)
            .field("link_bytes_per_s", &self.link_bytes_per_s)
            .field("sync_s", &self.sync_s)
            .finish_non_exhaustive()
    }
}

/// Machine numbers for one backend.
#[derive(Debug, Clone)]
pub struct CostModel {
    /// The backend's name (`cpu`, `gpu`); optimized-graph caches key on it.
    pub name: String,
    /// Sustained arithmetic rate.
    pub flops_per_s: f64,
    /// Sustained memory bandwidth.
    pub bytes_per_s: f64,
    /// Fixed overhead of running one kernel.
    pub launch_s: f64,
    /// Size assumed for a dim not known at optimization time.
    pub symbolic_dim: usize,
    /// Arithmetic and memory traffic overlap (a roofline: the larger term counts) rather
    /// than add.
    pub overlap: bool,
    /// The device's parallel units, when a small op cannot fill them (GPUs).
    pub occupancy: Option<Occupancy>,
    /// The ops the device has kernels for, when not all (the rest run on the host).
    pub offload: Option<Offload>,
}

/// What an op does, independent of the machine.
struct Work {
    flops: f64,
    /// Bytes read and written.
    bytes: f64,
    /// Bytes of non-constant inputs and of outputs: what crosses the link when the op runs
    /// on the other side.
    moved: f64,
    out_elems: f64,
    gemm_like: bool,
}

impl CostModel {
    /// The CPU table (one x86 core: ~50 GFLOP/s f32 GEMM, ~10 GB/s, 1 µs per op).
    pub fn cpu() -> CostModel {
        CostModel {
            name: "cpu".into(),
            flops_per_s: 50e9,
            bytes_per_s: 10e9,
            launch_s: 1e-6,
            symbolic_dim: 64,
            overlap: false,
            occupancy: None,
            offload: None,
        }
    }

    /// A datacenter GPU (H100-class, fp32 without tensor cores): 50 TFLOP/s sustained,
    /// 2.8 TB/s, 3 µs per kernel launch, 132 SMs with 128×128 GEMM tiles and 1024-element
    /// blocks elsewhere. Every op is taken to have a kernel; [`CostModel::with_native`]
    /// says which do.
    pub fn gpu() -> CostModel {
        CostModel {
            name: "gpu".into(),
            flops_per_s: 50e12,
            bytes_per_s: 2.8e12,
            launch_s: 3e-6,
            symbolic_dim: 64,
            overlap: true,
            occupancy: Some(Occupancy {
                units: 132.0,
                gemm_tile: 16384.0,
                stream_tile: 1024.0,
            }),
            offload: None,
        }
    }

    /// This model with only the ops `native` accepts running on the device; the others are
    /// costed on the CPU model plus copying their activations over a PCIe 5 link
    /// (25 GB/s sustained) and back, with 10 µs of synchronization. `coverage` names the
    /// kernel set: it becomes part of [`CostModel::name`] (`gpu[coverage]`), which caches of
    /// optimized graphs key on, so two kernel sets must have two names.
    pub fn with_native(
        mut self,
        coverage: &str,
        native: impl Fn(&Op) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.name = format!("{}[{coverage}]", self.name);
        self.offload = Some(Offload::pcie(native));
        self
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

    fn dim(&self, t: &TypeInfo, axis: usize) -> f64 {
        t.shape
            .dims()
            .get(axis)
            .and_then(|d| d.known())
            .unwrap_or(self.symbolic_dim) as f64
    }

    /// The time of one op's work on this machine (no offload).
    fn time(&self, w: &Work) -> f64 {
        let util = match &self.occupancy {
            Some(o) => {
                let tile = if w.gemm_like {
                    o.gemm_tile
                } else {
                    o.stream_tile
                };
                ((w.out_elems / tile).ceil() / o.units).clamp(1.0 / o.units, 1.0)
            }
            None => 1.0,
        };
        let compute = w.flops / (self.flops_per_s * util);
        let memory = w.bytes / (self.bytes_per_s * util);
        let body = if self.overlap {
            compute.max(memory)
        } else {
            compute + memory
        };
        self.launch_s + body
    }

    /// Cost of one e-node (infinite for nodes that do not type-check).
    pub fn node_cost(&self, egraph: &KGraph, node: &Node) -> f64 {
        let Node::Op(kind, children) = node else {
            return 0.0;
        };
        let Some((op, tensors)) = node_op(egraph, kind.as_str(), children) else {
            return f64::INFINITY;
        };
        let ins: Vec<(&TypeInfo, bool)> = match tensors
            .iter()
            .map(|&c| {
                let d = &egraph[c].data;
                d.ty().map(|t| (t, d.value().is_some()))
            })
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
        let w = self.work(&op, &ins, &outs);
        match &self.offload {
            Some(off) if !(off.native)(&op) => {
                off.host.time(&w) + w.moved / off.link_bytes_per_s + 2.0 * off.sync_s
            }
            _ => self.time(&w),
        }
    }

    /// The time of `op` on this machine itself (no offload): `ins` are its tensor inputs'
    /// types, each with whether it is a constant, `outs` its outputs' types.
    pub fn op_time(&self, op: &Op, ins: &[(&TypeInfo, bool)], outs: &[TypeInfo]) -> f64 {
        if op.is_view() {
            return self.launch_s * 0.1;
        }
        self.time(&self.work(op, ins, outs))
    }

    /// Bytes of a value's type (symbolic dims at [`CostModel::symbolic_dim`]).
    pub fn type_bytes(&self, t: &TypeInfo) -> f64 {
        self.bytes(t)
    }

    fn work(&self, op: &Op, ins: &[(&TypeInfo, bool)], outs: &[TypeInfo]) -> Work {
        let out_elems: f64 = outs.iter().map(|t| self.numel(&t.shape)).sum();
        let out_bytes: f64 = outs.iter().map(|t| self.bytes(t)).sum();
        let bytes = ins.iter().map(|(t, _)| self.bytes(t)).sum::<f64>() + out_bytes;
        let moved = ins
            .iter()
            .filter(|(_, constant)| !constant)
            .map(|(t, _)| self.bytes(t))
            .sum::<f64>()
            + out_bytes;
        let (flops, gemm_like) = match op {
            Op::Conv2d(_) => (conv_flops(self, ins[1].0, out_elems), true),
            Op::FusedConv(_) => (
                conv_flops(self, ins[1].0, out_elems) + out_elems * 4.0,
                true,
            ),
            Op::Conv2dTranspose(_) => (
                conv_flops(self, ins[1].0, self.numel(&ins[0].0.shape)),
                true,
            ),
            Op::MatMul(_) | Op::FusedMatMul(_) => {
                let x = ins[0].0;
                let k = self.dim(x, x.shape.rank().saturating_sub(1));
                (2.0 * out_elems * k, true)
            }
            Op::Mul(_) | Op::Fc(_) => {
                let w = ins[1].0;
                let n = self.dim(w, w.shape.rank().saturating_sub(1)).max(1.0);
                (2.0 * out_elems * self.numel(&w.shape) / n, true)
            }
            // Q·Kᵀ and P·V: 2·S·D multiply-adds per output element and head, S the sequence.
            Op::Attention(_) => (4.0 * out_elems * self.dim(ins[0].0, 1), true),
            Op::SeBlock(_) => (
                2.0 * self.numel(&ins[1].0.shape) * 2.0 + out_elems * 3.0,
                false,
            ),
            _ => (out_elems * 2.0, false),
        };
        Work {
            flops,
            bytes,
            moved,
            out_elems,
            gemm_like,
        }
    }
}

fn conv_flops(m: &CostModel, w: &TypeInfo, out_elems: f64) -> f64 {
    // Each output element: IC/groups × KH × KW multiply-adds; w is [OC, IC/groups, KH, KW].
    let per_out = m.numel(&Shape(w.shape.dims()[1..].to_vec()));
    2.0 * out_elems * per_out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemm(m: f64, n: f64, k: f64) -> Work {
        Work {
            flops: 2.0 * m * n * k,
            bytes: 4.0 * (m * k + k * n + m * n),
            moved: 4.0 * (m * k + m * n),
            out_elems: m * n,
            gemm_like: true,
        }
    }

    #[test]
    fn a_gemm_too_small_to_fill_the_gpu_runs_at_its_share_of_the_peak() {
        let gpu = CostModel::gpu();
        // 8×256 outputs: one 128×128 tile, so one SM of 132 does all the work.
        let small = gpu.time(&gemm(8.0, 256.0, 256.0)) - gpu.launch_s;
        let bytes = 4.0 * (8.0 * 256.0 + 256.0 * 256.0 + 8.0 * 256.0);
        let one_sm = bytes / (gpu.bytes_per_s / 132.0);
        assert!(
            (small - one_sm).abs() < 1e-3 * one_sm,
            "{small} vs {one_sm}"
        );
        // Three times the columns is still one tile: three times the time, one launch.
        let wide = gpu.time(&gemm(8.0, 768.0, 256.0)) - gpu.launch_s;
        assert!((wide / small - 2.98).abs() < 0.05, "{}", wide / small);
        // A product that fills every SM runs at the full rate (flops-bound here).
        let big = gpu.time(&gemm(4096.0, 4096.0, 4096.0)) - gpu.launch_s;
        let peak = 2.0 * 4096f64.powi(3) / gpu.flops_per_s;
        assert!((big - peak).abs() < 1e-9 + 1e-6 * peak, "{big} vs {peak}");
    }

    #[test]
    fn the_cpu_adds_arithmetic_and_memory_and_the_gpu_overlaps_them() {
        let w = gemm(512.0, 512.0, 512.0);
        let cpu = CostModel::cpu();
        let want = cpu.launch_s + w.flops / cpu.flops_per_s + w.bytes / cpu.bytes_per_s;
        assert!((cpu.time(&w) - want).abs() < 1e-12);
        let gpu = CostModel {
            occupancy: None,
            ..CostModel::gpu()
        };
        let want = gpu.launch_s + (w.flops / gpu.flops_per_s).max(w.bytes / gpu.bytes_per_s);
        assert!((gpu.time(&w) - want).abs() < 1e-15);
    }
}
