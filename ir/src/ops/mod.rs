//! The op set: one enum, typed attributes, shape inference and reference semantics.
//!
//! Every op is defined once here. Importers map file-format ops onto it; the e-graph
//! language is derived from it; and [`Op::eval`] — naive, clear ndarray code — is the
//! oracle that kernels, rewrite rules and whole models are checked against.
//!
//! Inputs are positional. Where Paddle lets a tensor override an attribute (a shape
//! tensor for `reshape2`, start/end tensors for `slice`, ...), the attribute struct says how
//! many extra inputs follow the data inputs and what they mean.

mod binary;
mod conv;
mod create;
mod fused;
mod interp;
mod layout;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod select;
mod unary;

pub use binary::{paddle_broadcast, BinaryOp, CmpOp, LogicalOp};
pub use conv::{Conv, ConvTranspose, Padding};
pub use create::{FillConstant, Range};
pub use fused::{
    pack_weight, Attention, EmbeddingLayerNorm, FusedBinary, FusedConv, FusedMatMul, SeBlock,
    SkipLayerNorm, PACK_COLS,
};
pub use interp::{BilinearTap, Interp, InterpMode};
pub use layout::{Flatten, Reshape, Squeeze, Transpose, Unsqueeze};
pub use matmul::{Fc, MatMul, Mul};
pub use norm::{BatchNorm, LayerNorm};
pub use pool::{Pool, PoolKind};
pub use reduce::{ArgMax, Reduce, ReduceKind, Softmax};
pub use select::{Concat, Gather, Pad, PadMode, Slice, Split, Stack, StridedSlice};
pub use unary::{PreluMode, UnaryOp};

use crate::{DType, Error, Result, Tensor, TypeInfo};

/// Memory layout of image tensors.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Channels first.
    Nchw,
    /// Channels last.
    Nhwc,
}

/// Where a list-valued operand (a shape, starts, ends) comes from.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default,
)]
pub enum ListInput {
    /// From the attribute.
    #[default]
    Attr,
    /// From one 1-D integer tensor input.
    Tensor,
    /// From `n` scalar (shape [1] or []) integer tensor inputs.
    Scalars(usize),
}

impl ListInput {
    /// How many graph inputs this operand takes.
    pub fn count(self) -> usize {
        match self {
            ListInput::Attr => 0,
            ListInput::Tensor => 1,
            ListInput::Scalars(n) => n,
        }
    }
}

