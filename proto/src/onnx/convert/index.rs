//! Indexing converters: gathers, scatters and `TopK` onto their IR ops; and ops built on
//! index grids: the arg-reductions (`select_last_index` by reversing the axis), `Hardmax`,
//! `OneHot`, `Trilu`, `EyeLike`. The grids (`Range` of constants shaped along an axis)
//! fold to constants at import, so each op runs as a compare and a select.

use super::*;

/// Emits ops into `v`, each with a fresh output name.
pub(super) struct Emit<'c, 'a> {
    c: &'c NodeCtx<'a>,
    pub v: Vec<Converted>,
}

impl<'c, 'a> Emit<'c, 'a> {
    pub fn new(c: &'c NodeCtx<'a>) -> Self {
        Emit { c, v: Vec::new() }
    }

    /// `op(ins)` into a fresh name.
    pub fn op(&mut self, op: Op, ins: Vec<String>) -> String {
        let out = self.c.tmp();
        self.v.push(conv_op(op, ins, out.clone()));
        out
    }

    /// `op(ins)` into `out` (the node's output), ending the ops.
    pub fn last(mut self, op: Op, ins: Vec<String>, out: String) -> Vec<Converted> {
        self.v.push(conv_op(op, ins, out));
        self.v
    }

    /// A scalar constant.
    pub fn scalar(&mut self, value: f64, dtype: DType) -> String {
        self.op(scalar(value, dtype), vec![])
    }

    /// `[0, 1, …, n−1]` (i64) laid along `axis` of a rank-`rank` tensor (size 1 elsewhere).
    pub fn iota(&mut self, n: usize, axis: usize, rank: usize) -> String {
        let (a, b, s) = (
            self.scalar(0.0, DType::I64),
            self.scalar(n as f64, DType::I64),
            self.scalar(1.0, DType::I64),
        );
        let r = self.op(Op::Range(Range {}), vec![a, b, s]);
        let mut shape = vec![1i64; rank];
        shape[axis] = n as i64;
        self.op(
            Op::Reshape(Reshape {
                shape,
                shape_input: ListInput::Attr,
            }),
            vec![r],
        )
    }
}

impl NodeCtx<'_> {
    /// The static dims of input `k`; unknown ones make the model specialize on shapes.
    pub(super) fn dims(&self, k: usize) -> Result<Vec<usize>> {
        let name = self.req(k)?;
        self.scope
            .type_of(&name)
            .and_then(|t| t.shape.to_known())
            .ok_or_else(|| crate::Error::NeedsInputValues {
                inputs: vec![],
                what: format!("the shape of input {k} of `{}`", self.node.op_type),
                at: self.loc.clone(),
            })
    }

    /// The dtype of input `k`.
    pub(super) fn dtype(&self, k: usize) -> Result<DType> {
        let name = self.req(k)?;
        self.scope.type_of(&name).map(|t| t.dtype).ok_or_else(|| {
            self.unsupported(format!(
                "`{}` on an input of unknown type",
                self.node.op_type
            ))
        })
    }
}

/// `ArgMax`, or `ArgMin` as the argmax of `−x`; `select_last_index` takes the argmax of
/// the axis reversed, counted from the end.
pub(super) fn arg_reduce(c: &NodeCtx<'_>, min: bool) -> Result<Vec<Converted>> {
    let mut e = Emit::new(c);
    let mut x = c.req(0)?;
    let axis = c.int_or("axis", 0)?;
    let keepdims = c.int_or("keepdims", 1)? != 0;
    let last = c.int_or("select_last_index", 0)? != 0;
    if min {
        x = e.op(scale(-1.0, 0.0), vec![x]);
    }
    let am = ArgMax {
        axis,
        keepdims,
        flatten: false,
        dtype: DType::I64,
    };
    if !last {
        return Ok(e.last(Op::ArgMax(am), vec![x], c.output(0)));
    }
    let dims = c.dims(0)?;
    let ax = c.axis("axis", axis, dims.len())?;
    let n = dims[ax];
    // Indices n−1, …, 0 along the axis.
    let (a, b, s) = (
        e.scalar(n as f64 - 1.0, DType::I64),
        e.scalar(-1.0, DType::I64),
        e.scalar(-1.0, DType::I64),
    );
    let rev = e.op(Op::Range(Range {}), vec![a, b, s]);
    let xr = e.op(Op::Gather(Gather { axis: ax as i64 }), vec![x, rev]);
    let i = e.op(Op::ArgMax(am), vec![xr]);
    let top = e.scalar(n as f64 - 1.0, DType::I64);
    Ok(e.last(bin(BinaryOp::Sub), vec![top, i], c.output(0)))
}

