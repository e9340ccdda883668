//! 2-D convolution and transposed convolution (NCHW and NHWC, groups, dilations, paddings).

use super::{check_float, float_in, float_out, one, FusedConv, InferInput, Layout, Op, OpDef};
use crate::error::{attr_err, shape_err};
use crate::sample::{infer_f32, Leaf, Rng, Sampler};
use crate::{Dim, Result, Shape, Tensor, TypeInfo};
use ndarray::{linalg::general_mat_mul, Array2, Array4, ArrayD, ArrayView4, Axis, Ix4};

/// How spatial padding is chosen.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Given per side: top, bottom, left, right.
    Explicit([usize; 4]),
    /// Output size `ceil(in / stride)`, padding split evenly (extra at the end); dilation 1.
    Same,
    /// No padding.
    Valid,
}

impl Padding {
    /// Resolves to explicit per-side pads and effective dilations for input spatial dims
    /// `(h, w)` (Paddle's rule: SAME ignores dilation).
    pub fn resolve(
        &self,
        input: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
    ) -> ([usize; 4], [usize; 2]) {
        match *self {
            Padding::Explicit(p) => (p, dilations),
            Padding::Valid => ([0; 4], dilations),
            Padding::Same => {
                let mut p = [0; 4];
                for i in 0..2 {
                    let out = input[i].div_ceil(strides[i]);
                    let need =
                        ((out.saturating_sub(1)) * strides[i] + kernel[i]).saturating_sub(input[i]);
                    p[2 * i] = need / 2;
                    p[2 * i + 1] = need - need / 2;
                }
                (p, [1, 1])
            }
        }
    }
}

/// Convolution attributes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Conv {
    /// Strides (h, w).
    pub strides: [usize; 2],
    /// Padding.
    pub padding: Padding,
    /// Dilations (h, w).
    pub dilations: [usize; 2],
    /// Groups (`groups == channels` is depthwise).
    pub groups: usize,
    /// Data layout of input and output; weights are always `[OC, IC/groups, KH, KW]`.
    pub layout: Layout,
    /// A third input holds a per-output-channel bias.
    pub has_bias: bool,
}

/// Transposed convolution attributes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct ConvTranspose {
    /// Strides (h, w).
    pub strides: [usize; 2],
    /// Padding (cropped from the full output).
    pub padding: Padding,
    /// Dilations (h, w).
    pub dilations: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// Extra size added at the end of each spatial dim.
    pub output_padding: [usize; 2],
    /// Requested output size (h, w), if given.
    pub output_size: Option<[usize; 2]>,
    /// Data layout; weights are always `[IC, OC/groups, KH, KW]`.
    pub layout: Layout,
    /// A third input holds a per-output-channel bias.
    pub has_bias: bool,
}

fn split_nchw(layout: Layout, s: &Shape) -> (Dim, Dim, Dim, Dim) {
    let d = s.dims();
    match layout {
        Layout::Nchw => (d[0].clone(), d[1].clone(), d[2].clone(), d[3].clone()),
        Layout::Nhwc => (d[0].clone(), d[3].clone(), d[1].clone(), d[2].clone()),
    }
}

fn join_nchw(layout: Layout, n: Dim, c: Dim, h: Dim, w: Dim) -> Shape {
    match layout {
        Layout::Nchw => Shape(vec![n, c, h, w]),
        Layout::Nhwc => Shape(vec![n, h, w, c]),
    }
}

fn conv_out(input: usize, k: usize, s: usize, d: usize, p0: usize, p1: usize) -> Option<usize> {
    let eff = d * (k - 1) + 1;
    let padded = input + p0 + p1;
    (padded >= eff).then(|| (padded - eff) / s + 1)
}

