//! Load-time lowering for the CPU GEMM: constant matmul weights packed once.
//!
//! A weight read in place by every product streams through the micro-kernel at its own
//! row stride, from memory (a model's weights rarely stay in cache between runs), and a
//! stride that is a multiple of 2 KiB maps a tile's rows onto a few cache sets. Packed
//! into the GEMM's strips ([`kayak_ir::ops::Packed`], [`PACK_COLS`] columns) it is read strictly
//! sequentially and never repacked per product, as ONNX Runtime's MLAS prepacks constant
//! B. The packed tensor **replaces** the weight in the graph, so it is held once.

use kayak_ir::ops::{FusedMatMul, MatMul, Packed};
use kayak_ir::{DType, Dim, Graph, Op, Shape, Tensor, TypeInfo, ValueDef, ValueId};
use kayak_kernels::gemm::{pack_b, packed_len, Mat, PACK_COLS};
use std::sync::Arc;

/// Smallest `k` and `n` worth packing (smaller products are a few tiles).
const MIN_DIM: usize = 16;

/// Packs every f32 rank-2 constant that is only ever the `y` of matmuls (plain or fused,
/// all with the same `trans_y`) and is not itself kept: the constant is replaced by its
/// packed form and its matmuls become `fused_matmul`s with `packed` set. Returns how
/// many weights were packed. The graph's outputs are unchanged (its reference semantics
/// unpack).
pub fn prepack_weights(graph: &mut Graph, keep: &[ValueId]) -> usize {
    let mut users: Vec<Vec<usize>> = vec![vec![]; graph.values.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            users[v].push(n);
        }
    }
    let mut packed = 0;
    for (v, users) in users.iter().enumerate() {
        let ValueDef::Const(t) = &graph.values[v].def else {
            continue;
        };
        if t.dtype() != DType::F32
            || t.shape().len() != 2
            || keep.contains(&v)
            || graph.outputs.contains(&v)
            || users.is_empty()
        {
            continue;
        }
        // Every user reads it as `y` only, with one `trans_y`, and is not packed yet.
        let mut trans = None;
        let ok = users.iter().all(|&n| {
            let node = &graph.nodes[n];
            let mm = match &node.op {
                Op::MatMul(m) => m,
                Op::FusedMatMul(f) if f.packed.is_none() => &f.mm,
                _ => return false,
            };
            let only_y = node.inputs.len() >= 2
                && node.inputs[1] == v
                && node.inputs.iter().filter(|&&i| i == v).count() == 1;
            let same = *trans.get_or_insert(mm.trans_y) == mm.trans_y;
            only_y && same
        });
        let trans = trans.unwrap_or(false);
        let (r, c) = (t.shape()[0], t.shape()[1]);
        let (k, n) = if trans { (c, r) } else { (r, c) };
        if !ok || k < MIN_DIM || n < MIN_DIM {
            continue;
        }
        let Some(w) = t.as_f32() else { continue };
        let w = w.as_standard_layout();
        let Some(data) = w.as_slice() else { continue };
        let b = if trans {
            Mat::rows(data, k).t()
        } else {
            Mat::rows(data, n)
        };
        let mut out = vec![0f32; packed_len(k, n)];
        pack_b(b, k, n, &mut out);
        let shape = [n.div_ceil(PACK_COLS), k, PACK_COLS];
        let Ok(p) = Tensor::from_f32s(&shape, out) else {
            continue;
        };
        graph.values[v].def = ValueDef::Const(Arc::new(p));
        graph.values[v].ty = TypeInfo {
            dtype: DType::F32,
            shape: Shape(shape.iter().map(|&d| Dim::Known(d)).collect()),
        };
        for &u in users {
            let node = &mut graph.nodes[u];
            let (mm, has_bias, act) = match &node.op {
                Op::MatMul(m) => (m.clone(), false, None),
                Op::FusedMatMul(f) => (f.mm.clone(), f.has_bias, f.act),
                _ => unreachable!("checked above"),
            };
            node.op = Op::FusedMatMul(FusedMatMul {
                mm: MatMul {
                    trans_y: false,
                    ..mm
                },
                has_bias,
                act,
                packed: Some(Packed { n, cols: PACK_COLS }),
            });
        }
        packed += 1;
    }
    packed
}
