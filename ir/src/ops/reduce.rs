//! Ops along an axis: softmax, reductions, arg_max, cumsum.

use super::{arity, arity_t, check_float, float_in, float_out, one, InferInput, OpDef};
use crate::error::attr_err;
use crate::sample::{Sampler, ValKind};
use crate::shape::norm_axis;
use crate::tensor::Elem;
use crate::{DType, Dim, Error, Result, Shape, Tensor, TypeInfo};
use ndarray::{ArrayD, Axis, IxDyn};

/// Softmax along one axis.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Softmax {
    /// Axis (negative counts from the end).
    pub axis: i64,
}

/// Which reduction.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    /// Sum.
    Sum,
    /// Mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Product.
    Prod,
}

impl ReduceKind {
    /// IR name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "reduce_sum",
            ReduceKind::Mean => "reduce_mean",
            ReduceKind::Max => "reduce_max",
            ReduceKind::Min => "reduce_min",
            ReduceKind::Prod => "reduce_prod",
        }
    }
}

/// A reduction over some axes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Reduce {
    /// Which reduction.
    pub kind: ReduceKind,
    /// Reduced axes; empty (or `reduce_all`): every axis.
    pub axes: Vec<i64>,
    /// Keep reduced axes with size 1.
    pub keep_dim: bool,
    /// Reduce over every axis.
    pub reduce_all: bool,
}

/// Index of the maximum along an axis.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct ArgMax {
    /// Axis.
    pub axis: i64,
    /// Keep the reduced axis with size 1.
    pub keepdims: bool,
    /// Flatten the input first (axis ignored).
    pub flatten: bool,
    /// Output dtype (i32 or i64).
    pub dtype: DType,
}

impl OpDef for Softmax {
    const KINDS: &'static [&'static str] = &["softmax"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_softmax(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_softmax(self, inputs)?)
    }
    /// Mostly the last axis; otherwise any, counted from either end.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Softmax> {
        s.same_shape(ValKind::Normal);
        let rank = s.shape_of(0)?.len();
        s.attrs(kind, |r| {
            Some(Softmax {
                axis: if r.below(5) < 3 {
                    -1
                } else {
                    r.below(rank) as i64 - if r.coin() { rank as i64 } else { 0 }
                },
            })
        })
    }
}

impl OpDef for Reduce {
    const KINDS: &'static [&'static str] = &[
        "reduce_sum",
        "reduce_mean",
        "reduce_max",
        "reduce_min",
        "reduce_prod",
    ];
    fn kind(&self) -> &'static str {
        self.kind.name()
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_reduce(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_reduce(self, inputs)?)
    }
    /// One axis (often the last), mostly keeping it.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Reduce> {
        let x = s.first_input(|r| 1 + r.below(3));
        let rk = [
            ReduceKind::Sum,
            ReduceKind::Mean,
            ReduceKind::Max,
            ReduceKind::Min,
            ReduceKind::Prod,
        ]
        .into_iter()
        .find(|k| k.name() == kind)?;
        s.attrs(kind, |r| {
            let axes = if r.coin() {
                vec![-1]
            } else {
                vec![r.below(x.len()) as i64]
            };
            Some(Reduce {
                kind: rk,
                axes,
                keep_dim: r.below(4) > 0,
                reduce_all: false,
            })
        })
    }
}

impl OpDef for ArgMax {
    const KINDS: &'static [&'static str] = &["arg_max"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_arg_max(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_arg_max(self, inputs)?)
    }
}

/// Cumulative sum along an axis (Paddle's `cumsum`): element `i` is the sum of the
/// elements up to it — from the axis' start, or from its end with `reverse`; without
/// element `i` itself with `exclusive` (so the first is 0). With `flatten` the input is
/// flattened first and the output is 1-D. Floats are summed in f64 and rounded once;
/// integers wrap.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cumsum {
    /// Axis (negative counts from the end; ignored with `flatten`).
    pub axis: i64,
    /// Flatten the input first.
    pub flatten: bool,
    /// Leave each element out of its own sum.
    pub exclusive: bool,
    /// Sum from the end of the axis.
    pub reverse: bool,
}

