//! Shape-changing ops: reshape, transpose, squeeze, unsqueeze, flatten, identity.

use super::{arity, arity_t, eval_view, list_from_inputs, one, InferInput, ListInput, ListVal};
use super::{Op, OpDef};
use crate::error::{attr_err, shape_err};
use crate::sample::{Leaf, Rng, Sampler, ValKind};
use crate::shape::norm_axis;
use crate::{Dim, Result, Shape, Tensor, TypeInfo};

/// Reshape with Paddle's conventions: `0` copies the input dim at that position, `-1` is
/// inferred from the element count.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Reshape {
    /// Target shape (the fallback when `shape_input` supplies it at run time).
    pub shape: Vec<i64>,
    /// Where the target shape comes from.
    pub shape_input: ListInput,
}

/// Axis permutation.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Transpose {
    /// Output axis `i` is input axis `perm[i]`.
    pub perm: Vec<usize>,
}

/// Remove size-1 axes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Squeeze {
    /// Axes to remove (only if size 1); empty: every size-1 axis.
    pub axes: Vec<i64>,
}

/// Insert size-1 axes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Unsqueeze {
    /// Positions, applied one after another against the growing rank.
    pub axes: Vec<i64>,
}

/// Merge axes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub enum Flatten {
    /// Merge axes `start..=stop` into one (flatten_contiguous_range).
    Range {
        /// First merged axis.
        start: i64,
        /// Last merged axis.
        stop: i64,
    },
    /// Make a 2-D tensor: axes before `axis` and from `axis` on (flatten2).
    To2d {
        /// Split point.
        axis: usize,
    },
}

/// Resolves a Paddle reshape target against an input shape.
pub fn reshape_dims(input: &Shape, target: &[i64]) -> Result<Shape> {
    let op = "reshape";
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 => {
                if infer_at.replace(i).is_some() {
                    return Err(attr_err(
                        op,
                        "shape",
                        format!("more than one -1 in {target:?}"),
                    ));
                }
                out.push(Dim::Unknown);
            }
            0 => out.push(input.dims().get(i).cloned().ok_or_else(|| {
                attr_err(
                    op,
                    "shape",
                    format!(
                        "0 at position {i} but input {input} has rank {}",
                        input.rank()
                    ),
                )
            })?),
            t if t > 0 => out.push(Dim::Known(t as usize)),
            t => {
                return Err(attr_err(
                    op,
                    "shape",
                    format!("invalid dim {t} in {target:?}"),
                ))
            }
        }
    }
    let total = input.numel();
    if let Some(i) = infer_at {
        let rest = Shape(
            out.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, d)| d.clone())
                .collect(),
        )
        .numel();
        out[i] = match (total.known(), rest.known()) {
            (Some(t), Some(r)) if r > 0 && t % r == 0 => Dim::Known(t / r),
            (Some(t), Some(r)) => {
                return Err(shape_err(
                    op,
                    format!("cannot reshape {input} ({t} elements) to {target:?} ({r} × ?)"),
                ))
            }
            _ => Dim::Unknown,
        };
    } else if let (Some(t), Some(o)) = (total.known(), Shape(out.clone()).numel().known()) {
        if t != o {
            return Err(shape_err(
                op,
                format!("cannot reshape {input} ({t} elements) to {target:?} ({o} elements)"),
            ));
        }
    }
    Ok(Shape(out))
}