/// One op with its attributes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// 2-D convolution (also depthwise): inputs `x`, `w[, bias]`.
    Conv2d(Conv),
    /// 2-D transposed convolution: inputs `x`, `w[, bias]`.
    Conv2dTranspose(ConvTranspose),
    /// Max/avg pooling: input `x`.
    Pool2d(Pool),
    /// Batch normalization in inference mode: `x`, `scale`, `bias`, `mean`, `variance`.
    BatchNorm(BatchNorm),
    /// Layer normalization: `x[, scale][, bias]`.
    LayerNorm(LayerNorm),
    /// Elementwise arithmetic with Paddle's `axis` broadcast: `x`, `y`.
    Binary(BinaryOp, i64),
    /// Elementwise comparison (bool output) with Paddle's `axis` broadcast: `x`, `y`.
    Compare(CmpOp, i64),
    /// Elementwise logical op on bools: `x`, `y`.
    Logical(LogicalOp),
    /// Logical not: `x`.
    LogicalNot,
    /// Unary elementwise math and activations: `x`.
    Unary(UnaryOp),
    /// Parametric relu: `x`, `alpha`.
    Prelu(PreluMode, Layout),
    /// `cond ? x : y`: `cond`, `x`, `y`.
    Where,
    /// Matrix product with batch broadcast (matmul, matmul_v2): `x`, `y`.
    MatMul(MatMul),
    /// Paddle's `mul`: flatten both operands to 2-D, multiply: `x`, `y`.
    Mul(Mul),
    /// Fully connected: `x`, `w[, bias]`.
    Fc(Fc),
    /// Softmax along an axis: `x`.
    Softmax(Softmax),
    /// Reductions: `x`.
    Reduce(Reduce),
    /// Index of the maximum: `x`.
    ArgMax(ArgMax),
    /// Reshape: `x[, shape inputs]`.
    Reshape(Reshape),
    /// Axis permutation: `x`.
    Transpose(Transpose),
    /// Remove size-1 axes: `x`.
    Squeeze(Squeeze),
    /// Insert size-1 axes: `x`.
    Unsqueeze(Unsqueeze),
    /// Merge a range of axes: `x`.
    Flatten(Flatten),
    /// Concatenation: `x0, x1, ...`.
    Concat(Concat),
    /// Split into several outputs: `x`.
    Split(Split),
    /// Stack along a new axis: `x0, x1, ...`.
    Stack(Stack),
    /// Slice: `x[, starts inputs][, ends inputs]`.
    Slice(Slice),
    /// Strided slice: `x`.
    StridedSlice(StridedSlice),
    /// Gather rows along an axis: `x`, `index`.
    Gather(Gather),
    /// Embedding lookup (lookup_table_v2): `ids`, `table`.
    Embedding {
        /// Id whose output row is all zeros (none if `None`).
        padding_idx: Option<i64>,
    },
    /// Constant padding / reflect / replicate / circular padding (pad3d): `x`.
    Pad(Pad),
    /// Nearest / bilinear resize: `x[, size inputs]`.
    Interp(Interp),
    /// The shape of the input as a 1-D i32 tensor: `x`.
    Shape,
    /// A tensor filled with one value: `[shape inputs]`.
    FillConstant(FillConstant),
    /// A tensor like the input filled with one value: `x`.
    FillAnyLike {
        /// Fill value.
        value: f64,
        /// Output dtype (`None`: the input's).
        dtype: Option<DType>,
    },
    /// `[start, end)` with a step: `start`, `end`, `step` (scalar tensors).
    Range(Range),
    /// Dtype conversion: `x`.
    Cast(DType),
    /// The input, unchanged (assign, inference-mode dropout): `x`.
    Identity,
    /// Convolution with bias, residual, activation and affine epilogues (optimizer output).
    FusedConv(FusedConv),
    /// Matrix product with bias and activation (optimizer output).
    FusedMatMul(FusedMatMul),
    /// Squeeze-and-excitation block (optimizer output).
    SeBlock(SeBlock),
    /// Residual add + layer normalization (optimizer output).
    SkipLayerNorm(SkipLayerNorm),
    /// Multi-head attention on packed heads (optimizer output).
    Attention(Attention),
    /// Elementwise op followed by an activation (optimizer output).
    FusedBinary(FusedBinary),
    /// Summed embedding lookups + layer normalization (optimizer output).
    EmbeddingLayerNorm(EmbeddingLayerNorm),
}

/// An input to shape inference: the input's type and, when known, its value.
#[derive(Debug, Clone, Copy)]
pub struct InferInput<'a> {
    /// Static type.
    pub ty: &'a TypeInfo,
    /// Value, when it is a constant (a weight, or folded at plan time).
    pub value: Option<&'a Tensor>,
}

