//! Network-layer converters: conv and conv-transpose (bias as the channel add every conv fusion starts from), batch and layer norm, pooling, resize, pad.

use super::*;

/// 2-D spatial attributes: `name` with two values (default `d`).
pub(super) fn pair(c: &NodeCtx<'_>, name: &str, d: usize) -> Result<[usize; 2]> {
    match c.ints(name)? {
        None => Ok([d, d]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 0) => Ok([v[0] as usize, v[1] as usize]),
        Some(v) => Err(c.unsupported(format!(
            "`{}` with {name} {v:?} (Kayak runs 2-D spatial ops)",
            c.node.op_type
        ))),
    }
}

/// `auto_pad` and `pads` ([top, left, bottom, right] in ONNX) as the IR's padding, for a
/// window of `kernel` taps moved by `strides` with `dilations`. `SAME_UPPER` and
/// `SAME_LOWER` pad to `ceil(in / stride)` outputs, the odd pad at the end or the start,
/// the dilated window counted; computed from the input's size (known, or specialized on).
pub(super) fn padding(
    c: &NodeCtx<'_>,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
) -> Result<Padding> {
    match c.str_or("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" | "" => {}
        "VALID" => return Ok(Padding::Valid),
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let known = c.rank(0).and_then(|_| c.dims(0).ok());
            let Some(d) = known else {
                if mode == "SAME_UPPER" && dilations == [1, 1] {
                    return Ok(Padding::Same);
                }
                return c.dims(0).map(|_| Padding::Same);
            };
            let mut p = [0; 4];
            for i in 0..2 {
                let (n, s) = (d[2 + i], strides[i].max(1));
                let span = (kernel[i].max(1) - 1) * dilations[i] + 1;
                let need = ((n.div_ceil(s)).saturating_sub(1) * s + span).saturating_sub(n);
                let (lo, hi) = if mode == "SAME_UPPER" {
                    (need / 2, need - need / 2)
                } else {
                    (need - need / 2, need / 2)
                };
                p[2 * i] = lo;
                p[2 * i + 1] = hi;
            }
            return Ok(Padding::Explicit(p));
        }
        other => return Err(c.unsupported(format!("auto_pad {other}"))),
    }
    match c.ints("pads")? {
        None => Ok(Padding::Explicit([0; 4])),
        Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => Ok(Padding::Explicit([
            p[0] as usize,
            p[2] as usize,
            p[1] as usize,
            p[3] as usize,
        ])),
        Some(p) => Err(c.unsupported(format!(
            "`{}` with pads {p:?} (2-D, non-negative)",
            c.node.op_type
        ))),
    }
}

pub(super) fn spatial_2d(c: &NodeCtx<'_>) -> Result<()> {
    match c.rank(0) {
        Some(4) | None => Ok(()),
        Some(r) => Err(c.unsupported(format!(
            "`{}` on a rank-{r} input (Kayak runs 2-D spatial ops, rank 4)",
            c.node.op_type
        ))),
    }
}

/// A conv and its bias as the bias add on the channel axis, the form every conv fusion
/// starts from (Paddle writes it that way).
pub(super) fn with_bias(c: &NodeCtx<'_>, op: Op) -> Result<Vec<Converted>> {
    let ins = vec![c.req(0)?, c.req(1)?];
    let Some(bias) = c.input(2) else {
        return one(op, ins, c.output(0));
    };
    let t = c.tmp();
    Ok(vec![
        conv_op(op, ins, t.clone()),
        conv_op(
            Op::Binary(Binary {
                op: BinaryOp::Add,
                axis: 1,
            }),
            vec![t, bias],
            c.output(0),
        ),
    ])
}

pub(super) fn conv(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    with_bias(c, Op::Conv2d(conv_attrs(c)?))
}

