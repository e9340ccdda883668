//! Indexed writes and N-d gathers: `scatter_elements` (ONNX ScatterElements / Scatter,
//! Paddle put_along_axis), `scatter_nd` and `gather_nd` (ONNX ScatterND / GatherND), with
//! an optional reduction where indices repeat. Negative ids count from the end; an id out
//! of range is an error naming it.

use super::{arity, arity_t, one, InferInput, OpDef};
use crate::error::{attr_err, shape_err};
use crate::shape::norm_axis;
use crate::{DType, Dim, Elem, Error, Result, Shape, Tensor, TypeInfo};
use ndarray::ArrayD;

/// How a scatter combines an update with what is there.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScatterReduce {
    /// Replace (the last update of a repeated index wins).
    None,
    /// Add.
    Add,
    /// Multiply.
    Mul,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

/// `out = data; out[i₀, …, index[i], …] ⊕= updates[i]` along `axis`: inputs `data`,
/// `indices` (i32/i64, the rank of `data`), `updates` (the indices' shape).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScatterElements {
    /// The indexed axis (negative: from the end).
    pub axis: i64,
    /// How updates combine.
    pub reduction: ScatterReduce,
}

/// `out = data; out[indices[i₀, …, iₖ₋₁]] ⊕= updates[i₀, …, iₖ₋₁, …]`: inputs `data`,
/// `indices` (`[…, m]`, each row the first `m` coordinates of a slice), `updates`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScatterNd {
    /// How updates combine.
    pub reduction: ScatterReduce,
}

/// `out[b…, i…] = data[b…, indices[b…, i…]]`: the slices of `data` that the rows of
/// `indices` (`[b…, i…, m]`) address, the first `batch_dims` axes shared.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GatherNd {
    /// Leading axes shared by data and indices.
    pub batch_dims: usize,
}

fn index_dtype(op: &'static str, ty: &TypeInfo, input: usize) -> Result<()> {
    if matches!(ty.dtype, DType::I32 | DType::I64) {
        Ok(())
    } else {
        Err(Error::DType {
            op,
            input,
            dtype: ty.dtype,
        })
    }
}

/// An id made non-negative and checked against `bound`.
fn wrap_id(op: &'static str, v: i64, bound: usize) -> Result<usize> {
    let b = bound as i64;
    let w = if v < 0 { v + b } else { v };
    if w < 0 || w >= b {
        return Err(Error::OutOfRange {
            op,
            reason: format!("index {v} out of range for size {bound}"),
        });
    }
    Ok(w as usize)
}

fn strides(shape: &[usize]) -> Vec<usize> {
    (0..shape.len())
        .map(|d| shape[d + 1..].iter().product())
        .collect()
}

/// Writes `updates[k]` into `out[dest[k]]` (flat positions), combining by `r`.
fn scatter_into<T: Elem>(
    out: &mut ArrayD<T>,
    upd: &ArrayD<T>,
    dest: &[usize],
    r: ScatterReduce,
) -> Result<()> {
    let o = out
        .as_slice_mut()
        .ok_or_else(|| shape_err("scatter", "output not contiguous"))?;
    for (&d, &u) in dest.iter().zip(upd.iter()) {
        let v = o[d];
        o[d] = match r {
            ScatterReduce::None => u,
            ScatterReduce::Add => T::from_f64(v.to_f64() + u.to_f64()),
            ScatterReduce::Mul => T::from_f64(v.to_f64() * u.to_f64()),
            ScatterReduce::Max => {
                if u > v {
                    u
                } else {
                    v
                }
            }
            ScatterReduce::Min => {
                if u < v {
                    u
                } else {
                    v
                }
            }
        };
    }
    Ok(())
}

/// `data` with `updates` scattered to the flat positions `dest`.
fn scatter(
    op: &'static str,
    data: &Tensor,
    updates: &Tensor,
    dest: &[usize],
    r: ScatterReduce,
) -> Result<Tensor> {
    if data.dtype() != updates.dtype() {
        return Err(Error::DType {
            op,
            input: 2,
            dtype: updates.dtype(),
        });
    }
    let mut out = data.clone();
    crate::with_tensor!(&mut out, o => {
        let o: &mut ArrayD<_> = o;
        *o = o.as_standard_layout().to_owned();
        let u = Elem::unwrap_ref(updates).expect("dtype checked");
        scatter_into(o, u, dest, r)?;
    });
    Ok(out)
}

