//! Joining and selecting: concat, split, stack, slice, strided_slice, gather, embedding, pad.

use super::{arity, arity_t, list_from_inputs, one, InferInput, ListInput, ListVal, OpDef};
use crate::error::{attr_err, shape_err};
use crate::sample::{Leaf, Sampler, ValKind};
use crate::shape::norm_axis;
use crate::tensor::Elem;
use crate::{DType, Dim, Error, Result, Shape, Tensor, TypeInfo};
use ndarray::{ArrayD, Axis, IxDyn, Slice as NdSlice};

/// Concatenate along an axis.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Concat {
    /// Axis (negative counts from the end).
    pub axis: i64,
}

/// Split along an axis into several outputs.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Split {
    /// Axis.
    pub axis: i64,
    /// Sizes of the parts (one may be -1); empty: `num` equal parts.
    pub sections: Vec<i64>,
    /// Number of equal parts when `sections` is empty.
    pub num: usize,
}

impl Split {
    /// How many outputs.
    pub fn num_outputs(&self) -> usize {
        if self.sections.is_empty() {
            self.num
        } else {
            self.sections.len()
        }
    }
}

/// Stack along a new axis.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Stack {
    /// Position of the new axis.
    pub axis: i64,
}

/// Slice with Python-style clamping; starts/ends may come from inputs.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Slice {
    /// Sliced axes.
    pub axes: Vec<i64>,
    /// Start per axis.
    pub starts: Vec<i64>,
    /// End per axis (exclusive).
    pub ends: Vec<i64>,
    /// Axes removed from the output (they must have size 1).
    pub decrease_axis: Vec<i64>,
    /// Where the starts come from (inputs right after `x`).
    pub starts_input: ListInput,
    /// Where the ends come from (inputs after the starts inputs).
    pub ends_input: ListInput,
}

/// Slice with strides (negative strides walk backwards).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct StridedSlice {
    /// Sliced axes.
    pub axes: Vec<i64>,
    /// Start per axis.
    pub starts: Vec<i64>,
    /// End per axis (exclusive).
    pub ends: Vec<i64>,
    /// Stride per axis (non-zero).
    pub strides: Vec<i64>,
    /// Axes removed from the output.
    pub decrease_axis: Vec<i64>,
}

/// Gather slices along an axis by index.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Gather {
    /// Axis.
    pub axis: i64,
}

/// Embedding lookup (lookup_table_v2): rows of `table` by `ids`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Embedding {
    /// Id whose output row is all zeros (none if `None`; negative counts from the end).
    pub padding_idx: Option<i64>,
}

/// How padding values are made.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PadMode {
    /// A constant.
    Constant,
    /// Mirror without repeating the edge.
    Reflect,
    /// Repeat the edge.
    Replicate,
    /// Wrap around.
    Circular,
}

/// Pad each axis before and after.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Pad {
    /// (before, after) per axis, for every axis of the input.
    pub pads: Vec<(usize, usize)>,
    /// How to fill.
    pub mode: PadMode,
    /// Fill value for [`PadMode::Constant`].
    pub value: f64,
}

impl OpDef for Concat {
    const KINDS: &'static [&'static str] = &["concat"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_concat(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_concat(self, inputs)?)
    }
}

impl OpDef for Split {
    const KINDS: &'static [&'static str] = &["split"];
    fn num_outputs(&self) -> usize {
        Split::num_outputs(self)
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_split(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        eval_split(self, inputs)
    }
    /// Two or three equal parts of the last axis.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Split> {
        let sp = s.attrs(kind, |r| {
            let parts = r.pick(&[3, 3, 2]);
            Some(Split {
                axis: -1,
                sections: vec![],
                num: parts,
            })
        })?;
        if s.free(0) {
            let parts = sp.num_outputs().max(1);
            let rank = 2 + s.rng.below(2);
            let mut sh = s.rng.shape(s.size, rank);
            if sp.sections.is_empty() {
                *sh.last_mut()? *= parts;
            } else {
                *sh.last_mut()? = sp.sections.iter().map(|&v| v.max(1) as usize).sum();
            }
            s.set(0, Leaf::normal(sh));
        }
        Some(sp)
    }
}

