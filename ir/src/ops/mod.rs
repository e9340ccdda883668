//! The op set: one table, typed attributes, shape inference and reference semantics.
//!
//! Every op is defined once, in the table of [`define_ops!`] below and the file of its
//! family: its attribute type implements [`OpDef`] — the kinds (IR names) it covers, type
//! and shape inference, reference semantics (naive, clear ndarray code: the oracle that
//! kernels, rewrite rules and whole models are checked against), and the sampler that the
//! property tests draw random instances with. Everything else is derived from the table:
//! the [`Op`] enum, its dispatch, the list of kinds the e-graph language parses
//! ([`Op::kinds`]), the attribute-free kinds ([`Op::param_free`]), and the samplers
//! ([`Op::sample`]). Importers map a format's op names onto it; each backend binds its
//! kernels to it in one place of its own.
//!
//! Inputs are positional. Where Paddle lets a tensor override an attribute (a shape
//! tensor for `reshape2`, start/end tensors for `slice`, ...), the attribute struct says how
//! many extra inputs follow the data inputs and what they mean.

mod binary;
mod conv;
mod create;
mod fused;
mod grid;
mod index;
mod interp;
mod layout;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod scatter;
mod select;
mod topk;
mod unary;

pub use binary::{
    paddle_broadcast, Binary, BinaryOp, CmpOp, Compare, LogicalNot, LogicalOp, Where,
};
pub use conv::{Conv, ConvTranspose, Padding};
pub use create::{FillAnyLike, FillConstant, Range, ShapeOf};
pub use fused::{
    pack_weight, Attention, EmbeddingLayerNorm, FusedBinary, FusedConv, FusedMatMul, Packed,
    SeBlock, SkipLayerNorm,
};
pub use grid::{GridMode, GridPadding, GridSample};
pub use index::GatherElements;
pub use interp::{BilinearTap, CoordTransform, Interp, InterpMode, NearestRound, OnnxCoords};
pub use layout::{Flatten, Identity, Reshape, Squeeze, Transpose, Unsqueeze};
pub use matmul::{Fc, MatMul, Mul};
pub use norm::{BatchNorm, LayerNorm};
pub use pool::{Pool, PoolKind};
pub use reduce::{ArgMax, Cumsum, Reduce, ReduceKind, Softmax};
pub use scatter::{GatherNd, ScatterElements, ScatterNd, ScatterReduce};
pub use select::{Concat, Embedding, Gather, Pad, PadMode, Slice, Split, Stack, StridedSlice};
pub use topk::TopK;
pub use unary::{sample_activation, Cast, Prelu, PreluMode, UnaryOp};

use crate::sample::Sampler;
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

/// What every op family defines, once: Kayak derives the rest from it.
///
/// A family is one attribute type: a single op (`Conv` for `conv2d`) or several that share
/// attributes and semantics (`UnaryOp` for `relu`, `sigmoid`, ...; `Binary` for `add`,
/// `sub`, ...). Its line in the [`define_ops!`] table makes it a variant of [`Op`].
pub trait OpDef: Clone + std::fmt::Debug + PartialEq + Into<Op> + Member {
    /// The kinds this family covers: the IR op names the e-graph language and rule files
    /// spell (unique across the op set).
    const KINDS: &'static [&'static str];

    /// This op's kind (one of [`OpDef::KINDS`]): the only one, for a family of one kind;
    /// a family of several kinds overrides it (`ir/tests/op_table.rs` checks the kind of
    /// every op it draws from a sampler or builds attribute-free).
    fn kind(&self) -> &'static str {
        Self::KINDS[0]
    }

    /// The op of `kind` when that kind has no attributes (its e-graph nodes carry no
    /// attribute leaf: `relu`, `shape`, ...); `None` for kinds with attributes.
    fn param_free(_kind: &str) -> Option<Self> {
        None
    }

    /// How many outputs the op produces.
    fn num_outputs(&self) -> usize {
        1
    }

    /// True if the op only relabels its input's elements, in order (its output may alias
    /// the input's memory).
    fn is_view(&self) -> bool {
        false
    }

    /// Output types from input types. Works on symbolic shapes; inputs with known values
    /// (shape tensors, axes) make the result precise.
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>>;

    /// The reference semantics: the outputs for concrete inputs.
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>>;

    /// A random well-typed instance of `kind` for the property tests (see
    /// [`crate::sample`]); `None` if the draw does not fit the inputs given, or the family
    /// has no sampler (its ops are then verified only inside model-like random graphs).
    fn sample(_kind: &str, _s: &mut Sampler<'_>) -> Option<Self> {
        None
    }
}

/// A family's attributes as one variant of [`Op`] (implemented by [`define_ops!`]).
pub trait Member: Sized {
    /// The attributes, if `op` is of this family.
    fn of(op: &Op) -> Option<&Self>;
}