impl OpDef for Cumsum {
    const KINDS: &'static [&'static str] = &["cumsum"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("cumsum", inputs, 1)?;
        let t = inputs[0].ty;
        if !matches!(t.dtype, DType::F32 | DType::F64 | DType::I32 | DType::I64) {
            return Err(Error::DType {
                op: "cumsum",
                input: 0,
                dtype: t.dtype,
            });
        }
        if self.flatten {
            return Ok(vec![TypeInfo {
                dtype: t.dtype,
                shape: Shape(vec![t.shape.numel()]),
            }]);
        }
        let r = t.shape.rank();
        norm_axis(self.axis, r).ok_or_else(|| {
            attr_err(
                "cumsum",
                "axis",
                format!("{} out of range for rank {r}", self.axis),
            )
        })?;
        Ok(vec![t.clone()])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let ty = self.infer(&super::concrete_inputs(&[inputs[0].type_info()], inputs))?;
        let x = if self.flatten {
            inputs[0].reshape(&[inputs[0].len()])?
        } else {
            inputs[0].clone()
        };
        let axis = if self.flatten {
            0
        } else {
            norm_axis(self.axis, x.shape().len()).expect("checked by infer")
        };
        let (ex, rev) = (self.exclusive, self.reverse);
        let out = match &x {
            Tensor::F32(a) => Tensor::F32(scan(
                a,
                axis,
                ex,
                rev,
                0f64,
                |s, v| s + v as f64,
                |s| s as f32,
            )),
            Tensor::F64(a) => Tensor::F64(scan(a, axis, ex, rev, 0f64, |s, v| s + v, |s| s)),
            Tensor::I32(a) => Tensor::I32(scan(a, axis, ex, rev, 0i32, i32::wrapping_add, |s| s)),
            Tensor::I64(a) => Tensor::I64(scan(a, axis, ex, rev, 0i64, i64::wrapping_add, |s| s)),
            t => {
                return Err(Error::DType {
                    op: "cumsum",
                    input: 0,
                    dtype: t.dtype(),
                })
            }
        };
        debug_assert_eq!(out.type_info(), ty[0]);
        one(out)
    }
    /// Any axis, counted from either end; flattened now and then; exclusive and reverse
    /// either way.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Cumsum> {
        if s.arity() != 1 {
            return None;
        }
        let x = s.first_input(|r| 1 + r.below(3));
        let rank = x.len() as i64;
        s.attrs(kind, |r| {
            Some(Cumsum {
                axis: r.below(rank as usize) as i64 - if r.coin() { rank } else { 0 },
                flatten: r.below(4) == 0,
                exclusive: r.coin(),
                reverse: r.coin(),
            })
        })
    }
}

/// The running sums of `a` along `axis`, accumulated as `S` from `zero` with `add` and
/// written back with `out`.
fn scan<T: Copy, S: Copy>(
    a: &ArrayD<T>,
    axis: usize,
    exclusive: bool,
    reverse: bool,
    zero: S,
    add: impl Fn(S, T) -> S,
    out: impl Fn(S) -> T,
) -> ArrayD<T> {
    let mut y = a.clone();
    for mut lane in y.lanes_mut(Axis(axis)) {
        let n = lane.len();
        let mut acc = zero;
        for step in 0..n {
            let i = if reverse { n - 1 - step } else { step };
            let v = lane[i];
            if exclusive {
                lane[i] = out(acc);
                acc = add(acc, v);
            } else {
                acc = add(acc, v);
                lane[i] = out(acc);
            }
        }
    }
    y
}

fn infer_softmax(s: &Softmax, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("softmax", inputs, 1)?;
    check_float("softmax", inputs[0].ty, 0)?;
    let r = inputs[0].ty.shape.rank();
    norm_axis(s.axis, r).ok_or_else(|| {
        attr_err(
            "softmax",
            "axis",
            format!("{} out of range for rank {r}", s.axis),
        )
    })?;
    Ok(vec![inputs[0].ty.clone()])
}

fn eval_softmax(s: &Softmax, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("softmax", inputs, 1)?;
    let x = float_in("softmax", inputs[0], 0)?;
    let r = x.ndim();
    let ax = norm_axis(s.axis, r).ok_or_else(|| {
        attr_err(
            "softmax",
            "axis",
            format!("{} out of range for rank {r}", s.axis),
        )
    })?;
    let mut y = x.into_owned();
    if r == 0 {
        y.fill(1.0);
    } else {
        for mut lane in y.lanes_mut(Axis(ax)) {
            let m = lane.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let sum: f64 = lane.iter().map(|&v| ((v - m) as f64).exp()).sum();
            lane.mapv_inplace(|v| (((v - m) as f64).exp() / sum) as f32);
        }
    }
    Ok(float_out(y, inputs[0].dtype()))
}

impl Reduce {
    /// Which axes of a rank-`rank` input it reduces.
    ///
    /// # Errors
    /// An axis out of range.
    pub fn reduced_axes(&self, rank: usize) -> Result<Vec<bool>> {
        reduced_axes(self, rank)
    }
}