impl OpDef for ScatterElements {
    const KINDS: &'static [&'static str] = &["scatter_elements"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        let op = "scatter_elements";
        arity(op, inputs, 3)?;
        let (x, i, u) = (inputs[0].ty, inputs[1].ty, inputs[2].ty);
        index_dtype(op, i, 1)?;
        if x.shape.rank() != i.shape.rank() || i.shape.rank() != u.shape.rank() {
            return Err(shape_err(
                op,
                format!(
                    "data {}, indices {} and updates {} need one rank",
                    x.shape, i.shape, u.shape
                ),
            ));
        }
        norm_axis(self.axis, x.shape.rank())
            .ok_or_else(|| attr_err(op, "axis", format!("{} out of range", self.axis)))?;
        Ok(vec![x.clone()])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let op = "scatter_elements";
        arity_t(op, inputs, 3)?;
        let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
        self.infer(&super::concrete_inputs(&tys, inputs))?;
        let (x, idx, upd) = (inputs[0], inputs[1], inputs[2]);
        let ax = norm_axis(self.axis, x.shape().len()).expect("checked by infer");
        let (xs, is) = (x.shape(), idx.shape());
        if is != upd.shape()
            || is
                .iter()
                .zip(xs)
                .enumerate()
                .any(|(d, (&n, &m))| d != ax && n > m)
        {
            return Err(shape_err(
                op,
                format!("indices {is:?}, updates {:?}, data {xs:?}", upd.shape()),
            ));
        }
        let (xst, ist) = (strides(xs), strides(is));
        let ids = idx.to_i64_vec();
        let mut dest = Vec::with_capacity(ids.len());
        for (k, &v) in ids.iter().enumerate() {
            let mut flat = 0;
            for d in 0..is.len() {
                let c = (k / ist[d]) % is[d].max(1);
                let c = if d == ax { wrap_id(op, v, xs[ax])? } else { c };
                flat += c * xst[d];
            }
            dest.push(flat);
        }
        one(scatter(op, x, upd, &dest, self.reduction)?)
    }
}

/// For ND indexing: the flat offsets into `data` (of shape `xs`) of the slices the rows
/// of `indices` (`ids`, rows of `m`) address after `batch` shared axes, and the slice size.
fn nd_offsets(
    op: &'static str,
    xs: &[usize],
    is: &[usize],
    ids: &[i64],
    batch: usize,
) -> Result<(Vec<usize>, usize)> {
    let m = *is.last().unwrap_or(&0);
    if is.is_empty() || batch + m > xs.len() || batch >= is.len() {
        return Err(shape_err(
            op,
            format!("indices {is:?} (batch dims {batch}) do not address data {xs:?}"),
        ));
    }
    if is[..batch] != xs[..batch] {
        return Err(shape_err(
            op,
            format!("batch dims of indices {is:?} and data {xs:?} differ"),
        ));
    }
    let xst = strides(xs);
    let slice: usize = xs[batch + m..].iter().product();
    let rows_per_batch: usize = is[batch..is.len() - 1].iter().product();
    let batch_size: usize = xs[batch..].iter().product();
    let mut offs = Vec::new();
    for (r, row) in ids.chunks(m.max(1)).enumerate().take(ids.len() / m.max(1)) {
        let b = r / rows_per_batch.max(1);
        let mut flat = b * batch_size;
        for (j, &v) in row.iter().enumerate() {
            flat += wrap_id(op, v, xs[batch + j])? * xst[batch + j];
        }
        offs.push(flat);
    }
    if m == 0 {
        let rows: usize = is[..is.len() - 1].iter().product();
        offs = (0..rows)
            .map(|r| (r / rows_per_batch.max(1)) * batch_size)
            .collect();
    }
    Ok((offs, slice))
}

impl OpDef for ScatterNd {
    const KINDS: &'static [&'static str] = &["scatter_nd"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("scatter_nd", inputs, 3)?;
        index_dtype("scatter_nd", inputs[1].ty, 1)?;
        Ok(vec![inputs[0].ty.clone()])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let op = "scatter_nd";
        arity_t(op, inputs, 3)?;
        let (x, idx, upd) = (inputs[0], inputs[1], inputs[2]);
        index_dtype(op, &idx.type_info(), 1)?;
        let (xs, is) = (x.shape(), idx.shape());
        let (offs, slice) = nd_offsets(op, xs, is, &idx.to_i64_vec(), 0)?;
        let m = *is.last().unwrap_or(&0);
        let want: Vec<usize> = is[..is.len() - 1].iter().chain(&xs[m..]).copied().collect();
        if upd.shape() != want.as_slice() {
            return Err(shape_err(
                op,
                format!("updates {:?}, expected {want:?}", upd.shape()),
            ));
        }
        let dest: Vec<usize> = offs
            .iter()
            .flat_map(|&o| (0..slice).map(move |j| o + j))
            .collect();
        one(scatter(op, x, upd, &dest, self.reduction)?)
    }
}

