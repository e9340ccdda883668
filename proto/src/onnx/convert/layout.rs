//! Layout and indexing converters: gather, reshape (static targets from shape tensors), split, slice.

use super::*;

pub(super) fn gather(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let (x, idx) = (c.req(0)?, c.req(1)?);
    let rank = c.need_rank(0)?;
    let axis = c.axis("axis", c.int_or("axis", 0)?, rank)?;
    let idx_rank = c.need_rank(1)?;
    if idx_rank <= 1 {
        let g = Gather { axis: axis as i64 };
        return one(Op::Gather(g), vec![x, idx], c.output(0));
    }
    if rank == 2 && axis == 0 {
        // Rows of a table by an index tensor of any rank: an embedding lookup.
        let e = Embedding { padding_idx: None };
        return one(Op::Embedding(e), vec![idx, x], c.output(0));
    }
    // Otherwise through a 1-D index, when the shapes are static.
    let known = |n: &str| c.scope.type_of(n).and_then(|t| t.shape.to_known());
    let (Some(xd), Some(id)) = (known(&x), known(&idx)) else {
        return Err(c.unsupported(format!(
            "`Gather` of a rank-{rank} input on axis {axis} by a rank-{idx_rank} index of dynamic shape"
        )));
    };
    let mut shape: Vec<i64> = xd[..axis].iter().map(|&d| d as i64).collect();
    shape.extend(id.iter().map(|&d| d as i64));
    shape.extend(xd[axis + 1..].iter().map(|&d| d as i64));
    let (flat, g) = (c.tmp(), c.tmp());
    let reshape = |shape: Vec<i64>| {
        Op::Reshape(Reshape {
            shape,
            shape_input: ListInput::Attr,
        })
    };
    Ok(vec![
        conv_op(reshape(vec![-1]), vec![idx], flat.clone()),
        conv_op(
            Op::Gather(Gather { axis: axis as i64 }),
            vec![x, flat],
            g.clone(),
        ),
        conv_op(reshape(shape), vec![g], c.output(0)),
    ])
}

pub(super) fn reshape(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    if c.opset < 5 {
        return Err(c.unsupported("`Reshape` before opset 5"));
    }
    let allowzero = c.int_or("allowzero", 0)? != 0;
    match c.const_ints(1, "shape") {
        Ok(Some(shape)) => {
            if allowzero && shape.contains(&0) {
                return Err(c.unsupported("`Reshape` with allowzero=1 and a 0 in the shape"));
            }
            let r = Reshape {
                shape,
                shape_input: ListInput::Attr,
            };
            one(Op::Reshape(r), vec![x], c.output(0))
        }
        _ => {
            let shape = c.req(1)?;
            if allowzero {
                return Err(c.needs_value(1, "shape (with allowzero=1)"));
            }
            // A target computed from shapes and constants: static, with copied dims as 0.
            if let Some(target) = c.scope.reshape_target(&shape, &x).filter(|_| !allowzero) {
                let r = Reshape {
                    shape: target,
                    shape_input: ListInput::Attr,
                };
                return one(Op::Reshape(r), vec![x], c.output(0));
            }
            let r = Reshape {
                shape: vec![],
                shape_input: ListInput::Tensor,
            };
            one(Op::Reshape(r), vec![x, shape], c.output(0))
        }
    }
}

pub(super) fn split(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let axis = c.int_or("axis", 0)?;
    let outs: Vec<String> = c.node.output.clone();
    if outs.iter().any(String::is_empty) {
        return Err(c.unsupported("`Split` with an unnamed output"));
    }
    let sections = if c.opset >= 13 {
        c.const_ints(1, "split")?
    } else {
        c.ints("split")?
    };
    let s = match sections {
        Some(sec) => Split {
            axis,
            sections: sec,
            num: 0,
        },
        None => {
            // Opset 18 on: parts of ceil(d / n), the last one smaller when d does not divide.
            let n = outs.len();
            let d = match c.rank(0) {
                Some(r) => c.dims(0)?[c.axis("axis", axis, r)?],
                None => 0,
            };
            if n > 0 && d % n != 0 {
                let part = d.div_ceil(n);
                let mut sec = vec![part as i64; n - 1];
                sec.push(d as i64 - (part * (n - 1)) as i64);
                Split {
                    axis,
                    sections: sec,
                    num: 0,
                }
            } else {
                Split {
                    axis,
                    sections: vec![],
                    num: n,
                }
            }
        }
    };
    if s.num_outputs() != outs.len() {
        return Err(c.bad(
            "split",
            format!("{} parts for {} outputs", s.num_outputs(), outs.len()),
        ));
    }
    Ok(vec![Converted {
        op: Op::Split(s),
        inputs: vec![c.req(0)?],
        outputs: outs,
    }])
}