impl OpDef for Stack {
    const KINDS: &'static [&'static str] = &["stack"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_stack(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_stack(self, inputs)?)
    }
}

impl OpDef for Slice {
    const KINDS: &'static [&'static str] = &["slice"];
    fn sample(_: &str, s: &mut Sampler<'_>) -> Option<Slice> {
        let x = s.first_input(|r| 1 + r.below(4));
        s.attrs("slice", |r| {
            // One axis, a non-empty range in it; a length-1 range is sometimes dropped.
            let axis = r.below(x.len());
            let d = x[axis] as i64;
            let start = r.below(d as usize) as i64;
            let end = start + 1 + r.below((d - start) as usize) as i64;
            let decrease = end - start == 1 && x.len() > 1 && r.coin();
            Some(Slice {
                axes: vec![axis as i64],
                starts: vec![start],
                ends: vec![end],
                decrease_axis: if decrease { vec![axis as i64] } else { vec![] },
                starts_input: ListInput::Attr,
                ends_input: ListInput::Attr,
            })
        })
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_slice(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_slice(self, inputs)?)
    }
}

impl OpDef for StridedSlice {
    const KINDS: &'static [&'static str] = &["strided_slice"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_strided_slice(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_strided_slice(self, inputs)?)
    }
}

impl OpDef for Gather {
    const KINDS: &'static [&'static str] = &["gather"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_gather(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_gather(self, inputs)?)
    }
}

impl OpDef for Embedding {
    const KINDS: &'static [&'static str] = &["embedding"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_embedding(inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_embedding(self.padding_idx, inputs)?)
    }
    /// Ids below the table's rows, sometimes with padding id 0.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Embedding> {
        if s.arity() != 2 {
            return None;
        }
        let e = s.attrs(kind, |r| {
            Some(Embedding {
                padding_idx: if r.below(3) == 0 { Some(0) } else { None },
            })
        })?;
        let size = s.size;
        let vocab = match s.known(1) {
            Some(t) => *t.first()?,
            None => {
                let v = 2 + s.rng.below(size + 3);
                let d = 2 * s.rng.dim(size);
                s.set(1, Leaf::normal(vec![v, d]));
                v
            }
        };
        if s.free(0) {
            let shape = vec![s.rng.dim(1), s.rng.dim(size)];
            s.set(
                0,
                Leaf {
                    shape,
                    kind: ValKind::Ids(vocab),
                },
            );
        }
        Some(e)
    }
}

impl OpDef for Pad {
    const KINDS: &'static [&'static str] = &["pad"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_pad(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_pad(self, inputs)?)
    }
}

fn axis_of(op: &'static str, attr: &'static str, a: i64, rank: usize) -> Result<usize> {
    norm_axis(a, rank)
        .ok_or_else(|| attr_err(op, attr, format!("{a} out of range for rank {rank}")))
}

fn infer_concat(c: &Concat, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    if inputs.is_empty() {
        return Err(Error::Arity {
            op: "concat",
            expected: "at least 1".into(),
            got: 0,
        });
    }
    let first = inputs[0].ty;
    let r = first.shape.rank();
    let ax = axis_of("concat", "axis", c.axis, r)?;
    let mut out = first.shape.0.clone();
    for (i, inp) in inputs.iter().enumerate().skip(1) {
        let s = &inp.ty.shape;
        if inp.ty.dtype != first.dtype {
            return Err(Error::DTypeMismatch {
                op: "concat",
                lhs: first.dtype,
                rhs: inp.ty.dtype,
            });
        }
        if s.rank() != r {
            return Err(shape_err(
                "concat",
                format!("input {i} has shape {s}, input 0 {}", first.shape),
            ));
        }
        for (j, d) in s.dims().iter().enumerate() {
            if j == ax {
                out[j] = out[j].add(d);
            } else {
                out[j] = out[j].unify(d).ok_or_else(|| {
                    shape_err(
                        "concat",
                        format!("input {i} has shape {s}, input 0 {}", first.shape),
                    )
                })?;
            }
        }
    }
    Ok(vec![TypeInfo {
        dtype: first.dtype,
        shape: Shape(out),
    }])
}