impl OpDef for GatherNd {
    const KINDS: &'static [&'static str] = &["gather_nd"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        let op = "gather_nd";
        arity(op, inputs, 2)?;
        let (x, i) = (inputs[0].ty, inputs[1].ty);
        index_dtype(op, i, 1)?;
        let (xd, id) = (x.shape.dims(), i.shape.dims());
        let m = match id.last() {
            Some(Dim::Known(m)) => *m,
            Some(_) => return Err(shape_err(op, "the last dim of the indices must be known")),
            None => return Err(shape_err(op, "indices of rank 0")),
        };
        let b = self.batch_dims;
        if b + m > xd.len() || b >= id.len() {
            return Err(shape_err(
                op,
                format!(
                    "indices {} (batch dims {b}) do not address data {}",
                    i.shape, x.shape
                ),
            ));
        }
        let dims: Vec<Dim> = id[..id.len() - 1]
            .iter()
            .chain(&xd[b + m..])
            .cloned()
            .collect();
        Ok(vec![TypeInfo {
            dtype: x.dtype,
            shape: Shape(dims),
        }])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let op = "gather_nd";
        arity_t(op, inputs, 2)?;
        let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
        let ty = self.infer(&super::concrete_inputs(&tys, inputs))?;
        let (x, idx) = (inputs[0], inputs[1]);
        let (offs, slice) = nd_offsets(
            op,
            x.shape(),
            idx.shape(),
            &idx.to_i64_vec(),
            self.batch_dims,
        )?;
        let out: Vec<usize> = ty[0].shape.to_known().expect("concrete");
        let src: Vec<usize> = offs
            .iter()
            .flat_map(|&o| (0..slice).map(move |j| o + j))
            .collect();
        one(crate::map_tensor!(x, a => {
            let a = a.as_standard_layout();
            let flat = a.as_slice().expect("standard layout");
            ArrayD::from_shape_vec(out.clone(), src.iter().map(|&s| flat[s]).collect())
                .map_err(|e| shape_err(op, e.to_string()))?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32s(shape, v.to_vec()).unwrap()
    }
    fn ids(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_i64s(v).reshape(shape).unwrap()
    }

    #[test]
    fn scatter_elements_writes_and_reduces_along_the_axis() {
        // ONNX's example (axis 1): data [[1,2,3,4,5]], indices [[1,3]], updates [[1.1,2.1]].
        let x = t(&[1, 5], &[1., 2., 3., 4., 5.]);
        let s = ScatterElements {
            axis: 1,
            reduction: ScatterReduce::None,
        };
        let y = s
            .eval(&[&x, &ids(&[1, 2], &[1, -2]), &t(&[1, 2], &[1.1, 2.1])])
            .unwrap();
        assert_eq!(
            y[0].to_f64_vec(),
            t(&[1, 5], &[1., 1.1, 3., 2.1, 5.]).to_f64_vec()
        );
        // Repeated index with add.
        let s = ScatterElements {
            axis: 1,
            reduction: ScatterReduce::Add,
        };
        let y = s
            .eval(&[&x, &ids(&[1, 2], &[1, 1]), &t(&[1, 2], &[1.0, 2.0])])
            .unwrap();
        assert_eq!(y[0].to_f64_vec(), [1., 5., 3., 4., 5.]);
        assert!(s
            .eval(&[&x, &ids(&[1, 2], &[5, 0]), &t(&[1, 2], &[1.0, 2.0])])
            .is_err());
    }

    #[test]
    fn gather_nd_and_scatter_nd_address_slices() {
        // ONNX's GatherND example 2: data [[0,1],[2,3]], indices [[1],[0]] → rows 1, 0.
        let x = t(&[2, 2], &[0., 1., 2., 3.]);
        let g = GatherNd { batch_dims: 0 };
        let y = g.eval(&[&x, &ids(&[2, 1], &[1, 0])]).unwrap();
        assert_eq!(
            (y[0].shape(), y[0].to_f64_vec()),
            (&[2, 2][..], vec![2., 3., 0., 1.])
        );
        // Batch dims 1: data [[[0,1],[2,3]],[[4,5],[6,7]]], indices [[1],[0]] → [[2,3],[4,5]].
        let x3 = t(&[2, 2, 2], &[0., 1., 2., 3., 4., 5., 6., 7.]);
        let g = GatherNd { batch_dims: 1 };
        let y = g.eval(&[&x3, &ids(&[2, 1], &[1, 0])]).unwrap();
        assert_eq!(y[0].to_f64_vec(), [2., 3., 4., 5.]);
        // ScatterND: element (0, 1) and (1, 0) replaced.
        let s = ScatterNd {
            reduction: ScatterReduce::None,
        };
        let y = s
            .eval(&[&x, &ids(&[2, 2], &[0, 1, 1, 0]), &t(&[2], &[9., 8.])])
            .unwrap();
        assert_eq!(y[0].to_f64_vec(), [0., 9., 8., 3.]);
    }
}
