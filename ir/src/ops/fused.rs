//! Fused ops: what the optimizer's rules produce. Each one's reference semantics is written
//! here from its definition, independently of the rules, so verifying a rule means
//! comparing two independent computations.

use super::{arity, conv, float_in, float_out, norm, one, InferInput, Op, OpDef, UnaryOp};
use super::{Conv, LayerNorm, MatMul};
use crate::error::shape_err;
use crate::sample::{Leaf, Sampler};
use crate::{Result, Tensor, TypeInfo};
use ndarray::{ArrayD, Axis, IxDyn, Zip};

/// `post_scale * act(conv(x, w) + bias + residual) + post_shift`, each part optional.
///
/// Inputs: `x`, `w`, then `bias` (if `conv.has_bias`), then `residual` (if `residual`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct FusedConv {
    /// The convolution (its `has_bias` says whether a bias input follows `w`).
    pub conv: Conv,
    /// A residual input, added before the activation.
    pub residual: bool,
    /// Activation applied after bias and residual.
    pub act: Option<UnaryOp>,
    /// `(scale, shift)` applied last: `y = scale * y + shift`.
    pub post: Option<(f32, f32)>,
}

/// `act(alpha * op(x) @ op(y) + bias)`; the bias broadcasts over the last axis.
///
/// Inputs: `x`, `y`, then `bias` (if `has_bias`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct FusedMatMul {
    /// The product.
    pub mm: MatMul,
    /// A bias input follows `y`.
    pub has_bias: bool,
    /// Activation applied last.
    pub act: Option<UnaryOp>,
    /// `Some`: `y` is a constant weight stored packed for a backend's GEMM ([`Packed`],
    /// [`pack_weight`]), with `mm.trans_y` false (a transpose is applied when packing).
    /// Set by a backend's load-time lowering, never by rules.
    #[serde(default)]
    pub packed: Option<Packed>,
}

/// How a packed weight ([`FusedMatMul::packed`]) holds a `k × n` matrix: in strips of
/// `cols` columns, shape `[⌈n/cols⌉, k, cols]`, strip `s` holding columns
/// `cols·s..cols·(s+1)` (zeros past `n`). The strip width is the backend's (the CPU
/// GEMM's, `kayak_kernels::gemm::PACK_COLS`): the IR only describes the layout.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packed {
    /// Columns of the matrix.
    pub n: usize,
    /// Columns per strip.
    pub cols: usize,
}

/// `w` (`[k, n]`, or `[n, k]` with `trans`) packed in strips of `cols` columns, as
/// [`Packed`] says.
///
/// # Errors
/// If `w` is not a rank-2 float tensor, or `cols` is 0.
pub fn pack_weight(w: &Tensor, trans: bool, cols: usize) -> Result<Tensor> {
    if cols == 0 {
        return Err(shape_err("pack_weight", "strips of 0 columns"));
    }
    let a = float_in("pack_weight", w, 0)?;
    if a.ndim() != 2 {
        return Err(shape_err(
            "pack_weight",
            format!("weight must be rank 2, got {:?}", a.shape()),
        ));
    }
    let (k, n) = if trans {
        (a.shape()[1], a.shape()[0])
    } else {
        (a.shape()[0], a.shape()[1])
    };
    let strips = n.div_ceil(cols);
    let mut out = vec![0f32; strips * k * cols];
    for (i, v) in out.iter_mut().enumerate() {
        let (s, p, c) = (i / (k * cols), i / cols % k, i % cols);
        let j = s * cols + c;
        if j < n {
            *v = if trans { a[[j, p]] } else { a[[p, j]] };
        }
    }
    Tensor::from_f32s(&[strips, k, cols], out)
}

/// The `[k, n]` weight a packed one ([`pack_weight`]) holds.
fn unpack_weight(p: &ArrayD<f32>, pk: Packed) -> Result<ArrayD<f32>> {
    let (d, Packed { n, cols }) = (p.shape(), pk);
    if cols == 0 || d.len() != 3 || d[2] != cols || d[0] != n.div_ceil(cols) {
        return Err(shape_err(
            "fused_matmul",
            format!("packed weight {d:?} does not hold {n} columns in strips of {cols}"),
        ));
    }
    let k = d[1];
    Ok(ArrayD::from_shape_fn(IxDyn(&[k, n]), |ix| {
        p[[ix[1] / cols, ix[0], ix[1] % cols]]
    }))
}