fn reduced_axes(r: &Reduce, rank: usize) -> Result<Vec<bool>> {
    let mut red = vec![false; rank];
    if r.reduce_all || r.axes.is_empty() {
        red.iter_mut().for_each(|v| *v = true);
    } else {
        for &a in &r.axes {
            let i = norm_axis(a, rank).ok_or_else(|| {
                attr_err(
                    r.kind.name(),
                    "dim",
                    format!("{a} out of range for rank {rank}"),
                )
            })?;
            red[i] = true;
        }
    }
    Ok(red)
}

fn infer_reduce(r: &Reduce, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity(r.kind.name(), inputs, 1)?;
    let x = inputs[0].ty;
    if x.dtype == DType::Bool {
        return Err(Error::DType {
            op: r.kind.name(),
            input: 0,
            dtype: x.dtype,
        });
    }
    let red = reduced_axes(r, x.shape.rank())?;
    let mut dims = Vec::new();
    for (d, &rd) in x.shape.dims().iter().zip(&red) {
        if !rd {
            dims.push(d.clone());
        } else if r.keep_dim {
            dims.push(Dim::Known(1));
        }
    }
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape: Shape(dims),
    }])
}

fn eval_reduce(r: &Reduce, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys = [inputs.first().map(|t| t.type_info()).ok_or(Error::Arity {
        op: r.kind.name(),
        expected: "1".into(),
        got: 0,
    })?];
    let out = infer_reduce(r, &super::concrete_inputs(&tys, inputs))?;
    let dims = out[0].shape.to_known().expect("concrete");
    let x = inputs[0];
    let red = reduced_axes(r, x.shape().len())?;
    fn go<T: Elem>(a: &ArrayD<T>, red: &[bool], kind: ReduceKind, dims: &[usize]) -> Tensor {
        // Accumulate in f64 over every reduced position, one output element at a time.
        let shape = a.shape();
        let keep: Vec<usize> = (0..shape.len()).filter(|&i| !red[i]).collect();
        let kept_shape: Vec<usize> = keep.iter().map(|&i| shape[i]).collect();
        let n_out: usize = kept_shape.iter().product();
        let mut acc = vec![
            match kind {
                ReduceKind::Sum | ReduceKind::Mean => 0.0,
                ReduceKind::Prod => 1.0,
                ReduceKind::Max => f64::NEG_INFINITY,
                ReduceKind::Min => f64::INFINITY,
            };
            n_out
        ];
        let mut count = 0usize;
        for (idx, v) in a.indexed_iter() {
            let mut o = 0;
            for &k in &keep {
                o = o * shape[k] + idx[k];
            }
            if o == 0 {
                count += 1;
            }
            let v = v.to_f64();
            let s = &mut acc[o];
            *s = match kind {
                ReduceKind::Sum | ReduceKind::Mean => *s + v,
                ReduceKind::Prod => *s * v,
                ReduceKind::Max => s.max(v),
                ReduceKind::Min => s.min(v),
            };
        }
        if kind == ReduceKind::Mean {
            acc.iter_mut().for_each(|v| *v /= count.max(1) as f64);
        }
        let vals: Vec<T> = acc.into_iter().map(T::from_f64).collect();
        T::wrap(ArrayD::from_shape_vec(IxDyn(dims), vals).expect("sized by inference"))
    }
    Ok(crate::with_tensor!(x, a => go(a, &red, r.kind, &dims)))
}

fn infer_arg_max(a: &ArgMax, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("arg_max", inputs, 1)?;
    let x = inputs[0].ty;
    if !matches!(a.dtype, DType::I32 | DType::I64) {
        return Err(attr_err(
            "arg_max",
            "dtype",
            format!("{} is not int32/int64", a.dtype),
        ));
    }
    let shape = if a.flatten {
        if a.keepdims {
            Shape(vec![Dim::Known(1); x.shape.rank()])
        } else {
            Shape(vec![])
        }
    } else {
        let r = x.shape.rank();
        let ax = norm_axis(a.axis, r).ok_or_else(|| {
            attr_err(
                "arg_max",
                "axis",
                format!("{} out of range for rank {r}", a.axis),
            )
        })?;
        let mut d = x.shape.0.clone();
        if a.keepdims {
            d[ax] = Dim::Known(1);
        } else {
            d.remove(ax);
        }
        Shape(d)
    };
    Ok(vec![TypeInfo {
        dtype: a.dtype,
        shape,
    }])
}

