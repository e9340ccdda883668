//! Lowering one node of a concrete graph to device work: CUDA C kernels generated for its
//! exact shapes and attributes, or a GEMM plus an epilogue kernel. [`lower`] answering
//! `None` is what "no device kernel" means: the node runs on the host.
//!
//! Every kernel runs one thread per output element (or per row, for reductions), with
//! shapes and attributes as literals; arithmetic is f32, as on the GPU. The kernels are
//! checked against the reference ops on random cases through the emulator
//! (`tests/tests/gpu_exec.rs`).
//!
//! The kernels' bodies are templates in `src/cu/*.cu`, filled by the emitter in
//! `template.rs` with the node's shapes and attributes and with C expressions built here
//! ([`act_expr`] and the like); a template and its values that do not match make the node
//! run on the host. The lowerings by concept: `elementwise` (copies, unary and binary
//! ops, prelu), `conv` (direct, im2col and transposed convolutions), `gemm` (matmul, mul,
//! fc), `norm` (softmax, layer and batch norms), `pool` (pooling, reductions), `se`
//! (squeeze-and-excitation blocks), `data` (gathers, bilinear resizes) and `attention`.

mod attention;
mod conv;
mod data;
mod elementwise;
mod gemm;
mod norm;
mod pool;
mod se;
mod template;

pub use elementwise::act_expr;

use kayak_gpu::{LaunchDims, Param};
use kayak_ir::ops::{FusedConv, InterpMode, Layout, Prelu};
use kayak_ir::{DType, Graph, Op, ValueId};

/// Device helper functions every module carries.
pub const HELPERS: &str = r#"
__device__ __forceinline__ float kayak_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }
"#;

/// A kernel argument before addresses are known.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A value of the graph (a weight, or a tensor on the device).
    Value(ValueId),
    /// An index table, held on the device with the weights.
    Table(Vec<i32>),
    /// A table of floats (interpolation weights), held with the weights.
    FTable(Vec<f32>),
    /// Scratch floats shared by the node's kernels, by id.
    ScratchOf(usize, usize),
    /// An `int`.
    I32(i32),
    /// A `float`.
    F32(f32),
}

/// One piece of a node's device work.
#[derive(Debug, Clone, PartialEq)]
pub enum DevOp {
    /// Nothing to run: the output aliases the input (a view).
    View,
    /// A kernel launch.
    Kernel {
        /// Its parameters.
        params: Vec<Param>,
        /// Its body.
        body: String,
        /// Grid and block.
        dims: LaunchDims,
        /// Its arguments.
        args: Vec<Operand>,
    },
    /// A GEMM; the addresses in `gemm` are byte offsets added to its operands'.
    Gemm {
        /// Shapes, strides, flags.
        gemm: kayak_gpu::Gemm,
        /// `A`.
        a: Operand,
        /// `B`.
        b: Operand,
        /// `C`.
        c: Operand,
    },
}

fn shape(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    g.values[v].ty.shape.to_known()
}

fn is_f32(g: &Graph, v: ValueId) -> bool {
    g.values[v].ty.dtype == DType::F32
}

fn kernel(params: Vec<Param>, body: String, n: usize, args: Vec<Operand>) -> DevOp {
    DevOp::Kernel {
        params,
        body,
        dims: LaunchDims::linear(n),
        args,
    }
}

/// The NCHW shapes of a convolution-like node's input, weight and output (each rank 4).
fn nchw_conv_shapes(g: &Graph, k: usize) -> Option<([usize; 4], [usize; 4], [usize; 4])> {
    let node = &g.nodes[k];
    let four = |v: ValueId| -> Option<[usize; 4]> { shape(g, v)?.try_into().ok() };
    Some((
        four(node.inputs[0])?,
        four(node.inputs[1])?,
        four(node.outputs[0])?,
    ))
}

/// The channel axis of a rank-`rank` tensor and the elements after it.
fn channel_axis(layout: Layout, shape: &[usize]) -> (usize, usize) {
    let ca = match layout {
        Layout::Nchw => 1.min(shape.len().saturating_sub(1)),
        Layout::Nhwc => shape.len().saturating_sub(1),
    };
    (ca, shape[ca + 1..].iter().product())
}