/// Squeeze-and-excitation: `x * act2(w2 · act1(w1 · mean_hw(x) + b1) + b2)` per channel.
///
/// Inputs: `x` `[N, C, H, W]`, `w1` `[C1, C, 1, 1]`, `b1` `[C1]`, `w2` `[C, C1, 1, 1]`, `b2` `[C]`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct SeBlock {
    /// Activation after the squeeze projection.
    pub act1: UnaryOp,
    /// Gate activation after the excitation projection.
    pub act2: UnaryOp,
}

/// `layer_norm(a + b)`: a residual add fused into the normalization.
///
/// Inputs: `a`, `b` (same shape), then scale and bias as [`LayerNorm`] says.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct SkipLayerNorm {
    /// The normalization.
    pub ln: LayerNorm,
}

fn conv_inputs<'a>(
    f: &FusedConv,
    inputs: &'a [InferInput<'a>],
) -> Result<(&'a [InferInput<'a>], Option<&'a InferInput<'a>>)> {
    let n = 2 + f.conv.has_bias as usize;
    arity("fused_conv", inputs, n + f.residual as usize)?;
    Ok((&inputs[..n], f.residual.then(|| &inputs[n])))
}

impl OpDef for FusedConv {
    const KINDS: &'static [&'static str] = &["fused_conv"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_fused_conv(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_fused_conv(self, inputs)?)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<FusedConv> {
        match conv::sample_conv(kind, s)? {
            Op::FusedConv(f) => Some(f),
            _ => None,
        }
    }
}

fn infer_fused_conv(f: &FusedConv, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    let (base, res) = conv_inputs(f, inputs)?;
    let out = conv::infer_conv(&f.conv, base)?;
    if let Some(r) = res {
        if r.ty.dtype != out[0].dtype
            || r.ty.shape.rank() != out[0].shape.rank()
            || r.ty
                .shape
                .dims()
                .iter()
                .zip(out[0].shape.dims())
                .any(|(a, b)| a.unify(b).is_none())
        {
            return Err(shape_err(
                "fused_conv",
                format!("residual {} does not match the output {}", r.ty, out[0]),
            ));
        }
    }
    Ok(out)
}

fn eval_fused_conv(f: &FusedConv, inputs: &[&Tensor]) -> Result<Tensor> {
    let n = 2 + f.conv.has_bias as usize;
    if inputs.len() != n + f.residual as usize {
        return Err(crate::Error::Arity {
            op: "fused_conv",
            expected: (n + f.residual as usize).to_string(),
            got: inputs.len(),
        });
    }
    let y = conv::eval_conv(&f.conv, &inputs[..n])?;
    let mut y = float_in("fused_conv", &y, 0)?.into_owned();
    if f.residual {
        let r = float_in("fused_conv", inputs[n], n)?;
        if r.shape() != y.shape() {
            return Err(shape_err(
                "fused_conv",
                format!("residual {:?} vs output {:?}", r.shape(), y.shape()),
            ));
        }
        Zip::from(&mut y).and(&*r).for_each(|a, &b| *a += b);
    }
    epilogue(&mut y, f.act, f.post);
    Ok(float_out(y, inputs[0].dtype()))
}

/// Activation then affine, elementwise.
fn epilogue(y: &mut ArrayD<f32>, act: Option<UnaryOp>, post: Option<(f32, f32)>) {
    if let Some(a) = act {
        y.mapv_inplace(|v| a.apply(v as f64) as f32);
    }
    if let Some((s, t)) = post {
        y.mapv_inplace(|v| (s as f64 * v as f64 + t as f64) as f32);
    }
}

impl OpDef for FusedMatMul {
    const KINDS: &'static [&'static str] = &["fused_matmul"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_fused_matmul(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_fused_matmul(self, inputs)?)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<FusedMatMul> {
        match super::matmul::sample_matmul(kind, s)? {
            Op::FusedMatMul(f) => Some(f),
            _ => None,
        }
    }
}