fn check_common(
    op: &'static str,
    inputs: &[InferInput<'_>],
    has_bias: bool,
    groups: usize,
    strides: [usize; 2],
    dil: [usize; 2],
) -> Result<()> {
    let n = 2 + has_bias as usize;
    super::arity(op, inputs, n)?;
    check_float(op, inputs[0].ty, 0)?;
    check_float(op, inputs[1].ty, 1)?;
    if inputs[0].ty.shape.rank() != 4 || inputs[1].ty.shape.rank() != 4 {
        return Err(shape_err(
            op,
            format!(
                "input {} and filter {} must be 4-D",
                inputs[0].ty.shape, inputs[1].ty.shape
            ),
        ));
    }
    if let Some(k) = inputs[1].ty.shape.dims()[2..]
        .iter()
        .find(|d| d.known() == Some(0))
    {
        return Err(shape_err(
            op,
            format!(
                "filter {} has a zero-sized kernel dim {k}",
                inputs[1].ty.shape
            ),
        ));
    }
    if groups == 0 {
        return Err(attr_err(op, "groups", "must be at least 1"));
    }
    if strides.contains(&0) {
        return Err(attr_err(op, "strides", "must be positive"));
    }
    if dil.contains(&0) {
        return Err(attr_err(op, "dilations", "must be positive"));
    }
    Ok(())
}

pub(super) fn infer_conv(c: &Conv, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    let op = "conv2d";
    check_common(op, inputs, c.has_bias, c.groups, c.strides, c.dilations)?;
    let (n, ci, h, w) = split_nchw(c.layout, &inputs[0].ty.shape);
    let f = inputs[1].ty.shape.dims();
    let (oc, icg, kh, kw) = (&f[0], &f[1], &f[2], &f[3]);
    if let (Some(ci), Some(icg)) = (ci.known(), icg.known()) {
        if ci != icg * c.groups {
            return Err(shape_err(
                op,
                format!(
                    "input has {ci} channels, filter expects {icg} x {} groups",
                    c.groups
                ),
            ));
        }
    }
    if let Some(oc) = oc.known() {
        if oc % c.groups != 0 {
            return Err(shape_err(
                op,
                format!("{oc} output channels not divisible by {} groups", c.groups),
            ));
        }
    }
    let (kh, kw) = match (kh.known(), kw.known()) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(shape_err(op, "filter spatial size must be known")),
    };
    let spatial = |d: &Dim, i: usize| -> Result<Dim> {
        let Some(x) = d.known() else {
            return Ok(Dim::Unknown);
        };
        let (p, dil) = c.padding.resolve([x, x], [kh, kw], c.strides, c.dilations);
        let k = [kh, kw][i];
        conv_out(x, k, c.strides[i], dil[i], p[2 * i], p[2 * i + 1])
            .map(Dim::Known)
            .ok_or_else(|| {
                shape_err(
                    op,
                    format!(
                        "kernel {k} (dilation {}) larger than padded input {x}",
                        dil[i]
                    ),
                )
            })
    };
    let (oh, ow) = (spatial(&h, 0)?, spatial(&w, 1)?);
    Ok(vec![TypeInfo {
        dtype: inputs[0].ty.dtype,
        shape: join_nchw(c.layout, n, oc.clone(), oh, ow),
    }])
}

fn to_nchw(x: &ArrayD<f32>, layout: Layout) -> Result<Array4<f32>> {
    let x4 = x
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| shape_err("conv", e.to_string()))?;
    Ok(match layout {
        Layout::Nchw => x4.to_owned(),
        Layout::Nhwc => x4
            .permuted_axes([0, 3, 1, 2])
            .as_standard_layout()
            .to_owned(),
    })
}

fn from_nchw(y: Array4<f32>, layout: Layout) -> ArrayD<f32> {
    match layout {
        Layout::Nchw => y.into_dyn(),
        Layout::Nhwc => y
            .permuted_axes([0, 2, 3, 1])
            .as_standard_layout()
            .to_owned()
            .into_dyn(),
    }
}

fn add_bias(y: &mut Array4<f32>, bias: Option<&Tensor>, op: &'static str) -> Result<()> {
    if let Some(b) = bias {
        let b = float_in(op, b, 2)?;
        let c = y.shape()[1];
        if b.len() != c {
            return Err(shape_err(
                op,
                format!("bias has {} elements for {c} channels", b.len()),
            ));
        }
        for (mut ch, &bv) in y.axis_iter_mut(Axis(1)).zip(b.iter()) {
            ch += bv;
        }
    }
    Ok(())
}