pub(super) fn slice(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let x = c.req(0)?;
    let (starts, ends, axes, steps) = if c.opset < 10 {
        (c.ints("starts")?, c.ints("ends")?, c.ints("axes")?, None)
    } else {
        (
            c.const_ints(1, "starts").ok().flatten(),
            c.const_ints(2, "ends").ok().flatten(),
            c.const_ints(3, "axes")?,
            c.const_ints(4, "steps")?,
        )
    };
    let n = match (&starts, &ends) {
        (Some(s), _) => s.len(),
        (_, Some(e)) => e.len(),
        _ => {
            let rank = c.rank(1).filter(|&r| r == 1);
            let t = rank.and_then(|_| c.scope.type_of(&c.input(1)?)?.shape.to_known());
            t.map(|d| d[0])
                .ok_or_else(|| c.needs_value(1, "starts (of unknown length)"))?
        }
    };
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    if axes.len() != n {
        return Err(c.bad("axes", format!("{} axes for {n} starts", axes.len())));
    }
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if steps.len() != n || steps.contains(&0) {
        return Err(c.bad("steps", format!("{steps:?}")));
    }
    if steps.iter().any(|&s| s != 1) {
        let k = if starts.is_none() { 1 } else { 2 };
        let (Some(starts), Some(ends)) = (starts, ends) else {
            return Err(c.needs_value(k, "starts and ends (with steps)"));
        };
        let s = StridedSlice {
            axes,
            starts,
            ends,
            strides: steps,
            decrease_axis: vec![],
        };
        return one(Op::StridedSlice(s), vec![x], c.output(0));
    }
    let mut ins = vec![x];
    let (starts, starts_input) = match starts {
        Some(s) => (s, ListInput::Attr),
        None => {
            ins.push(c.req(1)?);
            (vec![], ListInput::Tensor)
        }
    };
    let (ends, ends_input) = match ends {
        Some(e) => (e, ListInput::Attr),
        None => {
            ins.push(c.req(2)?);
            (vec![], ListInput::Tensor)
        }
    };
    let s = Slice {
        axes,
        starts,
        ends,
        decrease_axis: vec![],
        starts_input,
        ends_input,
    };
    one(Op::Slice(s), ins, c.output(0))
}

/// `DepthToSpace` (modes DCR and CRD) and `SpaceToDepth` on `[N, C, H, W]`: a reshape to
/// six axes, a transpose, a reshape back.
pub(super) fn depth_space(c: &NodeCtx<'_>, to_space: bool) -> Result<Vec<Converted>> {
    let d = c.dims(0)?;
    let b = c.int_or("blocksize", 0)?;
    if d.len() != 4 || b < 1 {
        return Err(c.bad(
            "blocksize",
            format!("{b} on shape {d:?} (rank 4, blocksize ≥ 1)"),
        ));
    }
    let b = b as usize;
    let (n, ch, h, w) = (d[0], d[1], d[2], d[3]);
    let (six, perm, out): (Vec<usize>, Vec<usize>, Vec<usize>) = if to_space {
        if ch % (b * b) != 0 {
            return Err(c.bad(
                "blocksize",
                format!("{ch} channels are not a multiple of {b}²"),
            ));
        }
        let cc = ch / (b * b);
        let out = vec![n, cc, h * b, w * b];
        match c.str_or("mode", "DCR")?.as_str() {
            "DCR" => (vec![n, b, b, cc, h, w], vec![0, 3, 4, 1, 5, 2], out),
            "CRD" => (vec![n, cc, b, b, h, w], vec![0, 1, 4, 2, 5, 3], out),
            m => return Err(c.bad("mode", format!("`{m}` (DCR or CRD)"))),
        }
    } else {
        if h % b != 0 || w % b != 0 {
            return Err(c.bad("blocksize", format!("{h}×{w} is not a multiple of {b}")));
        }
        (
            vec![n, ch, h / b, b, w / b, b],
            vec![0, 3, 5, 1, 2, 4],
            vec![n, ch * b * b, h / b, w / b],
        )
    };
    let reshape = |dims: Vec<usize>| {
        Op::Reshape(Reshape {
            shape: dims.iter().map(|&x| x as i64).collect(),
            shape_input: ListInput::Attr,
        })
    };
    let (a, t) = (c.tmp(), c.tmp());
    Ok(vec![
        conv_op(reshape(six), vec![c.req(0)?], a.clone()),
        conv_op(Op::Transpose(Transpose { perm }), vec![a], t.clone()),
        conv_op(reshape(out), vec![t], c.output(0)),
    ])
}