fn infer_fused_matmul(f: &FusedMatMul, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("fused_matmul", inputs, 2 + f.has_bias as usize)?;
    let logical;
    let out = match f.packed {
        None => super::matmul::infer_matmul(&f.mm, &inputs[..2])?,
        Some(Packed { n, cols }) => {
            let d = inputs[1].ty.shape.dims();
            let ok = !f.mm.trans_y
                && cols > 0
                && d.len() == 3
                && d[0].known() == Some(n.div_ceil(cols))
                && d[2].known() == Some(cols);
            if !ok {
                return Err(shape_err(
                    "fused_matmul",
                    format!(
                        "packed weight {} does not hold {n} columns in strips of {cols}",
                        inputs[1].ty.shape
                    ),
                ));
            }
            logical = TypeInfo {
                dtype: inputs[1].ty.dtype,
                shape: crate::Shape(vec![d[1].clone(), crate::Dim::Known(n)]),
            };
            let y = InferInput {
                ty: &logical,
                value: None,
            };
            super::matmul::infer_matmul(&f.mm, &[inputs[0], y])?
        }
    };
    if f.has_bias {
        let b = inputs[2].ty;
        let last = out[0].shape.dims().last().cloned();
        let ok = b.shape.rank() == 1 && last.is_some_and(|l| l.unify(&b.shape.dims()[0]).is_some());
        if !ok {
            return Err(shape_err(
                "fused_matmul",
                format!(
                    "bias {} does not match the output {}",
                    b.shape, out[0].shape
                ),
            ));
        }
    }
    Ok(out)
}

fn eval_fused_matmul(f: &FusedMatMul, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    infer_fused_matmul(f, &super::concrete_inputs(&tys, inputs))?;
    let x = float_in("fused_matmul", inputs[0], 0)?;
    let mut w = float_in("fused_matmul", inputs[1], 1)?;
    if let Some(pk) = f.packed {
        w = std::borrow::Cow::Owned(unpack_weight(&w, pk)?);
    }
    let mut y = super::matmul::batched_matmul(&x, &w, f.mm.trans_x, f.mm.trans_y, f.mm.alpha)?;
    if f.has_bias {
        let b = float_in("fused_matmul", inputs[2], 2)?;
        let b: Vec<f32> = b.iter().copied().collect();
        for mut lane in y.lanes_mut(Axis(y.ndim() - 1)) {
            lane.iter_mut().zip(&b).for_each(|(v, bv)| *v += bv);
        }
    }
    epilogue(&mut y, f.act, None);
    Ok(float_out(y, inputs[0].dtype()))
}

impl OpDef for SeBlock {
    const KINDS: &'static [&'static str] = &["se_block"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_se_block(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_se_block(self, inputs)?)
    }
}

fn infer_se_block(_: &SeBlock, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("se_block", inputs, 5)?;
    let x = inputs[0].ty;
    let (w1, b1, w2, b2) = (
        &inputs[1].ty.shape,
        &inputs[2].ty.shape,
        &inputs[3].ty.shape,
        &inputs[4].ty.shape,
    );
    let c = x
        .shape
        .dims()
        .get(1)
        .cloned()
        .ok_or_else(|| shape_err("se_block", format!("input {} must be NCHW", x.shape)))?;
    let ok = x.shape.rank() == 4
        && w1.rank() == 4
        && w2.rank() == 4
        && b1.rank() == 1
        && b2.rank() == 1
        && w1.dims()[1].unify(&c).is_some()
        && w1.dims()[2..].iter().all(|d| d.known() == Some(1))
        && w2.dims()[2..].iter().all(|d| d.known() == Some(1))
        && w2.dims()[0].unify(&c).is_some()
        && w2.dims()[1].unify(&w1.dims()[0]).is_some()
        && b1.dims()[0].unify(&w1.dims()[0]).is_some()
        && b2.dims()[0].unify(&c).is_some();
    if !ok {
        return Err(shape_err(
            "se_block",
            format!("weights {w1} {b1} {w2} {b2} do not fit input {}", x.shape),
        ));
    }
    Ok(vec![x.clone()])
}