/// A `Conv`-like node's attributes (also `ConvInteger`'s and `QLinearConv`'s).
pub(super) fn conv_attrs(c: &NodeCtx<'_>) -> Result<Conv> {
    spatial_2d(c)?;
    let (strides, dilations) = (pair(c, "strides", 1)?, pair(c, "dilations", 1)?);
    let kernel = match c.ints("kernel_shape")? {
        Some(k) if k.len() == 2 && k.iter().all(|&x| x > 0) => [k[0] as usize, k[1] as usize],
        _ => {
            let w = c.dims(if c.node.op_type == "QLinearConv" {
                3
            } else {
                1
            })?;
            if w.len() != 4 {
                return Err(c.bad("weight", format!("shape {w:?}: [O, I, kh, kw]")));
            }
            [w[2], w[3]]
        }
    };
    Ok(Conv {
        strides,
        padding: padding(c, kernel, strides, dilations)?,
        dilations,
        groups: c.int_or("group", 1)?.max(1) as usize,
        layout: Layout::Nchw,
        has_bias: false,
    })
}

pub(super) fn conv_transpose(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    let auto_pad = c.str_or("auto_pad", "NOTSET")?;
    if !matches!(auto_pad.as_str(), "NOTSET" | "" | "VALID") {
        return Err(c.unsupported(format!("`ConvTranspose` with auto_pad {auto_pad}")));
    }
    let output_size = match c.ints("output_shape")? {
        None => None,
        Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Some([v[0] as usize, v[1] as usize]),
        Some(v) => return Err(c.bad("output_shape", format!("{v:?}"))),
    };
    let ct = ConvTranspose {
        strides: pair(c, "strides", 1)?,
        padding: padding(c, [1, 1], [1, 1], [1, 1])?,
        dilations: pair(c, "dilations", 1)?,
        groups: c.int_or("group", 1)?.max(1) as usize,
        output_padding: pair(c, "output_padding", 0)?,
        output_size,
        layout: Layout::Nchw,
        has_bias: false,
    };
    with_bias(c, Op::Conv2dTranspose(ct))
}

pub(super) fn batch_norm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    if c.int_or("training_mode", 0)? != 0 {
        return Err(c.unsupported("`BatchNormalization` in training mode"));
    }
    c.only_outputs(1)?;
    let b = BatchNorm {
        epsilon: c.float_or("epsilon", 1e-5)?,
        layout: Layout::Nchw,
    };
    // ONNX: X, scale, B, mean, var; the IR: x, scale, bias, mean, variance.
    let ins = (0..5).map(|k| c.req(k)).collect::<Result<Vec<_>>>()?;
    one(Op::BatchNorm(b), ins, c.output(0))
}

pub(super) fn layer_norm(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    c.only_outputs(3)?;
    let rank = c.need_rank(0)?;
    let axis = c.axis("axis", c.int_or("axis", -1)?, rank)?;
    let epsilon = c.float_or("epsilon", 1e-5)?;
    let mut v = Vec::new();
    // Mean and InvStdDev, when the graph reads them: over the normalized axes, kept.
    let (mean, inv) = (c.output(1), c.output(2));
    if [&mean, &inv]
        .iter()
        .any(|o| !o.is_empty() && c.used.contains(*o))
    {
        let x = c.req(0)?;
        let axes: Vec<i64> = (axis as i64..rank as i64).collect();
        let red = |x: String, out: String| {
            conv_op(
                Op::Reduce(Reduce {
                    kind: ReduceKind::Mean,
                    axes: axes.clone(),
                    keep_dim: true,
                    reduce_all: false,
                }),
                vec![x],
                out,
            )
        };
        let m = if mean.is_empty() { c.tmp() } else { mean };
        let (d, sq, var, ve) = (c.tmp(), c.tmp(), c.tmp(), c.tmp());
        let inv = if inv.is_empty() { c.tmp() } else { inv };
        v.push(red(x.clone(), m.clone()));
        v.push(conv_op(
            Op::Binary(Binary {
                op: BinaryOp::Sub,
                axis: -1,
            }),
            vec![x, m],
            d.clone(),
        ));
        v.push(conv_op(Op::Unary(UnaryOp::Square), vec![d], sq.clone()));
        v.push(red(sq, var.clone()));
        v.push(conv_op(
            Op::Unary(UnaryOp::Scale {
                scale: 1.0,
                bias: epsilon,
                bias_after_scale: true,
            }),
            vec![var],
            ve.clone(),
        ));
        v.push(conv_op(Op::Unary(UnaryOp::Rsqrt), vec![ve], inv));
    }
    let mut ins = vec![c.req(0)?];
    // The IR's scale and bias are 1-D over the normalized elements.
    let mut flat = |name: String| {
        if axis + 1 == rank {
            return name;
        }
        let t = c.tmp();
        v.push(conv_op(
            Op::Reshape(Reshape {
                shape: vec![-1],
                shape_input: ListInput::Attr,
            }),
            vec![name],
            t.clone(),
        ));
        t
    };
    let scale = c.input(1).map(&mut flat);
    let bias = c.input(2).map(&mut flat);
    let l = LayerNorm {
        begin_norm_axis: axis,
        epsilon,
        has_scale: scale.is_some(),
        has_bias: bias.is_some(),
    };
    ins.extend(scale);
    ins.extend(bias);
    v.push(conv_op(Op::LayerNorm(l), ins, c.output(0)));
    Ok(v)
}