impl Op {
    /// The op's name in the IR (snake_case, stable: the e-graph language uses it).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::Conv2dTranspose(_) => "conv2d_transpose",
            Op::Pool2d(_) => "pool2d",
            Op::BatchNorm(_) => "batch_norm",
            Op::LayerNorm(_) => "layer_norm",
            Op::Binary(op, _) => op.name(),
            Op::Compare(op, _) => op.name(),
            Op::Logical(op) => op.name(),
            Op::LogicalNot => "logical_not",
            Op::Unary(op) => op.name(),
            Op::Prelu(..) => "prelu",
            Op::Where => "where",
            Op::MatMul(_) => "matmul",
            Op::Mul(_) => "mul",
            Op::Fc(_) => "fc",
            Op::Softmax(_) => "softmax",
            Op::Reduce(r) => r.kind.name(),
            Op::ArgMax(_) => "arg_max",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::Squeeze(_) => "squeeze",
            Op::Unsqueeze(_) => "unsqueeze",
            Op::Flatten(_) => "flatten",
            Op::Concat(_) => "concat",
            Op::Split(_) => "split",
            Op::Stack(_) => "stack",
            Op::Slice(_) => "slice",
            Op::StridedSlice(_) => "strided_slice",
            Op::Gather(_) => "gather",
            Op::Embedding { .. } => "embedding",
            Op::Pad(_) => "pad",
            Op::Interp(i) => i.mode.name(),
            Op::Shape => "shape",
            Op::FillConstant(_) => "fill_constant",
            Op::FillAnyLike { .. } => "fill_any_like",
            Op::Range(_) => "range",
            Op::Cast(_) => "cast",
            Op::Identity => "identity",
            Op::FusedConv(_) => "fused_conv",
            Op::FusedMatMul(_) => "fused_matmul",
            Op::SeBlock(_) => "se_block",
            Op::SkipLayerNorm(_) => "skip_layer_norm",
            Op::Attention(_) => "attention",
            Op::FusedBinary(_) => "fused_binary",
            Op::EmbeddingLayerNorm(_) => "embedding_layer_norm",
        }
    }

    /// The number of outputs this op produces.
    pub fn num_outputs(&self) -> usize {
        match self {
            Op::Split(s) => s.num_outputs(),
            _ => 1,
        }
    }

    /// True if the op only rearranges or relabels data (its output could alias its input).
    pub fn is_view(&self) -> bool {
        matches!(
            self,
            Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) | Op::Flatten(_) | Op::Identity
        )
    }

    /// Infers output types. Works on symbolic shapes; inputs with known values (shape
    /// tensors, axes) make the result precise.
    pub fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        let n = self.name();
        match self {
            Op::Conv2d(c) => conv::infer_conv(c, inputs),
            Op::Conv2dTranspose(c) => conv::infer_conv_transpose(c, inputs),
            Op::Pool2d(p) => pool::infer(p, inputs),
            Op::BatchNorm(b) => norm::infer_batch_norm(b, inputs),
            Op::LayerNorm(l) => norm::infer_layer_norm(l, inputs),
            Op::Binary(_, axis) => binary::infer_binary(n, *axis, inputs, None),
            Op::Compare(_, axis) => binary::infer_binary(n, *axis, inputs, Some(DType::Bool)),
            Op::Logical(_) => binary::infer_binary(n, -1, inputs, Some(DType::Bool)),
            Op::LogicalNot => {
                arity(n, inputs, 1)?;
                Ok(vec![TypeInfo {
                    dtype: DType::Bool,
                    shape: inputs[0].ty.shape.clone(),
                }])
            }
            Op::Unary(u) => unary::infer(u, inputs),
            Op::Prelu(..) => {
                arity(n, inputs, 2)?;
                Ok(vec![inputs[0].ty.clone()])
            }
            Op::Where => binary::infer_where(inputs),
            Op::MatMul(m) => matmul::infer_matmul(m, inputs),
            Op::Mul(m) => matmul::infer_mul(m, inputs),
            Op::Fc(f) => matmul::infer_fc(f, inputs),
            Op::Softmax(s) => reduce::infer_softmax(s, inputs),
            Op::Reduce(r) => reduce::infer_reduce(r, inputs),
            Op::ArgMax(a) => reduce::infer_arg_max(a, inputs),
            Op::Reshape(r) => layout::infer_reshape(r, inputs),
            Op::Transpose(t) => layout::infer_transpose(t, inputs),
            Op::Squeeze(s) => layout::infer_squeeze(s, inputs),
            Op::Unsqueeze(u) => layout::infer_unsqueeze(u, inputs),
            Op::Flatten(f) => layout::infer_flatten(f, inputs),
            Op::Concat(c) => select::infer_concat(c, inputs),
            Op::Split(s) => select::infer_split(s, inputs),
            Op::Stack(s) => select::infer_stack(s, inputs),
            Op::Slice(s) => select::infer_slice(s, inputs),
            Op::StridedSlice(s) => select::infer_strided_slice(s, inputs),
            Op::Gather(g) => select::infer_gather(g, inputs),
            Op::Embedding { .. } => select::infer_embedding(inputs),
            Op::Pad(p) => select::infer_pad(p, inputs),
            Op::Interp(i) => interp::infer(i, inputs),
            Op::Shape => create::infer_shape(inputs),
            Op::FillConstant(f) => create::infer_fill_constant(f, inputs),
            Op::FillAnyLike { dtype, .. } => {
                arity(n, inputs, 1)?;
                Ok(vec![TypeInfo {
                    dtype: dtype.unwrap_or(inputs[0].ty.dtype),
                    shape: inputs[0].ty.shape.clone(),
                }])
            }
            Op::Range(r) => create::infer_range(r, inputs),
            Op::Cast(to) => {
                arity(n, inputs, 1)?;
                Ok(vec![TypeInfo {
                    dtype: *to,
                    shape: inputs[0].ty.shape.clone(),
                }])
            }
            Op::Identity => {
                arity(n, inputs, 1)?;
                Ok(vec![inputs[0].ty.clone()])
            }
            Op::FusedConv(f) => fused::infer_fused_conv(f, inputs),
            Op::FusedMatMul(f) => fused::infer_fused_matmul(f, inputs),
            Op::SeBlock(s) => fused::infer_se_block(s, inputs),
            Op::SkipLayerNorm(s) => fused::infer_skip_layer_norm(s, inputs),
            Op::Attention(a) => fused::infer_attention(a, inputs),
            Op::FusedBinary(f) => fused::infer_fused_binary(f, inputs),
            Op::EmbeddingLayerNorm(e) => fused::infer_embedding_layer_norm(e, inputs),
        }
    }

    /// Evaluates the op with its reference semantics.
    pub fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let n = self.name();
        let one = |t: Tensor| Ok(vec![t]);
        match self {
            Op::Conv2d(c) => one(conv::eval_conv(c, inputs)?),
            Op::Conv2dTranspose(c) => one(conv::eval_conv_transpose(c, inputs)?),
            Op::Pool2d(p) => one(pool::eval(p, inputs)?),
            Op::BatchNorm(b) => one(norm::eval_batch_norm(b, inputs)?),
            Op::LayerNorm(l) => one(norm::eval_layer_norm(l, inputs)?),
            Op::Binary(op, axis) => one(binary::eval_binary(*op, *axis, inputs)?),
            Op::Compare(op, axis) => one(binary::eval_compare(*op, *axis, inputs)?),
            Op::Logical(op) => one(binary::eval_logical(*op, inputs)?),
            Op::LogicalNot => {
                arity_t(n, inputs, 1)?;
                let a = binary::as_bool(n, inputs[0], 0)?;
                one(Tensor::Bool(a.mapv(|v| !v)))
            }
            Op::Unary(u) => one(unary::eval(u, inputs)?),
            Op::Prelu(mode, layout) => one(unary::eval_prelu(*mode, *layout, inputs)?),
            Op::Where => one(binary::eval_where(inputs)?),
            Op::MatMul(m) => one(matmul::eval_matmul(m, inputs)?),
            Op::Mul(m) => one(matmul::eval_mul(m, inputs)?),
            Op::Fc(f) => one(matmul::eval_fc(f, inputs)?),
            Op::Softmax(s) => one(reduce::eval_softmax(s, inputs)?),
            Op::Reduce(r) => one(reduce::eval_reduce(r, inputs)?),
            Op::ArgMax(a) => one(reduce::eval_arg_max(a, inputs)?),
            Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) | Op::Flatten(_) | Op::Identity => {
                // View ops: the output holds the input's elements in the same order.
                let ins = self.infer_concrete(inputs)?;
                let dims = ins[0].shape.to_known().ok_or_else(|| {
                    crate::error::shape_err(n, "output shape not known at run time")
                })?;
                one(inputs[0].reshape(&dims)?)
            }
            Op::Transpose(t) => one(layout::eval_transpose(t, inputs)?),
            Op::Concat(c) => one(select::eval_concat(c, inputs)?),
            Op::Split(s) => select::eval_split(s, inputs),
            Op::Stack(s) => one(select::eval_stack(s, inputs)?),
            Op::Slice(s) => one(select::eval_slice(s, inputs)?),
            Op::StridedSlice(s) => one(select::eval_strided_slice(s, inputs)?),
            Op::Gather(g) => one(select::eval_gather(g, inputs)?),
            Op::Embedding { padding_idx } => one(select::eval_embedding(*padding_idx, inputs)?),
            Op::Pad(p) => one(select::eval_pad(p, inputs)?),
            Op::Interp(i) => one(interp::eval(i, inputs)?),
            Op::Shape => {
                arity_t(n, inputs, 1)?;
                let s: Vec<i32> = inputs[0].shape().iter().map(|&d| d as i32).collect();
                one(Tensor::from_i32s(&s))
            }
            Op::FillConstant(f) => one(create::eval_fill_constant(f, inputs)?),
            Op::FillAnyLike { value, dtype } => {
                arity_t(n, inputs, 1)?;
                let dt = dtype.unwrap_or(inputs[0].dtype());
                one(Tensor::full(dt, inputs[0].shape(), *value))
            }
            Op::Range(r) => one(create::eval_range(r, inputs)?),
            Op::Cast(to) => {
                arity_t(n, inputs, 1)?;
                one(inputs[0].cast(*to))
            }
            Op::FusedConv(f) => one(fused::eval_fused_conv(f, inputs)?),
            Op::FusedMatMul(f) => one(fused::eval_fused_matmul(f, inputs)?),
            Op::SeBlock(s) => one(fused::eval_se_block(s, inputs)?),
            Op::SkipLayerNorm(s) => one(fused::eval_skip_layer_norm(s, inputs)?),
            Op::Attention(a) => one(fused::eval_attention(a, inputs)?),
            Op::FusedBinary(f) => one(fused::eval_fused_binary(f, inputs)?),
            Op::EmbeddingLayerNorm(e) => one(fused::eval_embedding_layer_norm(e, inputs)?),
        }
    }

    /// The outputs, when the inputs' types and known values alone decide them: `shape` of a
    /// tensor of known shape, or any op whose inputs are all known values. `None` when the
    /// op must run at run time. The one folding rule shared by plan-time specialization and
    /// the optimizer's analysis (each applies its own size limit).
    pub fn fold(&self, inputs: &[InferInput<'_>]) -> Option<Result<Vec<Tensor>>> {
        if let Op::Shape = self {
            let dims = inputs.first()?.ty.shape.to_known()?;
            return Some(Ok(vec![Tensor::from_i32s(
                &dims.iter().map(|&d| d as i32).collect::<Vec<_>>(),
            )]));
        }
        if inputs.is_empty() && !matches!(self, Op::FillConstant(_)) {
            return None;
        }
        let args: Option<Vec<&Tensor>> = inputs.iter().map(|i| i.value).collect();
        Some(self.eval(&args?))
    }

    /// Infers output types from concrete input tensors (their values known).
    pub fn infer_concrete(&self, inputs: &[&Tensor]) -> Result<Vec<TypeInfo>> {
        let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
        let ins: Vec<InferInput<'_>> = tys
            .iter()
            .zip(inputs)
            .map(|(ty, t)| InferInput {
                ty,
                value: Some(*t),
            })
            .collect();
        self.infer(&ins)
    }
}