fn eval_se_block(s: &SeBlock, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    infer_se_block(s, &super::concrete_inputs(&tys, inputs))?;
    let x = float_in("se_block", inputs[0], 0)?;
    let p: Vec<Vec<f32>> = (1..5)
        .map(|i| float_in("se_block", inputs[i], i).map(|a| a.iter().copied().collect()))
        .collect::<Result<_>>()?;
    let (w1, b1, w2, b2) = (&p[0], &p[1], &p[2], &p[3]);
    let (n, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let c1 = b1.len();
    let mut y = x.into_owned();
    for b in 0..n {
        let mut img = y.index_axis_mut(Axis(0), b);
        let mean: Vec<f64> = img
            .axis_iter(Axis(0))
            .map(|ch| ch.iter().map(|&v| v as f64).sum::<f64>() / (h * w) as f64)
            .collect();
        let hidden: Vec<f64> = (0..c1)
            .map(|o| {
                s.act1.apply(
                    (0..c).map(|i| w1[o * c + i] as f64 * mean[i]).sum::<f64>() + b1[o] as f64,
                )
            })
            .collect();
        for (ch, mut plane) in img.axis_iter_mut(Axis(0)).enumerate() {
            let g = s.act2.apply(
                (0..c1)
                    .map(|i| w2[ch * c1 + i] as f64 * hidden[i])
                    .sum::<f64>()
                    + b2[ch] as f64,
            );
            plane.mapv_inplace(|v| (v as f64 * g) as f32);
        }
    }
    Ok(float_out(y, inputs[0].dtype()))
}

impl OpDef for SkipLayerNorm {
    const KINDS: &'static [&'static str] = &["skip_layer_norm"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_skip_layer_norm(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_skip_layer_norm(self, inputs)?)
    }
}

fn infer_skip_layer_norm(s: &SkipLayerNorm, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    if inputs.len() < 2 {
        return Err(crate::Error::Arity {
            op: "skip_layer_norm",
            expected: "at least 2".into(),
            got: inputs.len(),
        });
    }
    let (a, b) = (inputs[0].ty, inputs[1].ty);
    if a.dtype != b.dtype
        || a.shape.rank() != b.shape.rank()
        || a.shape
            .dims()
            .iter()
            .zip(b.shape.dims())
            .any(|(p, q)| p.unify(q).is_none())
    {
        return Err(shape_err(
            "skip_layer_norm",
            format!("{a} and {b} must have the same type"),
        ));
    }
    let rest: Vec<InferInput<'_>> = std::iter::once(inputs[0])
        .chain(inputs[2..].iter().copied())
        .collect();
    norm::infer_layer_norm(&s.ln, &rest)
}

fn eval_skip_layer_norm(s: &SkipLayerNorm, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    infer_skip_layer_norm(s, &super::concrete_inputs(&tys, inputs))?;
    let a = float_in("skip_layer_norm", inputs[0], 0)?;
    let b = float_in("skip_layer_norm", inputs[1], 1)?;
    let sum = ArrayD::from_shape_vec(
        IxDyn(a.shape()),
        a.iter().zip(b.iter()).map(|(p, q)| p + q).collect(),
    )
    .map_err(|e| shape_err("skip_layer_norm", e.to_string()))?;
    let sum = Tensor::F32(sum);
    let mut args = vec![&sum];
    args.extend_from_slice(&inputs[2..]);
    let y = norm::eval_layer_norm(&s.ln, &args)?;
    Ok(float_out(
        float_in("skip_layer_norm", &y, 0)?.into_owned(),
        inputs[0].dtype(),
    ))
}

/// Multi-head scaled dot-product attention on packed heads:
/// `out[b, s, h·D + d] = Σ_t softmax_t(scale · q_h[s]·k_h[t] + mask[b, h, s, t]) · v_h[t, d]`.
///
/// Inputs: `q` `[B, S, H·D]`, `k` `[B, T, H·D]`, `v` `[B, T, H·D]`, then `mask` (if
/// `has_mask`), numpy-broadcastable to `[B, H, S, T]`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Attention {
    /// Number of heads `H`.
    pub heads: usize,
    /// Head size `D`.
    pub head_dim: usize,
    /// Multiplier of the logits.
    pub scale: f32,
    /// A mask input is added to the logits.
    pub has_mask: bool,
    /// Q, K and V come packed in one input `[B, S, 3·H·D]` (Q, then K, then V).
    pub packed: bool,
}