impl OpDef for Reshape {
    const KINDS: &'static [&'static str] = &["reshape"];
    fn is_view(&self) -> bool {
        true
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_reshape(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        eval_view(&Op::Reshape(self.clone()), inputs)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Reshape> {
        let x = s.first_input(|r| 1 + r.below(4));
        s.attrs(kind, |r| Some(reshape_to(r, &x)))
    }
}

impl OpDef for Transpose {
    const KINDS: &'static [&'static str] = &["transpose"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_transpose(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_transpose(self, inputs)?)
    }
    /// The identity, the last two axes swapped, heads (`[0, 2, 1, 3]`), or any permutation.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Transpose> {
        let x = s.first_input(|r| 2 + r.below(3));
        let rank = x.len();
        s.attrs(kind, |r| {
            let mut perm: Vec<usize> = (0..rank).collect();
            match r.below(6) {
                0 => {}
                1 | 2 if rank >= 2 => perm.swap(rank - 2, rank - 1),
                3 if rank == 4 => perm = vec![0, 2, 1, 3],
                _ => {
                    for i in (1..rank).rev() {
                        let j = r.below(i + 1);
                        perm.swap(i, j);
                    }
                }
            }
            Some(Transpose { perm })
        })
    }
}

impl OpDef for Squeeze {
    const KINDS: &'static [&'static str] = &["squeeze"];
    fn is_view(&self) -> bool {
        true
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_squeeze(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        eval_view(&Op::Squeeze(self.clone()), inputs)
    }
    /// One axis, mostly of size 1, counted from either end.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Squeeze> {
        let x = match s.known(0) {
            Some(x) => x.to_vec(),
            None => {
                let rank = 1 + s.rng.below(3);
                let mut sh = s.rng.shape(s.size, rank);
                sh.insert(s.rng.below(rank + 1), 1);
                s.set(0, Leaf::normal(sh.clone()));
                sh
            }
        };
        s.attrs(kind, |r| {
            let mut ones: Vec<i64> = (0..x.len())
                .filter(|&i| x[i] == 1)
                .map(|i| i as i64)
                .collect();
            if ones.is_empty() || r.below(4) == 0 {
                // Paddle ignores a squeezed axis whose dim is not 1.
                ones = vec![r.below(x.len()) as i64];
            }
            let a = ones[r.below(ones.len())];
            Some(Squeeze {
                axes: vec![if r.coin() { a } else { a - x.len() as i64 }],
            })
        })
    }
}