pub(crate) fn arity(op: &'static str, inputs: &[InferInput<'_>], n: usize) -> Result<()> {
    if inputs.len() != n {
        return Err(Error::Arity {
            op,
            expected: n.to_string(),
            got: inputs.len(),
        });
    }
    Ok(())
}

pub(crate) fn arity_t(op: &'static str, inputs: &[&Tensor], n: usize) -> Result<()> {
    if inputs.len() != n {
        return Err(Error::Arity {
            op,
            expected: n.to_string(),
            got: inputs.len(),
        });
    }
    Ok(())
}

/// Reads an f32-computable tensor: f32 as is, f16/bf16 widened. Other dtypes are an error.
pub(crate) fn float_in<'a>(
    op: &'static str,
    t: &'a Tensor,
    input: usize,
) -> Result<std::borrow::Cow<'a, ndarray::ArrayD<f32>>> {
    use std::borrow::Cow;
    match t {
        Tensor::F32(a) => Ok(Cow::Borrowed(a)),
        Tensor::F16(a) => Ok(Cow::Owned(a.mapv(|v| v.to_f32()))),
        Tensor::BF16(a) => Ok(Cow::Owned(a.mapv(|v| v.to_f32()))),
        other => Err(Error::DType {
            op,
            input,
            dtype: other.dtype(),
        }),
    }
}

