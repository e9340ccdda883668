//! Linear quantization as float arithmetic on the shared ops: `DequantizeLinear`,
//! `QuantizeLinear`, `DynamicQuantizeLinear`, and the quantized `QLinearMatMul`,
//! `QLinearConv`, `MatMulInteger`, `ConvInteger` (dequantize, the float op, requantize).
//! Per-tensor, per-axis and blocked scales; 8-bit integers (the IR's int8 and uint8). The
//! quantized ops compute in f32 between dequantize and requantize (a result may land one
//! step off ONNX's integer arithmetic at a rounding tie). The integer ops' products run
//! in f32 too, exact while a dot product stays under 2²⁴: a reduction longer than
//! [`MAX_EXACT_K`] is refused rather than rounded.

use super::index::Emit;
use super::nn::conv_attrs;
use super::*;

/// Longest dot product of 8-bit values that f32 sums exactly (255² · K < 2²⁴).
pub const MAX_EXACT_K: usize = 258;

/// The value range of a quantized dtype.
fn range(c: &NodeCtx<'_>, dt: DType) -> Result<(f32, f32)> {
    match dt {
        DType::U8 => Ok((0.0, 255.0)),
        DType::I8 => Ok((-128.0, 127.0)),
        DType::I32 => Ok((i32::MIN as f32, i32::MAX as f32)),
        other => Err(c.unsupported(format!(
            "`{}` to {other:?} (Kayak quantizes to int8 and uint8)",
            c.node.op_type
        ))),
    }
}

/// A scale or zero point (input `k`) shaped to broadcast against input `x_k`: a scalar
/// or one value as is, a 1-D one along `axis`, a blocked one repeated `block` times along
/// `axis`.
fn param(e: &mut Emit<'_, '_>, c: &NodeCtx<'_>, k: usize, x_k: usize, to: DType) -> Result<String> {
    let p = c.req(k)?;
    let pd = c.dims(k)?;
    let p = e.op(Op::Cast(Cast { to }), vec![p]);
    let n: usize = pd.iter().product();
    if n == 1 {
        return Ok(p);
    }
    let xd = c.dims(x_k)?;
    let axis = c.axis("axis", c.int_or("axis", 1)?, xd.len())?;
    let block = c.int_or("block_size", 0)?;
    let reshape = |shape: Vec<i64>| {
        Op::Reshape(Reshape {
            shape,
            shape_input: ListInput::Attr,
        })
    };
    if block <= 0 {
        if pd.len() != 1 || pd[0] != xd[axis] {
            return Err(c.bad(
                "axis",
                format!("a scale of shape {pd:?} for {xd:?} along {axis}"),
            ));
        }
        let mut shape = vec![1i64; xd.len()];
        shape[axis] = xd[axis] as i64;
        return Ok(e.op(reshape(shape), vec![p]));
    }
    // Blocked: each value covers `block` positions along the axis.
    let b = block as usize;
    if pd.len() != xd.len() || pd[axis] * b != xd[axis] {
        return Err(c.bad(
            "block_size",
            format!("{b} with a scale of shape {pd:?} for {xd:?}"),
        ));
    }
    let mut split: Vec<i64> = pd.iter().map(|&d| d as i64).collect();
    split.insert(axis + 1, 1);
    let mut wide = split.clone();
    wide[axis + 1] = b as i64;
    let a = e.op(reshape(split), vec![p]);
    let z = e.op(
        Op::FillConstant(FillConstant {
            shape: wide,
            value: 0.0,
            dtype: to,
            shape_input: ListInput::Attr,
            value_input: false,
        }),
        vec![],
    );
    let w = e.op(bin(BinaryOp::Add), vec![a, z]);
    Ok(e.op(reshape(xd.iter().map(|&d| d as i64).collect()), vec![w]))
}

/// `(x − zp) · scale` in f32 (`x` input `k`, then its scale and zero point).
fn dequant(
    e: &mut Emit<'_, '_>,
    c: &NodeCtx<'_>,
    k: usize,
    scale: Option<usize>,
) -> Result<String> {
    let x = e.op(Op::Cast(Cast { to: DType::F32 }), vec![c.req(k)?]);
    let zp_k = scale.map_or(k + 1, |s| s + 1);
    let x = match c.input(zp_k) {
        Some(_) => {
            let zp = param(e, c, zp_k, k, DType::F32)?;
            e.op(bin(BinaryOp::Sub), vec![x, zp])
        }
        None => x,
    };
    Ok(match scale {
        Some(s) => {
            let s = param(e, c, s, k, DType::F32)?;
            e.op(bin(BinaryOp::Mul), vec![x, s])
        }
        None => x,
    })
}