pub(super) fn pool(c: &NodeCtx<'_>, kind: PoolKind) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    c.only_outputs(1)?;
    if pair(c, "dilations", 1)? != [1, 1] {
        return Err(c.unsupported("pooling with dilations"));
    }
    if c.int_or("storage_order", 0)? != 0 {
        return Err(c.unsupported("`MaxPool` with storage_order=1"));
    }
    let ksize = match c.ints("kernel_shape")? {
        Some(k) if k.len() == 2 && k.iter().all(|&x| x > 0) => [k[0] as usize, k[1] as usize],
        Some(k) => return Err(c.unsupported(format!("pooling with kernel_shape {k:?}"))),
        None => return Err(c.bad("kernel_shape", "missing")),
    };
    let strides = pair(c, "strides", 1)?;
    let padding = padding(c, ksize, strides, [1, 1])?;
    let ceil_mode = c.int_or("ceil_mode", 0)? != 0;
    if ceil_mode {
        ceil_guard(c, ksize, strides, &padding)?;
    }
    let p = Pool {
        kind,
        ksize,
        strides,
        padding,
        global: false,
        adaptive: false,
        ceil_mode,
        exclusive: c.int_or("count_include_pad", 0)? == 0,
        layout: Layout::Nchw,
    };
    one(Op::Pool2d(p), vec![c.req(0)?], c.output(0))
}

/// ONNX drops a ceil-mode window that would start inside the end padding; Kayak's pooling
/// (Paddle's) keeps it. That can only happen when the end pad is at least `k − s + 1`;
/// then the input size decides, and an unknown size is refused rather than risked.
pub(super) fn ceil_guard(
    c: &NodeCtx<'_>,
    k: [usize; 2],
    s: [usize; 2],
    padding: &Padding,
) -> Result<()> {
    let Padding::Explicit([pt, pb, pl, pr]) = *padding else {
        return Ok(());
    };
    let dims = c
        .input(0)
        .and_then(|x| c.scope.type_of(&x))
        .and_then(|t| t.shape.to_known());
    for (i, (begin, end)) in [(pt, pb), (pl, pr)].into_iter().enumerate() {
        if end + s[i] < k[i] + 1 {
            continue;
        }
        let Some(d) = dims.as_ref().map(|d| d[2 + i]) else {
            return Err(c.unsupported(
                "ceil-mode pooling whose last window may start in the padding, on a dynamic size",
            ));
        };
        let span = d + begin + end;
        if span < k[i] {
            continue;
        }
        let out = (span - k[i]).div_ceil(s[i]) + 1;
        if (out - 1) * s[i] >= d + begin {
            return Err(c.unsupported(
                "ceil-mode pooling whose last window starts in the padding (ONNX drops it)",
            ));
        }
    }
    Ok(())
}