/// Wraps an f32 result back into the dtype of the op's main input.
pub(crate) fn float_out(a: ndarray::ArrayD<f32>, like: DType) -> Tensor {
    match like {
        DType::F16 => Tensor::F16(a.mapv(half::f16::from_f32)),
        DType::BF16 => Tensor::BF16(a.mapv(half::bf16::from_f32)),
        _ => Tensor::F32(a),
    }
}

/// Checks that an input is of a float dtype the heavy ops compute (f32, f16, bf16).
pub(crate) fn check_float(op: &'static str, ty: &TypeInfo, input: usize) -> Result<()> {
    match ty.dtype {
        DType::F32 | DType::F16 | DType::BF16 => Ok(()),
        dtype => Err(Error::DType { op, input, dtype }),
    }
}

/// A list operand read from graph inputs (or not).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListVal {
    /// The attribute applies.
    Attr,
    /// Values read from constant inputs.
    Known(Vec<i64>),
    /// The inputs are not constants; the list length, if it can be told.
    Unknown(Option<usize>),
}

/// Reads the integers of a list operand that comes from graph inputs.
pub(crate) fn list_from_inputs(
    op: &'static str,
    src: ListInput,
    first: usize,
    inputs: &[InferInput<'_>],
) -> Result<ListVal> {
    let get = |i: usize| {
        inputs.get(i).ok_or_else(|| Error::Arity {
            op,
            expected: format!("at least {}", i + 1),
            got: inputs.len(),
        })
    };
    match src {
        ListInput::Attr => Ok(ListVal::Attr),
        ListInput::Tensor => {
            let inp = get(first)?;
            match inp.value {
                Some(v) => Ok(ListVal::Known(v.to_i64_vec())),
                None => Ok(ListVal::Unknown(
                    inp.ty.shape.dims().first().and_then(|d| d.known()),
                )),
            }
        }
        ListInput::Scalars(n) => {
            let mut out = Vec::with_capacity(n);
            for i in first..first + n {
                match get(i)?.value {
                    Some(v) if v.len() == 1 => out.push(v.to_i64_vec()[0]),
                    Some(v) => {
                        return Err(crate::error::shape_err(
                            op,
                            format!("input {i} must hold one element, has shape {:?}", v.shape()),
                        ))
                    }
                    None => return Ok(ListVal::Unknown(Some(n))),
                }
            }
            Ok(ListVal::Known(out))
        }
    }
}

/// Views a list of tensors as inference inputs with values.
pub fn concrete_inputs<'a>(tys: &'a [TypeInfo], ts: &[&'a Tensor]) -> Vec<InferInput<'a>> {
    tys.iter()
        .zip(ts)
        .map(|(ty, t)| InferInput {
            ty,
            value: Some(*t),
        })
        .collect()
}
