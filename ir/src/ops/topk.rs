//! `top_k` (ONNX TopK, Paddle top_k_v2): the `k` largest (or smallest) elements along an
//! axis and their indices, in order; equal values keep the lower index first. NaN sorts
//! above every number (as the largest).

use super::{arity, arity_t, InferInput, OpDef};
use crate::error::{attr_err, shape_err};
use crate::shape::norm_axis;
use crate::{DType, Dim, Elem, Result, Shape, Tensor, TypeInfo};
use ndarray::{ArrayD, Axis};
use std::cmp::Ordering;

/// Outputs `values` (the input's dtype) and `indices` (i64), of the input's shape with
/// `k` along `axis`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopK {
    /// How many.
    pub k: usize,
    /// The axis (negative: from the end).
    pub axis: i64,
    /// Largest (else smallest) first.
    pub largest: bool,
}

impl OpDef for TopK {
    const KINDS: &'static [&'static str] = &["top_k"];
    fn num_outputs(&self) -> usize {
        2
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("top_k", inputs, 1)?;
        let x = inputs[0].ty;
        let ax = norm_axis(self.axis, x.shape.rank())
            .ok_or_else(|| attr_err("top_k", "axis", format!("{} out of range", self.axis)))?;
        let mut d = x.shape.0.clone();
        if let Dim::Known(n) = d[ax] {
            if self.k > n {
                return Err(shape_err(
                    "top_k",
                    format!("k = {} is more than the {n} elements of axis {ax}", self.k),
                ));
            }
        }
        d[ax] = Dim::Known(self.k);
        Ok(vec![
            TypeInfo {
                dtype: x.dtype,
                shape: Shape(d.clone()),
            },
            TypeInfo {
                dtype: DType::I64,
                shape: Shape(d),
            },
        ])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t("top_k", inputs, 1)?;
        let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
        self.infer(&super::concrete_inputs(&tys, inputs))?;
        let x = inputs[0];
        let ax = norm_axis(self.axis, x.shape().len()).expect("checked by infer");
        let (values, ids) = crate::with_tensor!(x, a => {
            let (v, i) = top_k(a, ax, self.k, self.largest);
            (Elem::wrap(v), i)
        });
        Ok(vec![values, Tensor::I64(ids)])
    }
}

/// Orders two elements for `largest`: NaN as the largest value.
fn order<T: Elem>(a: T, b: T) -> Ordering {
    match a.partial_cmp(&b) {
        Some(o) => o,
        None => {
            let (an, bn) = (a.partial_cmp(&a).is_none(), b.partial_cmp(&b).is_none());
            an.cmp(&bn)
        }
    }
}

fn top_k<T: Elem>(a: &ArrayD<T>, ax: usize, k: usize, largest: bool) -> (ArrayD<T>, ArrayD<i64>) {
    let mut shape = a.shape().to_vec();
    shape[ax] = k;
    let mut vals = ArrayD::<T>::default(shape.clone());
    let mut ids = ArrayD::<i64>::zeros(shape);
    for ((lane, mut vl), mut il) in a
        .lanes(Axis(ax))
        .into_iter()
        .zip(vals.lanes_mut(Axis(ax)))
        .zip(ids.lanes_mut(Axis(ax)))
    {
        let mut order_ix: Vec<usize> = (0..lane.len()).collect();
        // Stable: equal values keep the lower index first.
        order_ix.sort_by(|&i, &j| {
            let o = order(lane[i], lane[j]);
            if largest {
                o.reverse()
            } else {
                o
            }
        });
        for (p, &i) in order_ix.iter().take(k).enumerate() {
            vl[p] = lane[i];
            il[p] = i as i64;
        }
    }
    (vals, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_values_and_keeps_ties_by_index() {
        let x = Tensor::from_f32s(&[2, 4], vec![1., 3., 3., 2., 4., 0., -1., 5.]).unwrap();
        let t = TopK {
            k: 2,
            axis: -1,
            largest: true,
        };
        let y = t.eval(&[&x]).unwrap();
        assert_eq!(y[0].to_f64_vec(), [3., 3., 5., 4.]);
        assert_eq!(y[1].to_f64_vec(), [1., 2., 3., 0.]);
        let t = TopK {
            k: 1,
            axis: 0,
            largest: false,
        };
        let y = t.eval(&[&x]).unwrap();
        assert_eq!(y[0].to_f64_vec(), [1., 0., -1., 2.]);
        assert!(TopK {
            k: 5,
            axis: 1,
            largest: true
        }
        .eval(&[&x])
        .is_err());
    }
}