/// Unfolds one image's group of channels into columns: rows are (c, ky, kx), columns (oy, ox).
#[allow(clippy::too_many_arguments)]
fn im2col(
    x: &ArrayView4<'_, f32>,
    n: usize,
    c0: usize,
    cg: usize,
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    p: [usize; 4],
    o: [usize; 2],
) -> Array2<f32> {
    let (h, w) = (x.shape()[2] as isize, x.shape()[3] as isize);
    let mut col = Array2::<f32>::zeros((cg * k[0] * k[1], o[0] * o[1]));
    for c in 0..cg {
        for ky in 0..k[0] {
            for kx in 0..k[1] {
                let row = (c * k[0] + ky) * k[1] + kx;
                let mut r = col.row_mut(row);
                for oy in 0..o[0] {
                    let iy = (oy * s[0] + ky * d[0]) as isize - p[0] as isize;
                    if iy < 0 || iy >= h {
                        continue;
                    }
                    for ox in 0..o[1] {
                        let ix = (ox * s[1] + kx * d[1]) as isize - p[2] as isize;
                        if ix >= 0 && ix < w {
                            r[oy * o[1] + ox] = x[[n, c0 + c, iy as usize, ix as usize]];
                        }
                    }
                }
            }
        }
    }
    col
}

pub(super) fn eval_conv(c: &Conv, inputs: &[&Tensor]) -> Result<Tensor> {
    let op = "conv2d";
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out_ty = infer_conv(c, &super::concrete_inputs(&tys, inputs))?;
    let out_dims = out_ty[0].shape.to_known().expect("concrete");
    let x = to_nchw(&*float_in(op, inputs[0], 0)?, c.layout)?;
    let w = float_in(op, inputs[1], 1)?;
    let w = w
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| shape_err(op, e.to_string()))?;
    let (nb, _, h, wd) = x.dim();
    let (oc, icg, kh, kw) = w.dim();
    let (p, dil) = c.padding.resolve([h, wd], [kh, kw], c.strides, c.dilations);
    let (oh, ow) = match c.layout {
        Layout::Nchw => (out_dims[2], out_dims[3]),
        Layout::Nhwc => (out_dims[1], out_dims[2]),
    };
    let ocg = oc / c.groups;
    let mut y = Array4::<f32>::zeros((nb, oc, oh, ow));
    let xv = x.view();
    for n in 0..nb {
        for g in 0..c.groups {
            let col = im2col(&xv, n, g * icg, icg, [kh, kw], c.strides, dil, p, [oh, ow]);
            let wg = w
                .slice(ndarray::s![g * ocg..(g + 1) * ocg, .., .., ..])
                .to_shape((ocg, icg * kh * kw))
                .map_err(|e| shape_err(op, e.to_string()))?
                .into_owned();
            let mut out = Array2::<f32>::zeros((ocg, oh * ow));
            general_mat_mul(1.0, &wg, &col, 0.0, &mut out);
            let mut dst = y.slice_mut(ndarray::s![n, g * ocg..(g + 1) * ocg, .., ..]);
            dst.assign(
                &out.into_shape_with_order((ocg, oh, ow))
                    .map_err(|e| shape_err(op, e.to_string()))?,
            );
        }
    }
    add_bias(&mut y, inputs.get(2).copied().filter(|_| c.has_bias), op)?;
    Ok(float_out(from_nchw(y, c.layout), inputs[0].dtype()))
}