fn eval_concat(c: &Concat, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    infer_concat(c, &super::concrete_inputs(&tys, inputs))?;
    let ax = axis_of("concat", "axis", c.axis, inputs[0].shape().len())?;
    fn go<T: Elem>(a: &ArrayD<T>, rest: &[&Tensor], ax: usize) -> Result<Tensor> {
        let mut views = vec![a.view()];
        for t in rest {
            views.push(T::unwrap_ref(t).expect("dtype checked").view());
        }
        ndarray::concatenate(Axis(ax), &views)
            .map(T::wrap)
            .map_err(|e| shape_err("concat", e.to_string()))
    }
    crate::with_tensor!(inputs[0], a => go(a, &inputs[1..], ax))
}

fn split_sizes(s: &Split, dim: &Dim) -> Result<Vec<Dim>> {
    if s.sections.is_empty() {
        if s.num == 0 {
            return Err(attr_err("split", "num", "must be at least 1"));
        }
        return Ok(match dim.known() {
            Some(d) if d % s.num != 0 => {
                return Err(shape_err(
                    "split",
                    format!("size {d} not divisible into {} parts", s.num),
                ))
            }
            Some(d) => vec![Dim::Known(d / s.num); s.num],
            None => vec![Dim::Unknown; s.num],
        });
    }
    let known: i64 = s.sections.iter().filter(|&&v| v >= 0).sum();
    let n_infer = s.sections.iter().filter(|&&v| v < 0).count();
    if n_infer > 1 || s.sections.iter().any(|&v| v < -1) {
        return Err(attr_err(
            "split",
            "sections",
            format!("{:?}: at most one -1 and no other negatives", s.sections),
        ));
    }
    match dim.known() {
        Some(d) => {
            let d = d as i64;
            if (n_infer == 0 && known != d) || known > d {
                return Err(shape_err(
                    "split",
                    format!("sections {:?} do not add up to {d}", s.sections),
                ));
            }
            Ok(s.sections
                .iter()
                .map(|&v| {
                    Dim::Known(if v < 0 {
                        (d - known) as usize
                    } else {
                        v as usize
                    })
                })
                .collect())
        }
        None => Ok(s
            .sections
            .iter()
            .map(|&v| {
                if v < 0 {
                    Dim::Unknown
                } else {
                    Dim::Known(v as usize)
                }
            })
            .collect()),
    }
}

fn infer_split(s: &Split, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("split", inputs, 1)?;
    let x = inputs[0].ty;
    let ax = axis_of("split", "axis", s.axis, x.shape.rank())?;
    let sizes = split_sizes(s, &x.shape.dims()[ax])?;
    Ok(sizes
        .into_iter()
        .map(|d| {
            let mut sh = x.shape.clone();
            sh.0[ax] = d;
            TypeInfo {
                dtype: x.dtype,
                shape: sh,
            }
        })
        .collect())
}

pub(super) fn eval_split(s: &Split, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity_t("split", inputs, 1)?;
    let x = inputs[0];
    let ax = axis_of("split", "axis", s.axis, x.shape().len())?;
    let sizes = split_sizes(s, &Dim::Known(x.shape()[ax]))?;
    let mut start = 0usize;
    let mut out = Vec::with_capacity(sizes.len());
    for d in sizes {
        let n = d.known().expect("concrete");
        let sl = NdSlice::from(start..start + n);
        out.push(crate::map_tensor!(x, a => a.slice_axis(Axis(ax), sl).to_owned()));
        start += n;
    }
    Ok(out)
}