/// `saturate(round(x / scale) + zp)` as `to` (ties to even).
fn quant(
    e: &mut Emit<'_, '_>,
    c: &NodeCtx<'_>,
    x: String,
    scale_k: usize,
    ref_k: usize,
    to: DType,
) -> Result<Vec<Converted>> {
    let (lo, hi) = range(c, to)?;
    let s = param(e, c, scale_k, ref_k, DType::F32)?;
    let q = e.op(bin(BinaryOp::Div), vec![x, s]);
    let mut q = e.op(Op::Unary(UnaryOp::Round), vec![q]);
    if c.input(scale_k + 1).is_some() {
        let zp = param(e, c, scale_k + 1, ref_k, DType::F32)?;
        q = e.op(bin(BinaryOp::Add), vec![q, zp]);
    }
    let q = e.op(Op::Unary(UnaryOp::Clip { min: lo, max: hi }), vec![q]);
    let mut v = std::mem::take(&mut e.v);
    v.push(conv_op(Op::Cast(Cast { to }), vec![q], c.output(0)));
    Ok(v)
}

/// The quantized type: the zero point's, else `output_dtype`, else uint8.
fn quant_type(c: &NodeCtx<'_>, zp_k: usize) -> Result<DType> {
    if c.input(zp_k).is_some() {
        return c.dtype(zp_k);
    }
    match c.int_or("output_dtype", 0)? {
        0 => Ok(DType::U8),
        t => super::super::tensor::dtype(t as i32)
            .map_err(|t| c.unsupported(format!("`QuantizeLinear` to {t}"))),
    }
}

pub(super) fn dequantize_linear(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let to = c.dtype(1)?;
    let mut e = Emit::new(c);
    let y = dequant(&mut e, c, 0, Some(1))?;
    Ok(e.last(Op::Cast(Cast { to }), vec![y], c.output(0)))
}

pub(super) fn quantize_linear(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    if c.int_or("saturate", 1)? == 0 {
        return Err(c.unsupported("`QuantizeLinear` with saturate=0 (float8 only)"));
    }
    let to = quant_type(c, 2)?;
    let mut e = Emit::new(c);
    let x = e.op(Op::Cast(Cast { to: DType::F32 }), vec![c.req(0)?]);
    quant(&mut e, c, x, 1, 0, to)
}

/// `DynamicQuantizeLinear(x)`: uint8 `y`, `y_scale` = (max(0, max x) − min(0, min x)) / 255,
/// `y_zero_point` = saturate(round(−min / scale)).
pub(super) fn dynamic_quantize_linear(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    let mut e = Emit::new(c);
    let zero = e.scalar(0.0, DType::F32);
    let mx = e.op(reduce_over(ReduceKind::Max, vec![], false), vec![x.clone()]);
    let mn = e.op(reduce_over(ReduceKind::Min, vec![], false), vec![x.clone()]);
    let mx = e.op(bin(BinaryOp::Max), vec![mx, zero.clone()]);
    let mn = e.op(bin(BinaryOp::Min), vec![mn, zero]);
    let span = e.op(bin(BinaryOp::Sub), vec![mx, mn.clone()]);
    let (scale, zp_out) = (c.output(1), c.output(2));
    e.v.push(conv_op(
        super::scale(1.0 / 255.0, 0.0),
        vec![span],
        scale.clone(),
    ));
    let nmin = e.op(super::scale(-1.0, 0.0), vec![mn]);
    let z = e.op(bin(BinaryOp::Div), vec![nmin, scale.clone()]);
    let z = e.op(Op::Unary(UnaryOp::Round), vec![z]);
    let zf = e.op(
        Op::Unary(UnaryOp::Clip {
            min: 0.0,
            max: 255.0,
        }),
        vec![z],
    );
    e.v.push(conv_op(
        Op::Cast(Cast { to: DType::U8 }),
        vec![zf.clone()],
        zp_out,
    ));
    let q = e.op(bin(BinaryOp::Div), vec![x, scale]);
    let q = e.op(Op::Unary(UnaryOp::Round), vec![q]);
    let q = e.op(bin(BinaryOp::Add), vec![q, zf]);
    let q = e.op(
        Op::Unary(UnaryOp::Clip {
            min: 0.0,
            max: 255.0,
        }),
        vec![q],
    );
    Ok(e.last(Op::Cast(Cast { to: DType::U8 }), vec![q], c.output(0)))
}

/// Refuses a reduction too long for f32 to sum 8-bit products exactly.
fn exact_k(c: &NodeCtx<'_>, k: usize) -> Result<()> {
    if k > MAX_EXACT_K {
        return Err(c.unsupported(format!(
            "`{}` with a reduction of {k} products (exact in f32 up to {MAX_EXACT_K})",
            c.node.op_type
        )));
    }
    Ok(())
}