fn eval_arg_max(a: &ArgMax, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys = [inputs.first().map(|t| t.type_info()).ok_or(Error::Arity {
        op: "arg_max",
        expected: "1".into(),
        got: 0,
    })?];
    let out = infer_arg_max(a, &super::concrete_inputs(&tys, inputs))?;
    let dims = out[0].shape.to_known().expect("concrete");
    let x = inputs[0];
    let vals = x.to_f64_vec();
    let xv = ArrayD::from_shape_vec(IxDyn(x.shape()), vals).expect("same size");
    let (xv, ax) = if a.flatten {
        let n = xv.len();
        (xv.into_shape_with_order(IxDyn(&[n])).expect("1-D"), 0)
    } else {
        let r = xv.ndim();
        (xv, norm_axis(a.axis, r).expect("checked"))
    };
    let idx: Vec<i64> = xv
        .lanes(Axis(ax))
        .into_iter()
        .map(|lane| {
            let mut best = 0usize;
            for (i, &v) in lane.iter().enumerate() {
                if v > lane[best] {
                    best = i;
                }
            }
            best as i64
        })
        .collect();
    let t = Tensor::I64(
        ArrayD::from_shape_vec(IxDyn(&dims), idx)
            .map_err(|e| attr_err("arg_max", "axis", e.to_string()))?,
    );
    Ok(t.cast(a.dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_and_argmax() {
        let x = Tensor::from_f32s(&[2, 3], vec![1., 5., 3., 4., 2., 6.]).unwrap();
        let r = |kind, axes: Vec<i64>, keep| {
            eval_reduce(
                &Reduce {
                    kind,
                    axes,
                    keep_dim: keep,
                    reduce_all: false,
                },
                &[&x],
            )
            .unwrap()
        };
        assert_eq!(
            r(ReduceKind::Sum, vec![1], false).to_f64_vec(),
            vec![9., 12.]
        );
        assert_eq!(r(ReduceKind::Mean, vec![0], true).shape(), &[1, 3]);
        assert_eq!(
            r(ReduceKind::Mean, vec![0], true).to_f64_vec(),
            vec![2.5, 3.5, 4.5]
        );
        assert_eq!(r(ReduceKind::Max, vec![], false).to_f64_vec(), vec![6.]);
        let am = eval_arg_max(
            &ArgMax {
                axis: -1,
                keepdims: false,
                flatten: false,
                dtype: DType::I64,
            },
            &[&x],
        )
        .unwrap();
        assert_eq!(am.to_i64_vec(), vec![1, 2]);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let x = Tensor::from_f32s(&[2, 2], vec![0., 0., 1000., 0.]).unwrap();
        let y = eval_softmax(&Softmax { axis: 1 }, &[&x])
            .unwrap()
            .to_f64_vec();
        assert_eq!(y, vec![0.5, 0.5, 1.0, 0.0]);
    }

    #[test]
    fn cumsum_forward_reverse_exclusive_flattened() {
        let x = Tensor::from_f32s(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let c = |axis, flatten, exclusive, reverse| {
            let op = Cumsum {
                axis,
                flatten,
                exclusive,
                reverse,
            };
            op.eval(&[&x]).unwrap().remove(0)
        };
        assert_eq!(
            c(1, false, false, false).to_f64_vec(),
            vec![1., 3., 6., 4., 9., 15.]
        );
        assert_eq!(
            c(0, false, false, false).to_f64_vec(),
            vec![1., 2., 3., 5., 7., 9.]
        );
        assert_eq!(
            c(-1, false, true, false).to_f64_vec(),
            vec![0., 1., 3., 0., 4., 9.]
        );
        assert_eq!(
            c(-1, false, false, true).to_f64_vec(),
            vec![6., 5., 3., 15., 11., 6.]
        );
        assert_eq!(
            c(-1, false, true, true).to_f64_vec(),
            vec![5., 3., 0., 11., 6., 0.]
        );
        let f = c(0, true, false, false);
        assert_eq!(f.shape(), &[6]);
        assert_eq!(f.to_f64_vec(), vec![1., 3., 6., 10., 15., 21.]);
        // Position ids as ERNIE 3.0 makes them: cumsum of ones, minus one.
        let ones = Tensor::from_i64s(&[1, 1, 1, 1]).reshape(&[1, 4]).unwrap();
        let ids = Cumsum {
            axis: -1,
            flatten: false,
            exclusive: false,
            reverse: false,
        }
        .eval(&[&ones])
        .unwrap();
        assert_eq!(ids[0].to_i64_vec(), vec![1, 2, 3, 4]);
        let bad = Cumsum {
            axis: 2,
            flatten: false,
            exclusive: false,
            reverse: false,
        };
        assert!(bad.eval(&[&x]).is_err(), "axis out of range");
        assert!(
            bad.eval(&[&Tensor::zeros(DType::Bool, &[2])]).is_err(),
            "bool input"
        );
    }
}