fn infer_stack(s: &Stack, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    if inputs.is_empty() {
        return Err(Error::Arity {
            op: "stack",
            expected: "at least 1".into(),
            got: 0,
        });
    }
    let first = inputs[0].ty;
    let mut dims = first.shape.0.clone();
    for (i, inp) in inputs.iter().enumerate().skip(1) {
        if inp.ty.dtype != first.dtype {
            return Err(Error::DTypeMismatch {
                op: "stack",
                lhs: first.dtype,
                rhs: inp.ty.dtype,
            });
        }
        if inp.ty.shape.rank() != dims.len() {
            return Err(shape_err(
                "stack",
                format!(
                    "input {i} has shape {}, input 0 {}",
                    inp.ty.shape, first.shape
                ),
            ));
        }
        for (j, d) in inp.ty.shape.dims().iter().enumerate() {
            dims[j] = dims[j].unify(d).ok_or_else(|| {
                shape_err(
                    "stack",
                    format!(
                        "input {i} has shape {}, input 0 {}",
                        inp.ty.shape, first.shape
                    ),
                )
            })?;
        }
    }
    let ax = axis_of("stack", "axis", s.axis, dims.len() + 1)?;
    dims.insert(ax, Dim::Known(inputs.len()));
    Ok(vec![TypeInfo {
        dtype: first.dtype,
        shape: Shape(dims),
    }])
}

fn eval_stack(s: &Stack, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    infer_stack(s, &super::concrete_inputs(&tys, inputs))?;
    let ax = axis_of("stack", "axis", s.axis, inputs[0].shape().len() + 1)?;
    fn go<T: Elem>(a: &ArrayD<T>, rest: &[&Tensor], ax: usize) -> Result<Tensor> {
        let mut views = vec![a.view()];
        for t in rest {
            views.push(T::unwrap_ref(t).expect("dtype checked").view());
        }
        ndarray::stack(Axis(ax), &views)
            .map(T::wrap)
            .map_err(|e| shape_err("stack", e.to_string()))
    }
    crate::with_tensor!(inputs[0], a => go(a, &inputs[1..], ax))
}

/// Clamped `[start, end)` for a slice of an axis of size `dim` (Paddle's rule).
fn clamp_range(start: i64, end: i64, dim: usize) -> (usize, usize) {
    let d = dim as i64;
    let s = if start < 0 {
        (start + d).max(0)
    } else {
        start.min(d)
    };
    let e = if end < 0 {
        (end + d).max(0)
    } else {
        end.min(d)
    };
    (s as usize, e.max(s) as usize)
}

fn decrease(op: &'static str, dims: Vec<Dim>, decrease_axis: &[i64]) -> Result<Vec<Dim>> {
    if decrease_axis.is_empty() {
        return Ok(dims);
    }
    let r = dims.len();
    let mut drop = vec![false; r];
    for &a in decrease_axis {
        let i = axis_of(op, "decrease_axis", a, r)?;
        if let Dim::Known(n) = dims[i] {
            if n != 1 {
                return Err(shape_err(
                    op,
                    format!("decreased axis {i} has size {n}, not 1"),
                ));
            }
        }
        drop[i] = true;
    }
    Ok(dims
        .into_iter()
        .zip(drop)
        .filter(|(_, d)| !d)
        .map(|(d, _)| d)
        .collect())
}

/// Starts and ends of a slice (`None` while they depend on non-constant inputs).
type SliceBounds = (Option<Vec<i64>>, Option<Vec<i64>>);

fn slice_bounds(s: &Slice, inputs: &[InferInput<'_>]) -> Result<SliceBounds> {
    let starts = match list_from_inputs("slice", s.starts_input, 1, inputs)? {
        ListVal::Attr => Some(s.starts.clone()),
        ListVal::Known(v) => Some(v),
        ListVal::Unknown(_) => None,
    };
    let first_end = 1 + s.starts_input.count();
    let ends = match list_from_inputs("slice", s.ends_input, first_end, inputs)? {
        ListVal::Attr => Some(s.ends.clone()),
        ListVal::Known(v) => Some(v),
        ListVal::Unknown(_) => None,
    };
    for v in [&starts, &ends].into_iter().flatten() {
        if v.len() != s.axes.len() {
            return Err(attr_err(
                "slice",
                "starts/ends",
                format!("{} values for {} axes", v.len(), s.axes.len()),
            ));
        }
    }
    Ok((starts, ends))
}

fn infer_slice(s: &Slice, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity(
        "slice",
        inputs,
        1 + s.starts_input.count() + s.ends_input.count(),
    )?;
    let x = inputs[0].ty;
    let r = x.shape.rank();
    let (starts, ends) = slice_bounds(s, inputs)?;
    let mut dims = x.shape.0.clone();
    for (k, &a) in s.axes.iter().enumerate() {
        let i = axis_of("slice", "axes", a, r)?;
        dims[i] = match (&starts, &ends, x.shape.dims()[i].known()) {
            (Some(st), Some(en), Some(d)) => {
                let (b, e) = clamp_range(st[k], en[k], d);
                Dim::Known(e - b)
            }
            _ => Dim::Unknown,
        };
    }
    let dims = decrease("slice", dims, &s.decrease_axis)?;
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape: Shape(dims),
    }])
}