pub(super) fn global_pool(c: &NodeCtx<'_>, kind: PoolKind) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    let p = Pool {
        global: true,
        ..Pool::window(kind, [1, 1], [1, 1])
    };
    one(Op::Pool2d(p), vec![c.req(0)?], c.output(0))
}

pub(super) fn resize(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    spatial_2d(c)?;
    let mode = match c.str_or("mode", "nearest")?.as_str() {
        "nearest" => InterpMode::Nearest,
        "linear" => InterpMode::Bilinear,
        "cubic" => InterpMode::Bicubic,
        other => return Err(c.unsupported(format!("`Resize` mode `{other}`"))),
    };
    let ctm = c.str_or(
        "coordinate_transformation_mode",
        if c.opset < 11 {
            "asymmetric"
        } else {
            "half_pixel"
        },
    )?;
    let transform = match ctm.as_str() {
        "half_pixel" => CoordTransform::HalfPixel,
        "half_pixel_symmetric" => CoordTransform::HalfPixelSymmetric,
        "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
        "align_corners" => CoordTransform::AlignCorners,
        "asymmetric" => CoordTransform::Asymmetric,
        other => {
            return Err(c.unsupported(format!(
                "`Resize` with coordinate_transformation_mode `{other}`"
            )))
        }
    };
    let nearest = match c
        .str_or(
            "nearest_mode",
            if c.opset < 11 {
                "floor"
            } else {
                "round_prefer_floor"
            },
        )?
        .as_str()
    {
        "round_prefer_floor" => NearestRound::RoundPreferFloor,
        "round_prefer_ceil" => NearestRound::RoundPreferCeil,
        "floor" => NearestRound::Floor,
        "ceil" => NearestRound::Ceil,
        other => return Err(c.bad("nearest_mode", format!("unknown `{other}`"))),
    };
    if c.int_or("antialias", 0)? != 0 {
        return Err(c.unsupported("`Resize` with antialias"));
    }
    let coords = OnnxCoords {
        transform,
        nearest,
        cubic_a: c.float_or("cubic_coeff_a", -0.75)?,
        exclude_outside: c.int_or("exclude_outside", 0)? != 0,
    };
    // Opset 10: X, scales. From 11: X, roi, scales, sizes. From 18 they may cover `axes` only.
    let (scales_k, sizes_k) = if c.opset < 11 {
        (1, None)
    } else {
        (2, Some(3))
    };
    let scales = c.const_ints_f(scales_k)?;
    let sizes = match sizes_k {
        Some(k) => c.const_ints(k, "sizes")?.filter(|s| !s.is_empty()),
        None => None,
    };
    let axes: Vec<usize> = match c.ints("axes")? {
        Some(a) => a
            .iter()
            .map(|&x| c.axis("axes", x, 4))
            .collect::<Result<_>>()?,
        None => (0..4).collect(),
    };
    // Per axis of the 4-D input: the scale (≤ 0: none) and the size (< 0: none).
    let mut sc = [1f32; 4];
    let mut sz = [-1i64; 4];
    match (&sizes, &scales) {
        (Some(s), _) if s.len() == axes.len() => {
            for (&a, &v) in axes.iter().zip(s) {
                sz[a] = v;
            }
        }
        (None, Some(s)) if s.len() == axes.len() => {
            for (&a, &v) in axes.iter().zip(s) {
                sc[a] = v;
            }
        }
        (sz, sc) => {
            return Err(c.bad(
                "scales",
                format!("sizes {sz:?} / scales {sc:?} for axes {axes:?}"),
            ))
        }
    }
    let policy = c.str_or("keep_aspect_ratio_policy", "stretch")?;
    let (mut out_h, mut out_w, mut scale) = (-1, -1, vec![]);
    if sizes.is_some() {
        let d = c.dims(0);
        if policy != "stretch" {
            // One scale for the resized axes: the smallest (not_larger) or largest
            // (not_smaller) of size / input; sizes round(input · scale).
            let d = d?;
            let r = axes.iter().map(|&a| sz[a] as f64 / d[a] as f64);
            let s = match policy.as_str() {
                "not_larger" => r.fold(f64::INFINITY, f64::min),
                "not_smaller" => r.fold(0.0, f64::max),
                other => return Err(c.bad("keep_aspect_ratio_policy", format!("`{other}`"))),
            };
            for &a in &axes {
                sz[a] = (d[a] as f64 * s).round() as i64;
                sc[a] = s as f32;
            }
            scale = vec![sc[2], sc[3]];
        }
        if let Ok(d) = c.dims(0) {
            for a in 0..2 {
                if sz[a] >= 0 && sz[a] as usize != d[a] {
                    return Err(c.unsupported("`Resize` of the batch or channel axis"));
                }
            }
        }
        out_h = sz[2];
        out_w = sz[3];
        if out_h < 0 || out_w < 0 {
            // Height or width not resized: its size stays.
            let d = c.dims(0)?;
            out_h = if out_h < 0 { d[2] as i64 } else { out_h };
            out_w = if out_w < 0 { d[3] as i64 } else { out_w };
        }
    } else {
        if sc[0] != 1.0 || sc[1] != 1.0 {
            return Err(c.unsupported("`Resize` of the batch or channel axis"));
        }
        scale = vec![sc[2], sc[3]];
    }
    let i = Interp {
        mode,
        out_h,
        out_w,
        scale,
        align_corners: false,
        align_mode: 0,
        layout: Layout::Nchw,
        out_size_input: ListInput::Attr,
        scale_input: false,
        onnx: Some(coords),
    };
    one(Op::Interp(i), vec![c.req(0)?], c.output(0))
}

