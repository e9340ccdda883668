//! Shape-changing ops: reshape, transpose, squeeze, unsqueeze, flatten.

use super::{arity, arity_t, list_from_inputs, InferInput, ListInput, ListVal};
use crate::error::{attr_err, shape_err};
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

pub(super) fn infer_reshape(r: &Reshape, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
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

pub(super) fn infer_transpose(t: &Transpose, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
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

pub(super) fn eval_transpose(t: &Transpose, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("transpose", inputs, 1)?;
    let tys = [inputs[0].type_info()];
    infer_transpose(t, &super::concrete_inputs(&tys, inputs))?;
    Ok(
        crate::map_tensor!(inputs[0], a => a.view().permuted_axes(t.perm.clone()).as_standard_layout().into_owned()),
    )
}

pub(super) fn infer_squeeze(s: &Squeeze, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
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

pub(super) fn infer_unsqueeze(u: &Unsqueeze, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
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

pub(super) fn infer_flatten(f: &Flatten, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
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