fn eval_slice(s: &Slice, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let ins = super::concrete_inputs(&tys, inputs);
    let out = infer_slice(s, &ins)?;
    let (starts, ends) = slice_bounds(s, &ins)?;
    let (starts, ends) = (starts.expect("concrete"), ends.expect("concrete"));
    let x = inputs[0];
    let r = x.shape().len();
    let dims = out[0].shape.to_known().expect("concrete");
    let mut ranges: Vec<(usize, usize)> = x.shape().iter().map(|&d| (0, d)).collect();
    for (k, &a) in s.axes.iter().enumerate() {
        let i = axis_of("slice", "axes", a, r)?;
        ranges[i] = clamp_range(starts[k], ends[k], x.shape()[i]);
    }
    let t = crate::map_tensor!(x, a => {
        let mut v = a.view();
        for (i, &(b, e)) in ranges.iter().enumerate() {
            v.slice_axis_inplace(Axis(i), NdSlice::from(b..e));
        }
        v.to_owned()
    });
    t.reshape(&dims)
}

/// Python slice normalization for one axis: the selected indices.
fn strided_indices(start: i64, end: i64, step: i64, dim: usize) -> Vec<usize> {
    let d = dim as i64;
    let mut out = Vec::new();
    if step > 0 {
        let (s, e) = clamp_range(start, end, dim);
        out.extend((s..e).step_by(step as usize));
    } else {
        let s = if start < 0 {
            (start + d).max(-1)
        } else {
            start.min(d - 1)
        };
        let e = if end < 0 {
            (end + d).max(-1)
        } else {
            end.min(d - 1)
        };
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    out
}

fn infer_strided_slice(s: &StridedSlice, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("strided_slice", inputs, 1)?;
    let x = inputs[0].ty;
    let r = x.shape.rank();
    let n = s.axes.len();
    if s.starts.len() != n || s.ends.len() != n || s.strides.len() != n {
        return Err(attr_err(
            "strided_slice",
            "starts/ends/strides",
            "lengths differ from axes",
        ));
    }
    if s.strides.contains(&0) {
        return Err(attr_err("strided_slice", "strides", "must be non-zero"));
    }
    let mut dims = x.shape.0.clone();
    for (k, &a) in s.axes.iter().enumerate() {
        let i = axis_of("strided_slice", "axes", a, r)?;
        dims[i] = match x.shape.dims()[i].known() {
            Some(d) => Dim::Known(strided_indices(s.starts[k], s.ends[k], s.strides[k], d).len()),
            None => Dim::Unknown,
        };
    }
    let dims = decrease("strided_slice", dims, &s.decrease_axis)?;
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape: Shape(dims),
    }])
}

fn eval_strided_slice(s: &StridedSlice, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys = [inputs.first().map(|t| t.type_info()).ok_or(Error::Arity {
        op: "strided_slice",
        expected: "1".into(),
        got: 0,
    })?];
    let out = infer_strided_slice(s, &super::concrete_inputs(&tys, inputs))?;
    let x = inputs[0];
    let r = x.shape().len();
    let mut idx: Vec<Vec<usize>> = x.shape().iter().map(|&d| (0..d).collect()).collect();
    for (k, &a) in s.axes.iter().enumerate() {
        let i = axis_of("strided_slice", "axes", a, r)?;
        idx[i] = strided_indices(s.starts[k], s.ends[k], s.strides[k], x.shape()[i]);
    }
    let t = crate::map_tensor!(x, a => {
        let mut cur = a.clone();
        for (i, ix) in idx.iter().enumerate() {
            cur = cur.select(Axis(i), ix);
        }
        cur
    });
    t.reshape(&out[0].shape.to_known().expect("concrete"))
}