/// Splits the packed `[B, S, 3·H·D]` input into Q, K and V.
fn unpack(t: &Tensor, hd: usize) -> Result<[Tensor; 3]> {
    let parts = super::select::eval_split(
        &super::Split {
            axis: -1,
            sections: vec![hd as i64; 3],
            num: 0,
        },
        &[t],
    )?;
    let mut it = parts.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(q), Some(k), Some(v)) => Ok([q, k, v]),
        _ => Err(shape_err(
            "attention",
            "packed input does not split in three",
        )),
    }
}

impl OpDef for Attention {
    const KINDS: &'static [&'static str] = &["attention"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_attention(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_attention(self, inputs)?)
    }
    fn sample(_: &str, s: &mut Sampler<'_>) -> Option<Attention> {
        sample_attention(s)
    }
}

fn infer_attention(a: &Attention, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    if a.packed {
        arity("attention", inputs, 1 + a.has_mask as usize)?;
        let p = inputs[0].ty;
        let hd = a.heads * a.head_dim;
        if p.shape.rank() != 3
            || p.shape.dims()[2]
                .unify(&crate::Dim::Known(3 * hd))
                .is_none()
        {
            return Err(shape_err(
                "attention",
                format!("packed qkv must be [B, S, {}]: got {p}", 3 * hd),
            ));
        }
        let one = TypeInfo {
            dtype: p.dtype,
            shape: crate::Shape(vec![
                p.shape.dims()[0].clone(),
                p.shape.dims()[1].clone(),
                crate::Dim::Known(hd),
            ]),
        };
        let unpacked = Attention {
            packed: false,
            ..a.clone()
        };
        let mut ins = vec![
            InferInput {
                ty: &one,
                value: None
            };
            3
        ];
        ins.extend_from_slice(&inputs[1..]);
        return infer_attention(&unpacked, &ins);
    }
    arity("attention", inputs, 3 + a.has_mask as usize)?;
    let (q, k, v) = (inputs[0].ty, inputs[1].ty, inputs[2].ty);
    let hd = crate::Dim::Known(a.heads * a.head_dim);
    for t in [q, k, v] {
        if t.shape.rank() != 3 || t.shape.dims()[2].unify(&hd).is_none() || t.dtype != q.dtype {
            return Err(shape_err(
                "attention",
                format!(
                    "q/k/v must be [B, S, {}]: got {} {} {}",
                    a.heads * a.head_dim,
                    q,
                    k,
                    v
                ),
            ));
        }
    }
    if k.shape.dims()[1].unify(&v.shape.dims()[1]).is_none() {
        return Err(shape_err(
            "attention",
            format!("k {} and v {} lengths differ", k.shape, v.shape),
        ));
    }
    if a.has_mask {
        let logits = crate::Shape(vec![
            q.shape.dims()[0].clone(),
            crate::Dim::Known(a.heads),
            q.shape.dims()[1].clone(),
            k.shape.dims()[1].clone(),
        ]);
        let (_, _, out) = super::paddle_broadcast("attention", &logits, &inputs[3].ty.shape, -1)?;
        if out.rank() != 4
            || out
                .dims()
                .iter()
                .zip(logits.dims())
                .any(|(p, q)| p.unify(q).is_none())
        {
            return Err(shape_err(
                "attention",
                format!(
                    "mask {} does not broadcast to the logits {}",
                    inputs[3].ty.shape, logits
                ),
            ));
        }
    }
    Ok(vec![q.clone()])
}