/// The device work of node `k` of `g` (whose types are concrete), or `None` if it has no
/// device lowering (it then runs on the host).
pub fn lower(g: &Graph, k: usize) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    // Every tensor the device touches is f32 with a known shape. Views and data movement
    // also take parameters as constant tensors (shapes, starts, sizes) the host reads.
    let params_on_host = node.op.is_view()
        || matches!(
            node.op,
            Op::Transpose(_) | Op::Slice(_) | Op::StridedSlice(_) | Op::Split(_) | Op::Interp(_)
        );
    let touched: Vec<ValueId> = if params_on_host {
        let rest = node.inputs[1..].iter().all(|&v| g.const_value(v).is_some());
        if !rest {
            return None;
        }
        node.inputs[..1]
            .iter()
            .chain(&node.outputs)
            .copied()
            .collect()
    } else {
        node.inputs.iter().chain(&node.outputs).copied().collect()
    };
    for v in touched {
        if !is_f32(g, v) || shape(g, v).is_none() {
            return None;
        }
    }
    let out = node.outputs[0];
    let n_out: usize = shape(g, out)?.iter().product();
    if n_out == 0 || n_out >= i32::MAX as usize {
        return None;
    }
    match &node.op {
        op if op.is_view() => {
            if g.const_value(node.inputs[0]).is_some() {
                // A view of a weight: copy it (the weight buffer is never aliased).
                return elementwise::copy(g, k, n_out);
            }
            Some(vec![DevOp::View])
        }
        Op::Unary(u) => elementwise::unary(g, k, u, n_out),
        Op::Binary(kayak_ir::ops::Binary { op, axis }) => {
            elementwise::binary(g, k, *op, *axis, None)
        }
        Op::FusedBinary(f) => elementwise::binary(g, k, f.op, f.axis, Some(&f.act)),
        Op::Conv2d(c) => conv::conv(
            g,
            k,
            &FusedConv {
                conv: c.clone(),
                residual: false,
                act: None,
                post: None,
            },
        ),
        Op::FusedConv(f) => conv::conv(g, k, f),
        Op::MatMul(m) => gemm::matmul(g, k, m, false, None),
        Op::FusedMatMul(f) if f.packed.is_none() => {
            gemm::matmul(g, k, &f.mm, f.has_bias, f.act.as_ref())
        }
        Op::Pool2d(p) => pool::pool(g, k, p),
        Op::Mul(m) => gemm::flat_product(g, k, m.x_num_col_dims, m.y_num_col_dims, false, false),
        Op::Fc(f) => gemm::flat_product(g, k, f.in_num_col_dims, 1, f.has_bias, f.relu),
        Op::Softmax(s) => norm::softmax(g, k, s.axis),
        Op::LayerNorm(l) => norm::layer_norm(g, k, l, false),
        Op::SkipLayerNorm(s) => norm::layer_norm(g, k, &s.ln, true),
        Op::SeBlock(s) => se::se_block(g, k, &s.act1, &s.act2),
        Op::Attention(a) => attention::attention(g, k, a),
        Op::Conv2dTranspose(c) => conv::conv_transpose(g, k, c),
        Op::BatchNorm(b) => norm::batch_norm(g, k, b),
        Op::Reduce(r) => pool::reduce(g, k, r),
        Op::Prelu(Prelu { mode, layout }) => elementwise::prelu(g, k, *mode, *layout),
        Op::Transpose(_)
        | Op::Slice(_)
        | Op::StridedSlice(_)
        | Op::Split(_)
        | Op::Concat(_)
        | Op::Stack(_) => data::gather(g, k),
        Op::Interp(i) if i.mode == InterpMode::Nearest => data::gather(g, k),
        Op::Interp(i) if i.mode == InterpMode::Bilinear => data::bilinear(g, k, i),
        _ => None,
    }
}