fn infer_conv_transpose(c: &ConvTranspose, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    let op = "conv2d_transpose";
    check_common(op, inputs, c.has_bias, c.groups, c.strides, c.dilations)?;
    let (n, ci, h, w) = split_nchw(c.layout, &inputs[0].ty.shape);
    let f = inputs[1].ty.shape.dims();
    let (fic, ocg, kh, kw) = (&f[0], &f[1], &f[2], &f[3]);
    if let (Some(ci), Some(fic)) = (ci.known(), fic.known()) {
        if ci != fic {
            return Err(shape_err(
                op,
                format!("input has {ci} channels, filter expects {fic}"),
            ));
        }
    }
    let (kh, kw) = match (kh.known(), kw.known()) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(shape_err(op, "filter spatial size must be known")),
    };
    let oc = ocg.map(|v| v * c.groups);
    let spatial = |d: &Dim, i: usize| -> Result<Dim> {
        let Some(x) = d.known() else {
            return Ok(Dim::Unknown);
        };
        let (p, dil) = c.padding.resolve([x, x], [kh, kw], c.strides, c.dilations);
        let k = [kh, kw][i];
        let full = (x - 1) * c.strides[i] + dil[i] * (k - 1) + 1;
        let base = full
            .checked_sub(p[2 * i] + p[2 * i + 1])
            .ok_or_else(|| shape_err(op, "padding larger than output"))?;
        match c.output_size {
            Some(os) => {
                let want = os[i];
                if want < base || want >= base + c.strides[i].max(1) {
                    return Err(attr_err(
                        op,
                        "output_size",
                        format!(
                            "{want} not reachable from input {x} (expected {base}..{})",
                            base + c.strides[i]
                        ),
                    ));
                }
                Ok(Dim::Known(want))
            }
            None => Ok(Dim::Known(base + c.output_padding[i])),
        }
    };
    let (oh, ow) = (spatial(&h, 0)?, spatial(&w, 1)?);
    Ok(vec![TypeInfo {
        dtype: inputs[0].ty.dtype,
        shape: join_nchw(c.layout, n, oc, oh, ow),
    }])
}