fn eval_attention(a: &Attention, inputs: &[&Tensor]) -> Result<Tensor> {
    if a.packed {
        if inputs.is_empty() {
            return Err(crate::Error::Arity {
                op: "attention",
                expected: "1".into(),
                got: 0,
            });
        }
        let [q, k, v] = unpack(inputs[0], a.heads * a.head_dim)?;
        let mut args = vec![&q, &k, &v];
        args.extend_from_slice(&inputs[1..]);
        return eval_attention(
            &Attention {
                packed: false,
                ..a.clone()
            },
            &args,
        );
    }
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    infer_attention(a, &super::concrete_inputs(&tys, inputs))?;
    let q = float_in("attention", inputs[0], 0)?;
    let k = float_in("attention", inputs[1], 1)?;
    let v = float_in("attention", inputs[2], 2)?;
    let (b, s, t) = (q.shape()[0], q.shape()[1], k.shape()[1]);
    let (h, d) = (a.heads, a.head_dim);
    let mask = if a.has_mask {
        let m = float_in("attention", inputs[3], 3)?;
        let full = [b, h, s, t];
        let ms = m.shape().to_vec();
        let mut padded = vec![1usize; 4 - ms.len()];
        padded.extend_from_slice(&ms);
        let m4 = m
            .view()
            .into_shape_with_order(IxDyn(&padded))
            .map_err(|e| shape_err("attention", e.to_string()))?;
        let mb = m4
            .broadcast(IxDyn(&full))
            .ok_or_else(|| shape_err("attention", "mask does not broadcast"))?;
        Some(mb.to_owned())
    } else {
        None
    };
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[b, s, h * d]));
    let mut logits = vec![0f64; t];
    for bi in 0..b {
        for hi in 0..h {
            for si in 0..s {
                for (ti, l) in logits.iter_mut().enumerate() {
                    let dot: f64 = (0..d)
                        .map(|di| q[[bi, si, hi * d + di]] as f64 * k[[bi, ti, hi * d + di]] as f64)
                        .sum();
                    *l = a.scale as f64 * dot
                        + mask.as_ref().map_or(0.0, |m| m[[bi, hi, si, ti]] as f64);
                }
                let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let den: f64 = logits.iter().map(|l| (l - mx).exp()).sum();
                for di in 0..d {
                    let acc: f64 = logits
                        .iter()
                        .enumerate()
                        .map(|(ti, l)| (l - mx).exp() / den * v[[bi, ti, hi * d + di]] as f64)
                        .sum();
                    out[[bi, si, hi * d + di]] = acc as f32;
                }
            }
        }
    }
    Ok(float_out(out, inputs[0].dtype()))
}

/// `act(x op y)`: an elementwise op with Paddle's axis broadcast, then an activation.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct FusedBinary {
    /// The elementwise op.
    pub op: super::BinaryOp,
    /// Paddle's broadcast axis.
    pub axis: i64,
    /// The activation.
    pub act: UnaryOp,
}

impl OpDef for FusedBinary {
    const KINDS: &'static [&'static str] = &["fused_binary"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_fused_binary(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_fused_binary(self, inputs)?)
    }
}

fn infer_fused_binary(f: &FusedBinary, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    let out = super::binary::infer_binary("fused_binary", f.axis, inputs, None)?;
    super::check_float("fused_binary", &out[0], 0)?;
    Ok(out)
}

fn eval_fused_binary(f: &FusedBinary, inputs: &[&Tensor]) -> Result<Tensor> {
    let y = super::binary::eval_binary(f.op, f.axis, inputs)?;
    let mut y = float_in("fused_binary", &y, 0)?.into_owned();
    epilogue(&mut y, Some(f.act), None);
    Ok(float_out(y, inputs[0].dtype()))
}

/// `layer_norm(Σᵢ tableᵢ[idsᵢ])`: summed embedding lookups (broadcast like `add`) feeding a
/// layer normalization — the input layer of BERT/ERNIE encoders.
///
/// Inputs: `ids_0..ids_{n-1}`, `table_0..table_{n-1}`, then scale and bias as [`LayerNorm`]
/// says; `n = padding_idx.len()`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct EmbeddingLayerNorm {
    /// Per lookup: the id whose row reads as zeros.
    pub padding_idx: Vec<Option<i64>>,
    /// The normalization.
    pub ln: LayerNorm,
}