/// The op set: one line per family, `Variant(AttributeType)`, the attribute type
/// implementing [`OpDef`]. Generates [`Op`] and everything dispatched over it.
macro_rules! define_ops {
    ($( $(#[doc = $doc:expr])* $variant:ident($ty:ty), )*) => {
        /// One op with its attributes.
        #[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Op {
            $( $(#[doc = $doc])* $variant($ty), )*
        }

        $(
            impl From<$ty> for Op {
                fn from(x: $ty) -> Op {
                    Op::$variant(x)
                }
            }
            impl Member for $ty {
                fn of(op: &Op) -> Option<&$ty> {
                    match op {
                        Op::$variant(x) => Some(x),
                        _ => None,
                    }
                }
            }
        )*

        impl Op {
            /// The op's kind: its name in the IR (snake_case, stable: the e-graph language
            /// and rule files use it).
            pub fn name(&self) -> &'static str {
                match self { $( Op::$variant(x) => x.kind(), )* }
            }

            /// The number of outputs this op produces.
            pub fn num_outputs(&self) -> usize {
                match self { $( Op::$variant(x) => x.num_outputs(), )* }
            }

            /// True if the op only rearranges or relabels data (its output could alias its
            /// input).
            pub fn is_view(&self) -> bool {
                match self { $( Op::$variant(x) => x.is_view(), )* }
            }

            /// Infers output types. Works on symbolic shapes; inputs with known values
            /// (shape tensors, axes) make the result precise.
            pub fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
                match self { $( Op::$variant(x) => x.infer(inputs), )* }
            }

            /// Evaluates the op with its reference semantics.
            pub fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
                match self { $( Op::$variant(x) => x.eval(inputs), )* }
            }

            /// Every kind of the op set, family by family in table order.
            pub fn kinds() -> &'static [&'static str] {
                static KINDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
                KINDS.get_or_init(|| {
                    let mut k = Vec::new();
                    $( k.extend_from_slice(<$ty as OpDef>::KINDS); )*
                    k
                })
            }

            /// The op of an attribute-free kind ([`OpDef::param_free`]); `None` for kinds
            /// with attributes and for names that are no kind.
            pub fn param_free(kind: &str) -> Option<Op> {
                $(
                    if let Some(x) = <$ty as OpDef>::param_free(kind) {
                        return Some(Op::$variant(x));
                    }
                )*
                None
            }

            /// A random instance of `kind` from its family's sampler ([`OpDef::sample`]).
            pub fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Op> {
                $(
                    if <$ty as OpDef>::KINDS.contains(&kind) {
                        return <$ty as OpDef>::sample(kind, s).map(Op::$variant);
                    }
                )*
                None
            }
        }
    };
}

define_ops! {
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
    Binary(Binary),
    /// Elementwise comparison (bool output) with Paddle's `axis` broadcast: `x`, `y`.
    Compare(Compare),
    /// Elementwise logical op on bools: `x`, `y`.
    Logical(LogicalOp),
    /// Logical not: `x`.
    LogicalNot(LogicalNot),
    /// Unary elementwise math and activations: `x`.
    Unary(UnaryOp),
    /// Parametric relu: `x`, `alpha`.
    Prelu(Prelu),
    /// `cond ? x : y`: `cond`, `x`, `y`.
    Where(Where),
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
    /// Cumulative sum along an axis: `x`.
    Cumsum(Cumsum),
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
    Embedding(Embedding),
    /// Per-element gather along an axis (take_along_axis): `x`, `index`.
    GatherElements(GatherElements),
    /// Per-element scatter along an axis (put_along_axis): `data`, `indices`, `updates`.
    ScatterElements(ScatterElements),
    /// Slice scatter: `data`, `indices [.., m]`, `updates`.
    ScatterNd(ScatterNd),
    /// Slice gather: `data`, `indices [.., m]`.
    GatherNd(GatherNd),
    /// The `k` largest or smallest along an axis: `x` → values, indices.
    TopK(TopK),
    /// Sampling at grid coordinates: `x`, `grid`.
    GridSample(GridSample),
    /// Constant padding / reflect / replicate / circular padding (pad3d): `x`.
    Pad(Pad),
    /// Nearest / bilinear resize: `x[, size inputs]`.
    Interp(Interp),
    /// The shape of the input as a 1-D i32 tensor: `x`.
    Shape(ShapeOf),
    /// A tensor filled with one value: `[shape inputs]`.
    FillConstant(FillConstant),
    /// A tensor like the input filled with one value: `x`.
    FillAnyLike(FillAnyLike),
    /// `[start, end)` with a step: `start`, `end`, `step` (scalar tensors).
    Range(Range),
    /// Dtype conversion: `x`.
    Cast(Cast),
    /// The input, unchanged (assign, inference-mode dropout): `x`.
    Identity(Identity),
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
    /// The outputs, when the inputs' types and known values alone decide them: `shape` of a
    /// tensor of known shape, or any op whose inputs are all known values. `None` when the
    /// op must run at run time. The one folding rule shared by plan-time specialization and
    /// the optimizer's analysis (each applies its own size limit).
    pub fn fold(&self, inputs: &[InferInput<'_>]) -> Option<Result<Vec<Tensor>>> {
        if let Op::Shape(s) = self {
            let dims = inputs.first()?.ty.shape.to_known()?;
            return Some(Ok(vec![s.tensor(&dims)]));
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

/// The reference semantics of a view op (reshape, squeeze, ...): the input's elements, in
/// order, in the inferred output shape.
pub(crate) fn eval_view(op: &Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let ins = op.infer_concrete(inputs)?;
    let dims = ins[0]
        .shape
        .to_known()
        .ok_or_else(|| crate::error::shape_err(op.name(), "output shape not known at run time"))?;
    Ok(vec![inputs[0].reshape(&dims)?])
}

/// One output.
pub(crate) fn one(t: Tensor) -> Result<Vec<Tensor>> {
    Ok(vec![t])
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