pub(super) fn pad(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let rank = c.need_rank(0)?;
    let (pads, value) = if c.opset < 11 {
        (
            c.ints("pads")?.ok_or_else(|| c.bad("pads", "missing"))?,
            c.float_or("value", 0.0)? as f64,
        )
    } else {
        (
            c.const_ints(1, "pads")?
                .ok_or_else(|| c.bad("pads", "missing"))?,
            c.const_scalar(2, "constant_value")?.unwrap_or(0.0),
        )
    };
    let axes: Vec<usize> = match c.const_ints(3, "axes")? {
        Some(a) => a
            .iter()
            .map(|&x| c.axis("axes", x, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() || pads.iter().any(|&p| p < 0) {
        return Err(c.unsupported(format!(
            "`Pad` with pads {pads:?} for {} axes (negative pads crop)",
            axes.len()
        )));
    }
    let mut per = vec![(0usize, 0usize); rank];
    for (k, &a) in axes.iter().enumerate() {
        per[a] = (pads[k] as usize, pads[k + axes.len()] as usize);
    }
    let mode = match c.str_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Replicate,
        "wrap" => PadMode::Circular,
        other => return Err(c.bad("mode", format!("unknown `{other}`"))),
    };
    one(
        Op::Pad(Pad {
            pads: per,
            mode,
            value,
        }),
        vec![c.req(0)?],
        c.output(0),
    )
}

/// `GridSample(X, grid)` (opset 16's bilinear/bicubic, 20's linear/cubic).
pub(super) fn grid_sample(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let mode = match c
        .str_or("mode", if c.opset < 20 { "bilinear" } else { "linear" })?
        .as_str()
    {
        "nearest" => GridMode::Nearest,
        "bilinear" | "linear" => GridMode::Linear,
        "bicubic" | "cubic" => GridMode::Cubic,
        other => return Err(c.bad("mode", format!("unknown `{other}`"))),
    };
    let padding = match c.str_or("padding_mode", "zeros")?.as_str() {
        "zeros" => GridPadding::Zeros,
        "border" => GridPadding::Border,
        "reflection" => GridPadding::Reflection,
        other => return Err(c.bad("padding_mode", format!("unknown `{other}`"))),
    };
    let g = GridSample {
        mode,
        padding,
        align_corners: c.int_or("align_corners", 0)? != 0,
    };
    one(Op::GridSample(g), vec![c.req(0)?, c.req(1)?], c.output(0))
}