fn index_dtype(op: &'static str, t: &TypeInfo, input: usize) -> Result<()> {
    match t.dtype {
        DType::I32 | DType::I64 => Ok(()),
        dtype => Err(Error::DType { op, input, dtype }),
    }
}

fn infer_gather(g: &Gather, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("gather", inputs, 2)?;
    let (x, i) = (inputs[0].ty, inputs[1].ty);
    index_dtype("gather", i, 1)?;
    if i.shape.rank() > 1 {
        return Err(shape_err(
            "gather",
            format!("index {} must be 0-D or 1-D", i.shape),
        ));
    }
    let ax = axis_of("gather", "axis", g.axis, x.shape.rank())?;
    let mut dims = x.shape.0[..ax].to_vec();
    dims.extend(i.shape.0.iter().cloned());
    dims.extend_from_slice(&x.shape.0[ax + 1..]);
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape: Shape(dims),
    }])
}

fn checked_ids(op: &'static str, t: &Tensor, bound: usize) -> Result<Vec<usize>> {
    t.to_i64_vec()
        .into_iter()
        .map(|v| {
            let w = if v < 0 { v + bound as i64 } else { v };
            if w < 0 || w >= bound as i64 {
                Err(Error::OutOfRange {
                    op,
                    reason: format!("index {v} out of range for size {bound}"),
                })
            } else {
                Ok(w as usize)
            }
        })
        .collect()
}

fn eval_gather(g: &Gather, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out = infer_gather(g, &super::concrete_inputs(&tys, inputs))?;
    let x = inputs[0];
    let ax = axis_of("gather", "axis", g.axis, x.shape().len())?;
    let ids = checked_ids("gather", inputs[1], x.shape()[ax])?;
    let t = crate::map_tensor!(x, a => a.select(Axis(ax), &ids));
    t.reshape(&out[0].shape.to_known().expect("concrete"))
}

pub(super) fn infer_embedding(inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("embedding", inputs, 2)?;
    let (ids, w) = (inputs[0].ty, inputs[1].ty);
    index_dtype("embedding", ids, 0)?;
    if w.shape.rank() != 2 {
        return Err(shape_err(
            "embedding",
            format!("table {} must be 2-D", w.shape),
        ));
    }
    let mut dims = ids.shape.0.clone();
    dims.push(w.shape.0[1].clone());
    Ok(vec![TypeInfo {
        dtype: w.dtype,
        shape: Shape(dims),
    }])
}

pub(super) fn eval_embedding(padding_idx: Option<i64>, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out = infer_embedding(&super::concrete_inputs(&tys, inputs))?;
    let (ids, w) = (inputs[0], inputs[1]);
    let rows = w.shape()[0];
    let raw = ids.to_i64_vec();
    let mut sel = Vec::with_capacity(raw.len());
    for &v in &raw {
        if v < 0 || v >= rows as i64 {
            return Err(Error::OutOfRange {
                op: "embedding",
                reason: format!("id {v} out of range for a table of {rows} rows"),
            });
        }
        sel.push(v as usize);
    }
    let pad = padding_idx.map(|p| if p < 0 { p + rows as i64 } else { p });
    let t = crate::map_tensor!(w, a => {
        let mut g = a.select(Axis(0), &sel);
        if let Some(p) = pad {
            for (k, &v) in raw.iter().enumerate() {
                if v == p {
                    g.index_axis_mut(Axis(0), k).fill(Default::default());
                }
            }
        }
        g
    });
    t.reshape(&out[0].shape.to_known().expect("concrete"))
}