fn emb_split<'a, T>(
    e: &EmbeddingLayerNorm,
    inputs: &'a [T],
) -> Result<(&'a [T], &'a [T], &'a [T])> {
    let n = e.padding_idx.len();
    let want = 2 * n + e.ln.has_scale as usize + e.ln.has_bias as usize;
    if n == 0 || inputs.len() != want {
        return Err(crate::Error::Arity {
            op: "embedding_layer_norm",
            expected: want.to_string(),
            got: inputs.len(),
        });
    }
    Ok((&inputs[..n], &inputs[n..2 * n], &inputs[2 * n..]))
}

impl OpDef for EmbeddingLayerNorm {
    const KINDS: &'static [&'static str] = &["embedding_layer_norm"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_embedding_layer_norm(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_embedding_layer_norm(self, inputs)?)
    }
}

fn infer_embedding_layer_norm(
    e: &EmbeddingLayerNorm,
    inputs: &[InferInput<'_>],
) -> Result<Vec<TypeInfo>> {
    let (ids, tables, rest) = emb_split(e, inputs)?;
    let mut acc: Option<TypeInfo> = None;
    for (i, t) in ids.iter().zip(tables) {
        let ty = super::select::infer_embedding(&[*i, *t])?.remove(0);
        acc = Some(match acc {
            None => ty,
            Some(a) => {
                let (_, _, s) =
                    super::paddle_broadcast("embedding_layer_norm", &a.shape, &ty.shape, -1)?;
                TypeInfo {
                    dtype: a.dtype,
                    shape: s,
                }
            }
        });
    }
    let sum = acc.expect("n > 0");
    let mut ln_in = vec![InferInput {
        ty: &sum,
        value: None,
    }];
    ln_in.extend_from_slice(rest);
    norm::infer_layer_norm(&e.ln, &ln_in)
}

fn eval_embedding_layer_norm(e: &EmbeddingLayerNorm, inputs: &[&Tensor]) -> Result<Tensor> {
    let (ids, tables, rest) = emb_split(e, inputs)?;
    let mut sum: Option<Tensor> = None;
    for ((i, t), p) in ids.iter().zip(tables).zip(&e.padding_idx) {
        let emb = super::select::eval_embedding(*p, &[*i, *t])?;
        sum = Some(match sum {
            None => emb,
            Some(s) => super::binary::eval_binary(super::BinaryOp::Add, -1, &[&s, &emb])?,
        });
    }
    let sum = sum.expect("n > 0");
    let mut args = vec![&sum];
    args.extend_from_slice(rest);
    norm::eval_layer_norm(&e.ln, &args)
}

/// Attention on packed (`[B, S, 3E]`) or separate Q, K, V (`[B, S, E]` each), with a
/// broadcast `[B, 1, 1, S]` mask for 2 or 4 inputs; heads dividing the width.
fn sample_attention(s: &mut Sampler<'_>) -> Option<Attention> {
    let n = s.arity();
    let first = (0..n).find_map(|i| s.known(i)).map(<[usize]>::to_vec);
    let size = s.size;
    let a = match s.given() {
        Some(Op::Attention(a)) => a.clone(),
        Some(_) => return None,
        None => {
            let packed = n <= 2;
            let e = match &first {
                Some(x) if x.len() == 3 => x[2] / if packed { 3 } else { 1 },
                Some(_) => return None,
                None => s.rng.dim(size) * s.rng.dim(2),
            };
            let r = &mut *s.rng;
            let heads = (1..=e)
                .rev()
                .filter(|h| e % h == 0)
                .nth(r.below(2))
                .unwrap_or(1);
            let hd = e / heads;
            Attention {
                heads,
                head_dim: hd,
                scale: if r.coin() {
                    1.0 / (hd as f32).sqrt()
                } else {
                    r.f32()
                },
                has_mask: n == 2 || n == 4,
                packed,
            }
        }
    };
    let e = a.heads * a.head_dim;
    let (b, seq) = match &first {
        Some(x) if x.len() == 3 => (x[0], x[1]),
        _ => (s.rng.dim(1), s.rng.dim(size)),
    };
    let qkv = if a.packed { 1 } else { 3 };
    for i in 0..n {
        let leaf = if i < qkv {
            Leaf::normal(vec![b, seq, if a.packed { 3 * e } else { e }])
        } else {
            Leaf::normal(vec![b, 1, 1, seq])
        };
        s.set(i, leaf);
    }
    Some(a)
}