fn eval_conv_transpose(c: &ConvTranspose, inputs: &[&Tensor]) -> Result<Tensor> {
    let op = "conv2d_transpose";
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out_ty = infer_conv_transpose(c, &super::concrete_inputs(&tys, inputs))?;
    let out_dims = out_ty[0].shape.to_known().expect("concrete");
    let x = to_nchw(&*float_in(op, inputs[0], 0)?, c.layout)?;
    let w = float_in(op, inputs[1], 1)?;
    let w = w
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| shape_err(op, e.to_string()))?;
    let (nb, ci, h, wd) = x.dim();
    let (_, ocg, kh, kw) = w.dim();
    let (p, dil) = c.padding.resolve([h, wd], [kh, kw], c.strides, c.dilations);
    let (oh, ow) = match c.layout {
        Layout::Nchw => (out_dims[2], out_dims[3]),
        Layout::Nhwc => (out_dims[1], out_dims[2]),
    };
    let icg = ci / c.groups;
    let oc = ocg * c.groups;
    let mut y = Array4::<f32>::zeros((nb, oc, oh, ow));
    for n in 0..nb {
        for g in 0..c.groups {
            // col[(oc, ky, kx), (iy, ix)] = sum_ic w[ic, oc, ky, kx] * x[ic, iy, ix]
            let wg = w
                .slice(ndarray::s![g * icg..(g + 1) * icg, .., .., ..])
                .to_shape((icg, ocg * kh * kw))
                .map_err(|e| shape_err(op, e.to_string()))?
                .into_owned();
            let xg = x
                .slice(ndarray::s![n, g * icg..(g + 1) * icg, .., ..])
                .to_shape((icg, h * wd))
                .map_err(|e| shape_err(op, e.to_string()))?
                .into_owned();
            let mut col = Array2::<f32>::zeros((ocg * kh * kw, h * wd));
            general_mat_mul(1.0, &wg.t(), &xg, 0.0, &mut col);
            // Scatter-add the columns into the output (col2im).
            for o in 0..ocg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let row = col.row((o * kh + ky) * kw + kx);
                        for iy in 0..h {
                            let oy = (iy * c.strides[0] + ky * dil[0]) as isize - p[0] as isize;
                            if oy < 0 || oy >= oh as isize {
                                continue;
                            }
                            for ix in 0..wd {
                                let ox = (ix * c.strides[1] + kx * dil[1]) as isize - p[2] as isize;
                                if ox >= 0 && ox < ow as isize {
                                    y[[n, g * ocg + o, oy as usize, ox as usize]] +=
                                        row[iy * wd + ix];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    add_bias(&mut y, inputs.get(2).copied().filter(|_| c.has_bias), op)?;
    Ok(float_out(from_nchw(y, c.layout), inputs[0].dtype()))
}

impl OpDef for Conv {
    const KINDS: &'static [&'static str] = &["conv2d"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_conv(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_conv(self, inputs)?)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Conv> {
        match sample_conv(kind, s)? {
            Op::Conv2d(c) => Some(c),
            _ => None,
        }
    }
}

impl OpDef for ConvTranspose {
    const KINDS: &'static [&'static str] = &["conv2d_transpose"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_conv_transpose(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_conv_transpose(self, inputs)?)
    }
    fn sample(_: &str, s: &mut Sampler<'_>) -> Option<ConvTranspose> {
        sample_conv_transpose(s)
    }
}

/// Convolution attributes as models use them: mostly stride 1 and padding 1, some
/// strides and dilations of 2, `SAME`/`VALID`, now and then NHWC.
fn conv_attrs(r: &mut Rng, has_bias: bool) -> Conv {
    let s = if r.below(4) == 0 { 2 } else { 1 };
    let d = if r.below(7) == 0 { 2 } else { 1 };
    let padding = match r.below(10) {
        0 => Padding::Same,
        1 => Padding::Valid,
        2 => Padding::Explicit([r.below(2), r.below(3), r.below(2), r.below(3)]),
        _ => Padding::Explicit([1; 4]),
    };
    Conv {
        strides: [s, s],
        padding: if d > 1 && padding == Padding::Same {
            Padding::Valid
        } else {
            padding
        },
        dilations: [d, d],
        groups: 0,
        layout: if r.below(10) == 0 {
            Layout::Nhwc
        } else {
            Layout::Nchw
        },
        has_bias,
    }
}

/// A `conv2d` (inputs `x`, `w[, bias]`) or a `fused_conv` (`x`, `w`, `bias[, residual]`,
/// with a random epilogue): groups 1, 2 or depthwise, the weight fitted to the input's
/// channels (or the input to the weight's).
pub(super) fn sample_conv(kind: &str, s: &mut Sampler<'_>) -> Option<Op> {
    let n = s.arity();
    let fused = kind == "fused_conv";
    if (fused && !(3..=4).contains(&n)) || (!fused && !(2..=3).contains(&n)) {
        return None;
    }
    let (mut conv, mut act, mut post, residual) = match s.given() {
        Some(Op::Conv2d(c)) if !fused => (c.clone(), None, None, false),
        Some(Op::FusedConv(f)) if fused => (f.conv.clone(), f.act, f.post, f.residual),
        Some(_) => return None,
        None => {
            let c = conv_attrs(s.rng, !fused && n == 3);
            (c, None, None, fused && n == 4)
        }
    };
    if s.given().is_none() && fused {
        if s.rng.coin() {
            act = Some(super::unary::sample_activation(s.rng));
        }
        if s.rng.below(3) == 0 {
            post = Some((s.rng.f32() * 2.0 - 1.0, s.rng.f32() - 0.5));
        }
    }
    let size = s.size;
    let nhwc = conv.layout == Layout::Nhwc;
    // Input [N, C, H, W] (or NHWC), weight [O, C/g, kh, kw].
    let (xn, xc, xh, xw) = match s.known(0) {
        Some(x) if x.len() == 4 => {
            if nhwc {
                (x[0], x[3], x[1], x[2])
            } else {
                (x[0], x[1], x[2], x[3])
            }
        }
        Some(_) => return None,
        None => {
            let c = match s.known(1) {
                Some(w) if w.len() == 4 => w[1] * if conv.groups > 0 { conv.groups } else { 1 },
                _ => s.rng.dim(size.min(3)),
            };
            let r = &mut *s.rng;
            (r.dim(1), c, 2 + r.dim(size), 2 + r.dim(size))
        }
    };
    if conv.groups == 0 {
        let w = s.known(1).map(<[usize]>::to_vec);
        conv.groups = match (w.as_deref(), s.rng.below(5)) {
            (Some(w), _) if w.len() == 4 && w[1] > 0 && xc % w[1] == 0 => xc / w[1],
            (Some(_), _) => return None,
            (None, 0 | 1) => xc,
            (None, 2) if xc % 2 == 0 => 2,
            _ => 1,
        };
    }
    let g = conv.groups;
    if g == 0 || xc % g != 0 {
        return None;
    }
    let w = match s.known(1) {
        Some(w) => w.to_vec(),
        None => {
            let k = s.rng.pick(&[1, 3, 3, 2]);
            let o = g * (1 + s.rng.below(2));
            let w = vec![o, xc / g, k, k];
            s.set(1, Leaf::normal(w.clone()));
            w
        }
    };
    s.set(
        0,
        Leaf::normal(if nhwc {
            vec![xn, xh, xw, xc]
        } else {
            vec![xn, xc, xh, xw]
        }),
    );
    let o = w[0];
    let x_shape = s.shape_of(0)?.to_vec();
    let plain = Op::Conv2d(Conv {
        has_bias: false,
        ..conv.clone()
    });
    let y = infer_f32(&plain, &[&x_shape, &w])?;
    if n >= 3 {
        s.set(2, Leaf::normal(vec![o]));
    }
    if fused && n == 4 {
        s.set(3, Leaf::normal(y));
    }
    Some(if fused {
        Op::FusedConv(FusedConv {
            conv: Conv {
                has_bias: n >= 3,
                ..conv
            },
            residual,
            act,
            post,
        })
    } else {
        Op::Conv2d(conv)
    })
}

/// A transposed convolution with stride 1 or 2 (sometimes with output padding), its
/// weight fitted to the input's channels.
fn sample_conv_transpose(s: &mut Sampler<'_>) -> Option<ConvTranspose> {
    let n = s.arity();
    if !(2..=3).contains(&n) {
        return None;
    }
    let ct = match s.given() {
        Some(Op::Conv2dTranspose(c)) => c.clone(),
        Some(_) => return None,
        None => {
            let r = &mut *s.rng;
            let st = r.pick(&[1, 2, 2]);
            ConvTranspose {
                strides: [st, st],
                padding: Padding::Explicit([r.below(2); 4]),
                dilations: [1, 1],
                groups: 1,
                output_padding: if st == 2 && r.below(3) == 0 {
                    [1, 1]
                } else {
                    [0, 0]
                },
                output_size: None,
                layout: Layout::Nchw,
                has_bias: n == 3,
            }
        }
    };
    let size = s.size;
    let x = match s.known(0) {
        Some(x) => x.to_vec(),
        None => {
            let c = match s.known(1) {
                Some(w) => *w.first()?,
                None => s.rng.dim(size.min(3)),
            };
            let x = vec![s.rng.dim(1), c, s.rng.dim(size), s.rng.dim(size)];
            s.set(0, Leaf::normal(x.clone()));
            x
        }
    };
    let w = match s.known(1) {
        Some(w) => w.to_vec(),
        None => {
            let w = vec![
                *x.get(1)?,
                s.rng.dim(size.min(3)),
                s.rng.pick(&[2, 3]),
                s.rng.pick(&[2, 3]),
            ];
            s.set(1, Leaf::normal(w.clone()));
            w
        }
    };
    if n == 3 {
        s.set(2, Leaf::normal(vec![*w.get(1)? * ct.groups]));
    }
    Some(ct)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    /// Direct-loop convolution, written from the definition, to check the im2col path.
    fn direct(
        x: &Array4<f32>,
        w: &Array4<f32>,
        s: usize,
        p: usize,
        d: usize,
        groups: usize,
    ) -> Array4<f32> {
        let (n, _, h, wd) = x.dim();
        let (oc, icg, kh, kw) = w.dim();
        let oh = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
        let ow = (wd + 2 * p - d * (kw - 1) - 1) / s + 1;
        let ocg = oc / groups;
        let mut y = Array4::zeros((n, oc, oh, ow));
        for b in 0..n {
            for o in 0..oc {
                let g = o / ocg;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0.0;
                        for c in 0..icg {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * s + ky * d) as isize - p as isize;
                                    let ix = (ox * s + kx * d) as isize - p as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd
                                    {
                                        acc += x[[b, g * icg + c, iy as usize, ix as usize]]
                                            * w[[o, c, ky, kx]];
                                    }
                                }
                            }
                        }
                        y[[b, o, oy, ox]] = acc;
                    }
                }
            }
        }
        y
    }

    fn ramp(shape: (usize, usize, usize, usize), k: f32) -> Array4<f32> {
        let mut i = 0.0f32;
        Array4::from_shape_simple_fn(shape, || {
            i += 1.0;
            ((i * k).sin() * 10.0).round() / 10.0
        })
    }

    #[test]
    fn im2col_conv_matches_direct_loops() {
        for &(groups, s, p, d) in &[(1, 1, 1, 1), (2, 2, 0, 1), (4, 1, 2, 2), (1, 3, 1, 1)] {
            let x = ramp((2, 4, 7, 6), 0.37);
            let w = ramp((8, 4 / groups, 3, 3), 0.71);
            let conv = Conv {
                strides: [s, s],
                padding: Padding::Explicit([p; 4]),
                dilations: [d, d],
                groups,
                layout: Layout::Nchw,
                has_bias: false,
            };
            let xt = Tensor::F32(x.clone().into_dyn());
            let wt = Tensor::F32(w.clone().into_dyn());
            let got = eval_conv(&conv, &[&xt, &wt]).unwrap();
            let want: ArrayD<f32> = direct(&x, &w, s, p, d, groups).into_dyn();
            let got = got.as_f32().unwrap();
            assert_eq!(got.shape(), want.shape());
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn transpose_conv_is_the_adjoint_of_conv() {
        // <conv(x), y> == <x, conv_transpose(y)> for the same weights.
        let x = ramp((1, 4, 6, 5), 0.3);
        let w = ramp((6, 2, 3, 3), 0.9);
        let conv = Conv {
            strides: [2, 2],
            padding: Padding::Explicit([1; 4]),
            dilations: [1, 1],
            groups: 2,
            layout: Layout::Nchw,
            has_bias: false,
        };
        let xt = Tensor::F32(x.clone().into_dyn());
        let wt = Tensor::F32(w.clone().into_dyn());
        let cx = eval_conv(&conv, &[&xt, &wt]).unwrap();
        let y = ramp((1, 6, cx.shape()[2], cx.shape()[3]), 0.5);
        // conv_transpose weights are [IC, OC/g, k, k]: the conv's [OC, IC/g] per group swapped.
        let mut wt2 = Array4::<f32>::zeros((6, 2, 3, 3));
        for g in 0..2 {
            for o in 0..3 {
                for i in 0..2 {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            wt2[[g * 3 + o, i, ky, kx]] = w[[g * 3 + o, i, ky, kx]];
                        }
                    }
                }
            }
        }
        let ct = ConvTranspose {
            strides: [2, 2],
            padding: Padding::Explicit([1; 4]),
            dilations: [1, 1],
            groups: 2,
            output_padding: [0, 0],
            output_size: Some([6, 5]),
            layout: Layout::Nchw,
            has_bias: false,
        };
        let yt = Tensor::F32(y.clone().into_dyn());
        let back = eval_conv_transpose(&ct, &[&yt, &Tensor::F32(wt2.into_dyn())]).unwrap();
        assert_eq!(back.shape(), &[1, 4, 6, 5]);
        let lhs: f32 = cx
            .as_f32()
            .unwrap()
            .iter()
            .zip(y.iter())
            .map(|(a, b)| a * b)
            .sum();
        let rhs: f32 = x
            .iter()
            .zip(back.as_f32().unwrap().iter())
            .map(|(a, b)| a * b)
            .sum();
        assert!(
            (lhs - rhs).abs() <= 1e-3 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn same_padding_keeps_size_and_checks_channels() {
        let conv = Conv {
            strides: [1, 1],
            padding: Padding::Same,
            dilations: [2, 2],
            groups: 1,
            layout: Layout::Nchw,
            has_bias: false,
        };
        let x = TypeInfo::known(crate::DType::F32, &[1, 3, 9, 9]);
        let w = TypeInfo::known(crate::DType::F32, &[5, 3, 3, 3]);
        let out = infer_conv(
            &conv,
            &[
                InferInput {
                    ty: &x,
                    value: None,
                },
                InferInput {
                    ty: &w,
                    value: None,
                },
            ],
        )
        .unwrap();
        assert_eq!(out[0].shape, Shape::known(&[1, 5, 9, 9]));
        let bad = TypeInfo::known(crate::DType::F32, &[5, 2, 3, 3]);
        assert!(infer_conv(
            &conv,
            &[
                InferInput {
                    ty: &x,
                    value: None
                },
                InferInput {
                    ty: &bad,
                    value: None
                }
            ]
        )
        .is_err());
    }
}