/// `Hardmax`: 1 at the first maximum along the axis, 0 elsewhere (before opset 13, of
/// the input coerced to 2-D at `axis`).
pub(super) fn hardmax(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let dims = c.dims(0)?;
    let rank = dims.len();
    let dt = c.dtype(0)?;
    let mut e = Emit::new(c);
    let mut x = c.req(0)?;
    let opset13 = c.opset >= 13;
    let axis = c.axis(
        "axis",
        c.int_or("axis", if opset13 { -1 } else { 1 })?,
        rank,
    )?;
    let (axis, n, r) = if opset13 {
        (axis, dims[axis], rank)
    } else {
        x = e.op(Op::Flatten(Flatten::To2d { axis }), vec![x]);
        (1, dims[axis..].iter().product(), 2)
    };
    let am = e.op(
        Op::ArgMax(ArgMax {
            axis: axis as i64,
            keepdims: true,
            flatten: false,
            dtype: DType::I64,
        }),
        vec![x],
    );
    let iota = e.iota(n, axis, r);
    let hit = e.op(cmp(CmpOp::Eq), vec![iota, am]);
    if opset13 {
        return Ok(e.last(Op::Cast(Cast { to: dt }), vec![hit], c.output(0)));
    }
    let h = e.op(Op::Cast(Cast { to: dt }), vec![hit]);
    let shape = dims.iter().map(|&d| d as i64).collect();
    Ok(e.last(
        Op::Reshape(Reshape {
            shape,
            shape_input: ListInput::Attr,
        }),
        vec![h],
        c.output(0),
    ))
}

/// `OneHot(indices, depth, values)`: `values[1]` where the index along the new axis
/// equals the (wrapped) index, `values[0]` elsewhere.
pub(super) fn one_hot(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let rank = c.need_rank(0)? + 1;
    let axis = c.axis("axis", c.int_or("axis", -1)?, rank)?;
    let depth = c
        .const_scalar(1, "depth")?
        .ok_or_else(|| c.bad("depth", "missing"))?;
    if !(depth >= 1.0 && depth <= (1u64 << 31) as f64) {
        return Err(c.bad("depth", format!("{depth}")));
    }
    let depth = depth as usize;
    let values = c
        .const_ints_f(2)?
        .filter(|v| v.len() == 2)
        .ok_or_else(|| c.bad("values", "needs two values, [off, on]"))?;
    let vdt = c.dtype(2)?;
    let mut e = Emit::new(c);
    // Indices as integers (they may be floats), negative ones counted from the end.
    let idx = e.op(Op::Cast(Cast { to: DType::I64 }), vec![c.req(0)?]);
    let zero = e.scalar(0.0, DType::I64);
    let neg = e.op(cmp(CmpOp::Lt), vec![idx.clone(), zero]);
    let d = e.scalar(depth as f64, DType::I64);
    let wrapped = e.op(bin(BinaryOp::Add), vec![idx.clone(), d]);
    let idx = e.op(Op::Where(Where), vec![neg, wrapped, idx]);
    let idx = e.op(
        Op::Unsqueeze(Unsqueeze {
            axes: vec![axis as i64],
        }),
        vec![idx],
    );
    let iota = e.iota(depth, axis, rank);
    let hit = e.op(cmp(CmpOp::Eq), vec![idx, iota]);
    let on = e.scalar(values[1] as f64, vdt);
    let off = e.scalar(values[0] as f64, vdt);
    Ok(e.last(Op::Where(Where), vec![hit, on, off], c.output(0)))
}

/// `j − i` over the last two axes of a `[.., n, m]` tensor (rank 2).
fn diagonal_offsets(e: &mut Emit<'_, '_>, n: usize, m: usize) -> String {
    let rows = e.iota(n, 0, 2);
    let cols = e.iota(m, 1, 2);
    e.op(bin(BinaryOp::Sub), vec![cols, rows])
}