/// `QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)`.
pub(super) fn qlinear_matmul(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let to = quant_type(c, 7)?;
    let mut e = Emit::new(c);
    let a = dequant(&mut e, c, 0, Some(1))?;
    let b = dequant(&mut e, c, 3, Some(4))?;
    let m = e.op(
        Op::MatMul(MatMul {
            trans_x: false,
            trans_y: false,
            alpha: 1.0,
        }),
        vec![a, b],
    );
    quant(&mut e, c, m, 6, 6, to)
}

/// `QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, B])`.
pub(super) fn qlinear_conv(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    if c.input(8).is_some() {
        return Err(c.unsupported("`QLinearConv` with a bias"));
    }
    let to = quant_type(c, 7)?;
    let cv = conv_attrs(c)?;
    let mut e = Emit::new(c);
    let x = dequant(&mut e, c, 0, Some(1))?;
    let w = dequant_weight(&mut e, c, 3, Some(5), Some(4))?;
    let y = e.op(Op::Conv2d(cv), vec![x, w]);
    quant(&mut e, c, y, 6, 6, to)
}

/// A conv weight (input `k`) dequantized: its zero point and scale (inputs, when given)
/// are per output channel (axis 0) or one value.
fn dequant_weight(
    e: &mut Emit<'_, '_>,
    c: &NodeCtx<'_>,
    k: usize,
    zp: Option<usize>,
    scale: Option<usize>,
) -> Result<String> {
    let wd = c.dims(k)?;
    let per_channel = |e: &mut Emit<'_, '_>, j: usize| -> Result<String> {
        let p = e.op(Op::Cast(Cast { to: DType::F32 }), vec![c.req(j)?]);
        let n: usize = c.dims(j)?.iter().product();
        if n == 1 {
            return Ok(p);
        }
        let mut shape = vec![1i64; wd.len()];
        shape[0] = wd[0] as i64;
        Ok(e.op(
            Op::Reshape(Reshape {
                shape,
                shape_input: ListInput::Attr,
            }),
            vec![p],
        ))
    };
    let mut w = e.op(Op::Cast(Cast { to: DType::F32 }), vec![c.req(k)?]);
    if let Some(z) = zp.filter(|&z| c.input(z).is_some()) {
        let zp = per_channel(e, z)?;
        w = e.op(bin(BinaryOp::Sub), vec![w, zp]);
    }
    if let Some(s) = scale {
        let s = per_channel(e, s)?;
        w = e.op(bin(BinaryOp::Mul), vec![w, s]);
    }
    Ok(w)
}

/// `MatMulInteger(a, b, a_zp, b_zp)`: the int32 product.
pub(super) fn matmul_integer(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    exact_k(c, *c.dims(0)?.last().unwrap_or(&0))?;
    let mut e = Emit::new(c);
    let zp = |e: &mut Emit<'_, '_>, x: usize, z: usize| -> Result<String> {
        let v = e.op(Op::Cast(Cast { to: DType::F32 }), vec![c.req(x)?]);
        Ok(match c.input(z) {
            Some(_) => {
                let p = param(e, c, z, x, DType::F32)?;
                e.op(bin(BinaryOp::Sub), vec![v, p])
            }
            None => v,
        })
    };
    let a = zp(&mut e, 0, 2)?;
    let b = zp(&mut e, 1, 3)?;
    let m = e.op(
        Op::MatMul(MatMul {
            trans_x: false,
            trans_y: false,
            alpha: 1.0,
        }),
        vec![a, b],
    );
    Ok(e.last(Op::Cast(Cast { to: DType::I32 }), vec![m], c.output(0)))
}

/// `ConvInteger(x, w, x_zp, w_zp)`: the int32 convolution.
pub(super) fn conv_integer(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let wd = c.dims(1)?;
    exact_k(c, wd[1..].iter().product())?;
    let cv = conv_attrs(c)?;
    let mut e = Emit::new(c);
    let mut x = e.op(Op::Cast(Cast { to: DType::F32 }), vec![c.req(0)?]);
    if c.input(2).is_some() {
        let z = e.op(Op::Cast(Cast { to: DType::F32 }), vec![c.req(2)?]);
        x = e.op(bin(BinaryOp::Sub), vec![x, z]);
    }
    let w = dequant_weight(&mut e, c, 1, Some(3), None)?;
    let y = e.op(Op::Conv2d(cv), vec![x, w]);
    Ok(e.last(Op::Cast(Cast { to: DType::I32 }), vec![y], c.output(0)))
}