/// `Tile(x, repeats)`: each axis `d` of size `n` becomes `r·n` by a broadcast of `x`
/// shaped `[1, n₀, 1, n₁, …]` to `[r₀, n₀, r₁, n₁, …]` and a reshape.
pub(super) fn tile(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let d = c.dims(0)?;
    let r = c
        .const_ints(1, "repeats")?
        .ok_or_else(|| c.bad("repeats", "missing"))?;
    if r.len() != d.len() || r.iter().any(|&v| v < 0) {
        return Err(c.bad("repeats", format!("{r:?} for shape {d:?}")));
    }
    let dt = c.dtype(0)?;
    let reshape = |shape: Vec<i64>| {
        Op::Reshape(Reshape {
            shape,
            shape_input: ListInput::Attr,
        })
    };
    let split: Vec<i64> = d.iter().flat_map(|&n| [1, n as i64]).collect();
    let big: Vec<i64> = d
        .iter()
        .zip(&r)
        .flat_map(|(&n, &k)| [k, n as i64])
        .collect();
    let out: Vec<i64> = d.iter().zip(&r).map(|(&n, &k)| k * n as i64).collect();
    let zeros = FillConstant {
        shape: big,
        value: 0.0,
        dtype: dt,
        shape_input: ListInput::Attr,
        value_input: false,
    };
    let (a, z, b) = (c.tmp(), c.tmp(), c.tmp());
    Ok(vec![
        conv_op(reshape(split), vec![c.req(0)?], a.clone()),
        conv_op(Op::FillConstant(zeros), vec![], z.clone()),
        conv_op(bin(BinaryOp::Add), vec![a, z], b.clone()),
        conv_op(reshape(out), vec![b], c.output(0)),
    ])
}

/// `CenterCropPad(x, shape)`: each axis of `axes` (default all) cropped or zero-padded to
/// its target size about the centre (the odd element at the end: crops start at
/// `(d − t) / 2`, pads put `(t − d) / 2` first).
pub(super) fn center_crop_pad(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let d = c.dims(0)?;
    let target = c
        .const_ints(1, "shape")?
        .ok_or_else(|| c.bad("shape", "missing"))?;
    let axes: Vec<usize> = match c.ints("axes")? {
        Some(a) => a
            .iter()
            .map(|&x| c.axis("axes", x, d.len()))
            .collect::<Result<_>>()?,
        None => (0..d.len()).collect(),
    };
    if axes.len() != target.len() || target.iter().any(|&t| t < 0) {
        return Err(c.bad("shape", format!("{target:?} for axes {axes:?}")));
    }
    let (mut sl_axes, mut starts, mut ends) = (vec![], vec![], vec![]);
    let mut pads = vec![(0usize, 0usize); d.len()];
    for (&a, &t) in axes.iter().zip(&target) {
        let t = t as usize;
        if t < d[a] {
            let s = (d[a] - t) / 2;
            sl_axes.push(a as i64);
            starts.push(s as i64);
            ends.push((s + t) as i64);
        } else if t > d[a] {
            let p = (t - d[a]) / 2;
            pads[a] = (p, t - d[a] - p);
        }
    }
    let mut x = c.req(0)?;
    let mut v = Vec::new();
    let padded = pads.iter().any(|&p| p != (0, 0));
    if !sl_axes.is_empty() {
        let out = if padded { c.tmp() } else { c.output(0) };
        let s = Slice {
            axes: sl_axes,
            starts,
            ends,
            decrease_axis: vec![],
            starts_input: ListInput::Attr,
            ends_input: ListInput::Attr,
        };
        v.push(conv_op(Op::Slice(s), vec![x], out.clone()));
        x = out;
    }
    if padded || v.is_empty() {
        let p = Pad {
            pads,
            mode: PadMode::Constant,
            value: 0.0,
        };
        v.push(conv_op(Op::Pad(p), vec![x], c.output(0)));
    }
    Ok(v)
}