impl OpDef for Unsqueeze {
    const KINDS: &'static [&'static str] = &["unsqueeze"];
    fn is_view(&self) -> bool {
        true
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_unsqueeze(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        eval_view(&Op::Unsqueeze(self.clone()), inputs)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Unsqueeze> {
        let x = s.first_input(|r| 1 + r.below(3));
        s.attrs(kind, |r| {
            Some(Unsqueeze {
                axes: vec![r.below(x.len() + 1) as i64],
            })
        })
    }
}

impl OpDef for Flatten {
    const KINDS: &'static [&'static str] = &["flatten"];
    fn is_view(&self) -> bool {
        true
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_flatten(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        eval_view(&Op::Flatten(self.clone()), inputs)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Flatten> {
        let x = s.first_input(|r| 1 + r.below(4));
        s.attrs(kind, |r| {
            let rank = x.len();
            Some(if r.coin() {
                let start = r.below(rank);
                let stop = start + r.below(rank - start);
                Flatten::Range {
                    start: start as i64,
                    stop: stop as i64,
                }
            } else {
                Flatten::To2d {
                    axis: r.below(rank + 1),
                }
            })
        })
    }
}

/// The input, unchanged (assign, inference-mode dropout).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity;

impl OpDef for Identity {
    const KINDS: &'static [&'static str] = &["identity"];
    fn param_free(kind: &str) -> Option<Identity> {
        (kind == "identity").then_some(Identity)
    }
    fn is_view(&self) -> bool {
        true
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("identity", inputs, 1)?;
        Ok(vec![inputs[0].ty.clone()])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t("identity", inputs, 1)?;
        one(inputs[0].clone())
    }
    fn sample(_: &str, s: &mut Sampler<'_>) -> Option<Identity> {
        if s.arity() != 1 {
            return None;
        }
        s.same_shape(ValKind::Normal);
        Some(Identity)
    }
}

/// A reshape target for `x`: flatten, split or merge trailing dims, keep the shape, or a
/// random factorization — with Paddle's `0` (copy) and `-1` (infer) entries mixed in.
fn reshape_to(r: &mut Rng, x: &[usize]) -> Reshape {
    let numel: usize = x.iter().product();
    let rank = x.len();
    if rank == 0 {
        return Reshape {
            shape: vec![1],
            shape_input: ListInput::Attr,
        };
    }
    let mut t: Vec<i64> = match r.below(6) {
        0 => vec![numel as i64],
        1 if rank >= 2 => vec![x[0] as i64, -1],
        2 => {
            let last = *x.last().unwrap_or(&1);
            let f = (2..last).find(|f| last.is_multiple_of(*f)).unwrap_or(1);
            let mut v: Vec<i64> = x[..rank - 1].iter().map(|&d| d as i64).collect();
            v.extend([f as i64, (last / f) as i64]);
            v
        }
        3 if rank >= 2 => {
            let mut v: Vec<i64> = x[..rank - 2].iter().map(|&d| d as i64).collect();
            v.push((x[rank - 2] * x[rank - 1]) as i64);
            v
        }
        4 => x.iter().map(|&d| d as i64).collect(),
        _ => {
            let f = (2..=numel).find(|f| numel.is_multiple_of(*f)).unwrap_or(1);
            vec![f as i64, (numel / f) as i64]
        }
    };
    // Paddle's special entries: 0 copies the input dim at that position, -1 is inferred.
    if r.below(3) == 0 {
        let i = r.below(t.len());
        if i < rank && t[i] == x[i] as i64 {
            t[i] = 0;
        }
    }
    if r.below(3) == 0 && !t.contains(&-1) {
        let i = r.below(t.len());
        t[i] = -1;
    }
    Reshape {
        shape: t,
        shape_input: ListInput::Attr,
    }
}

fn infer_reshape(r: &Reshape, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("reshape", inputs, 1 + r.shape_input.count())?;
    let x = inputs[0].ty;
    let shape = match list_from_inputs("reshape", r.shape_input, 1, inputs)? {
        ListVal::Attr => reshape_dims(&x.shape, &r.shape)?,
        ListVal::Known(v) => reshape_dims(&x.shape, &v)?,
        ListVal::Unknown(len) => {
            let n = len.unwrap_or(r.shape.len());
            if r.shape.len() == n {
                Shape(
                    r.shape
                        .iter()
                        .map(|&d| {
                            if d > 0 {
                                Dim::Known(d as usize)
                            } else {
                                Dim::Unknown
                            }
                        })
                        .collect(),
                )
            } else {
                Shape(vec![Dim::Unknown; n])
            }
        }
    };
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape,
    }])
}

fn infer_transpose(t: &Transpose, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("transpose", inputs, 1)?;
    let x = inputs[0].ty;
    let r = x.shape.rank();
    let mut seen = vec![false; r];
    if t.perm.len() != r
        || t.perm
            .iter()
            .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
    {
        return Err(attr_err(
            "transpose",
            "axis",
            format!("{:?} is not a permutation of {r} axes", t.perm),
        ));
    }
    let shape = Shape(t.perm.iter().map(|&p| x.shape.dims()[p].clone()).collect());
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape,
    }])
}

fn eval_transpose(t: &Transpose, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("transpose", inputs, 1)?;
    let tys = [inputs[0].type_info()];
    infer_transpose(t, &super::concrete_inputs(&tys, inputs))?;
    Ok(
        crate::map_tensor!(inputs[0], a => a.view().permuted_axes(t.perm.clone()).as_standard_layout().into_owned()),
    )
}