/// `Trilu(x, k)`: the upper (`j − i ≥ k`) or lower (`j − i ≤ k`) triangle of the last two
/// axes, zeros elsewhere.
pub(super) fn trilu(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let dims = c.dims(0)?;
    if dims.len() < 2 {
        return Err(c.bad("input", "needs rank 2 or more"));
    }
    let (n, m) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let k = c.const_scalar(1, "k")?.unwrap_or(0.0);
    let upper = c.int_or("upper", 1)? != 0;
    let dt = c.dtype(0)?;
    let mut e = Emit::new(c);
    let off = diagonal_offsets(&mut e, n, m);
    let kc = e.scalar(k, DType::I64);
    let keep = e.op(
        cmp(if upper { CmpOp::Ge } else { CmpOp::Le }),
        vec![off, kc],
    );
    let zero = e.scalar(0.0, dt);
    Ok(e.last(Op::Where(Where), vec![keep, c.req(0)?, zero], c.output(0)))
}

/// `EyeLike(x)`: ones on diagonal `k` of a matrix shaped as `x`.
pub(super) fn eye_like(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let dims = c.dims(0)?;
    if dims.len() != 2 {
        return Err(c.bad(
            "input",
            format!("rank {}, EyeLike takes rank 2", dims.len()),
        ));
    }
    let dt = match c.int("dtype")? {
        Some(t) => super::super::tensor::dtype(t as i32)
            .map_err(|t| c.unsupported(format!("`EyeLike` to {t}")))?,
        None => c.dtype(0)?,
    };
    let k = c.int_or("k", 0)?;
    let mut e = Emit::new(c);
    let off = diagonal_offsets(&mut e, dims[0], dims[1]);
    let kc = e.scalar(k as f64, DType::I64);
    let on = e.op(cmp(CmpOp::Eq), vec![off, kc]);
    Ok(e.last(Op::Cast(Cast { to: dt }), vec![on], c.output(0)))
}

/// A broadcasting comparison.
pub(super) fn cmp(op: CmpOp) -> Op {
    Op::Compare(Compare { op, axis: -1 })
}

/// A scatter's `reduction` attribute.
fn reduction(c: &NodeCtx<'_>) -> Result<ScatterReduce> {
    Ok(match c.str_or("reduction", "none")?.as_str() {
        "none" => ScatterReduce::None,
        "add" => ScatterReduce::Add,
        "mul" => ScatterReduce::Mul,
        "max" => ScatterReduce::Max,
        "min" => ScatterReduce::Min,
        other => return Err(c.bad("reduction", format!("unknown `{other}`"))),
    })
}

/// `ScatterElements` (and the older `Scatter`): data, indices, updates.
pub(super) fn scatter_elements(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let s = ScatterElements {
        axis: c.int_or("axis", 0)?,
        reduction: reduction(c)?,
    };
    one(
        Op::ScatterElements(s),
        vec![c.req(0)?, c.req(1)?, c.req(2)?],
        c.output(0),
    )
}

/// `ScatterND`: data, indices, updates.
pub(super) fn scatter_nd(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let s = ScatterNd {
        reduction: reduction(c)?,
    };
    one(
        Op::ScatterNd(s),
        vec![c.req(0)?, c.req(1)?, c.req(2)?],
        c.output(0),
    )
}

/// `GatherND`: data, indices.
pub(super) fn gather_nd(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let b = c.int_or("batch_dims", 0)?;
    let g = GatherNd {
        batch_dims: usize::try_from(b).map_err(|_| c.bad("batch_dims", format!("{b}")))?,
    };
    one(Op::GatherNd(g), vec![c.req(0)?, c.req(1)?], c.output(0))
}

/// `TopK(x, k)` (before opset 10, `k` an attribute): values and indices.
pub(super) fn top_k(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let k = if c.opset < 10 {
        c.int("k")?.ok_or_else(|| c.bad("k", "missing"))?
    } else {
        let k = c.const_ints(1, "k")?.ok_or_else(|| c.bad("k", "missing"))?;
        match k[..] {
            [k] => k,
            _ => return Err(c.bad("k", format!("{k:?}: one value"))),
        }
    };
    let t = TopK {
        k: usize::try_from(k).map_err(|_| c.bad("k", format!("{k}")))?,
        axis: c.int_or("axis", -1)?,
        largest: c.int_or("largest", 1)? != 0,
    };
    Ok(vec![Converted {
        op: Op::TopK(t),
        inputs: vec![c.req(0)?],
        outputs: (0..2)
            .map(|k| match c.output(k) {
                o if o.is_empty() => c.tmp(),
                o => o,
            })
            .collect(),
    }])
}