fn infer_pad(p: &Pad, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("pad", inputs, 1)?;
    let x = inputs[0].ty;
    if p.pads.len() != x.shape.rank() {
        return Err(attr_err(
            "pad",
            "paddings",
            format!("{} pairs for rank {}", p.pads.len(), x.shape.rank()),
        ));
    }
    let dims = x
        .shape
        .dims()
        .iter()
        .zip(&p.pads)
        .map(|(d, &(b, a))| {
            if let (Some(n), PadMode::Reflect) = (d.known(), p.mode) {
                if b >= n || a >= n {
                    return Err(shape_err(
                        "pad",
                        format!("reflect padding ({b}, {a}) needs an axis longer than {n}"),
                    ));
                }
            }
            Ok(d.add(&Dim::Known(b + a)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape: Shape(dims),
    }])
}

fn eval_pad(p: &Pad, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys = [inputs.first().map(|t| t.type_info()).ok_or(Error::Arity {
        op: "pad",
        expected: "1".into(),
        got: 0,
    })?];
    let out = infer_pad(p, &super::concrete_inputs(&tys, inputs))?;
    let dims = out[0].shape.to_known().expect("concrete");
    let x = inputs[0];
    let src_dims = x.shape().to_vec();
    // Maps an output coordinate on one axis to a source coordinate (None: constant fill).
    let map = |o: usize, ax: usize| -> Option<usize> {
        let (b, _) = p.pads[ax];
        let n = src_dims[ax] as i64;
        let i = o as i64 - b as i64;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match p.mode {
            PadMode::Constant => None,
            PadMode::Replicate => Some(i.clamp(0, n - 1) as usize),
            PadMode::Circular => Some(i.rem_euclid(n) as usize),
            PadMode::Reflect => {
                let period = 2 * (n - 1);
                let m = if period == 0 { 0 } else { i.rem_euclid(period) };
                Some(if m < n { m } else { period - m } as usize)
            }
        }
    };
    fn go<T: Elem>(
        a: &ArrayD<T>,
        dims: &[usize],
        value: f64,
        map: &dyn Fn(usize, usize) -> Option<usize>,
    ) -> Tensor {
        let fill = T::from_f64(value);
        let out = ArrayD::from_shape_fn(IxDyn(dims), |idx| {
            let mut src = Vec::with_capacity(dims.len());
            for ax in 0..dims.len() {
                match map(idx[ax], ax) {
                    Some(s) => src.push(s),
                    None => return fill,
                }
            }
            a[IxDyn(&src)]
        });
        T::wrap(out)
    }
    Ok(crate::with_tensor!(x, a => go(a, &dims, p.value, &map)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_clamps_like_python() {
        assert_eq!(clamp_range(1, 100, 5), (1, 5));
        assert_eq!(clamp_range(-2, i64::MAX, 5), (3, 5));
        assert_eq!(clamp_range(3, 1, 5), (3, 3));
        assert_eq!(strided_indices(-1, -6, -1, 5), vec![4, 3, 2, 1, 0]);
        assert_eq!(strided_indices(0, 5, 2, 5), vec![0, 2, 4]);
    }

    #[test]
    fn pad_modes() {
        let x = Tensor::from_f32s(&[3], vec![1., 2., 3.]).unwrap();
        let run = |mode| {
            eval_pad(
                &Pad {
                    pads: vec![(2, 2)],
                    mode,
                    value: 9.0,
                },
                &[&x],
            )
            .unwrap()
            .to_f64_vec()
        };
        assert_eq!(run(PadMode::Constant), vec![9., 9., 1., 2., 3., 9., 9.]);
        assert_eq!(run(PadMode::Reflect), vec![3., 2., 1., 2., 3., 2., 1.]);
        assert_eq!(run(PadMode::Replicate), vec![1., 1., 1., 2., 3., 3., 3.]);
        assert_eq!(run(PadMode::Circular), vec![2., 3., 1., 2., 3., 1., 2.]);
    }

    #[test]
    fn embedding_rejects_bad_ids_and_zeroes_padding() {
        let w = Tensor::from_f32s(&[3, 2], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let ids = Tensor::from_i64s(&[2, 0]);
        let out = eval_embedding(Some(0), &[&ids, &w]).unwrap();
        assert_eq!(out.to_f64_vec(), vec![5., 6., 0., 0.]);
        assert!(eval_embedding(None, &[&Tensor::from_i64s(&[3]), &w]).is_err());
    }
}