fn infer_squeeze(s: &Squeeze, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("squeeze", inputs, 1)?;
    let x = inputs[0].ty;
    let r = x.shape.rank();
    let mut drop = vec![false; r];
    if s.axes.is_empty() {
        for (i, d) in x.shape.dims().iter().enumerate() {
            match d {
                Dim::Known(1) => drop[i] = true,
                Dim::Known(_) => {}
                _ => {
                    return Err(shape_err(
                        "squeeze",
                        format!("cannot tell which axes of {} are 1", x.shape),
                    ))
                }
            }
        }
    } else {
        for &a in &s.axes {
            let i = norm_axis(a, r).ok_or_else(|| {
                attr_err("squeeze", "axes", format!("{a} out of range for rank {r}"))
            })?;
            // Paddle leaves axes whose size is not 1 in place.
            match &x.shape.dims()[i] {
                Dim::Known(1) => drop[i] = true,
                Dim::Known(_) => {}
                _ => drop[i] = true,
            }
        }
    }
    let shape = Shape(
        x.shape
            .dims()
            .iter()
            .zip(&drop)
            .filter(|(_, &d)| !d)
            .map(|(d, _)| d.clone())
            .collect(),
    );
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape,
    }])
}

fn infer_unsqueeze(u: &Unsqueeze, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("unsqueeze", inputs, 1)?;
    let x = inputs[0].ty;
    let mut dims = x.shape.0.clone();
    for &a in &u.axes {
        let cur = dims.len() as i64;
        let i = if a < 0 { a + cur + 1 } else { a };
        if i < 0 || i > cur {
            return Err(attr_err(
                "unsqueeze",
                "axes",
                format!("{a} out of range for rank {cur}"),
            ));
        }
        dims.insert(i as usize, Dim::Known(1));
    }
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape: Shape(dims),
    }])
}

fn infer_flatten(f: &Flatten, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("flatten", inputs, 1)?;
    let x = inputs[0].ty;
    let d = x.shape.dims();
    let r = d.len();
    let shape = match *f {
        Flatten::Range { start, stop } => {
            if r == 0 {
                Shape(vec![Dim::Known(1)])
            } else {
                let s = norm_axis(start, r).ok_or_else(|| {
                    attr_err(
                        "flatten",
                        "start_axis",
                        format!("{start} out of range for rank {r}"),
                    )
                })?;
                let e = norm_axis(stop, r).ok_or_else(|| {
                    attr_err(
                        "flatten",
                        "stop_axis",
                        format!("{stop} out of range for rank {r}"),
                    )
                })?;
                if s > e {
                    return Err(attr_err(
                        "flatten",
                        "start_axis",
                        format!("{start} after stop_axis {stop}"),
                    ));
                }
                let mut out = d[..s].to_vec();
                out.push(Shape(d[s..=e].to_vec()).numel());
                out.extend_from_slice(&d[e + 1..]);
                Shape(out)
            }
        }
        Flatten::To2d { axis } => {
            if axis > r {
                return Err(attr_err(
                    "flatten",
                    "axis",
                    format!("{axis} out of range for rank {r}"),
                ));
            }
            Shape(vec![
                Shape(d[..axis].to_vec()).numel(),
                Shape(d[axis..].to_vec()).numel(),
            ])
        }
    };
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_zero_and_minus_one() {
        let s = Shape::known(&[2, 3, 4]);
        assert_eq!(reshape_dims(&s, &[0, -1]).unwrap(), Shape::known(&[2, 12]));
        assert_eq!(
            reshape_dims(&s, &[-1, 0, 2, 2]).unwrap(),
            Shape::known(&[2, 3, 2, 2])
        );
        assert!(reshape_dims(&s, &[5, -1]).is_err());
        assert!(reshape_dims(&s, &[-1, -1]).is_err());
        assert!(reshape_dims(&s, &[2, 3, 5]).is_err());
        let sym = Shape(vec![Dim::Sym("b".into()), Dim::Known(6)]);
        assert_eq!(
            reshape_dims(&sym, &[0, 2, 3]).unwrap(),
            Shape(vec![Dim::Sym("b".into()), Dim::Known(2), Dim::Known(3)])
        );
    }
}
