//! Element-wise indexing: `gather_elements` (ONNX GatherElements, Paddle take_along_axis),
//! where every output element reads the input at its own position, with the coordinate of
//! one axis taken from the index tensor.

use super::{arity, arity_t, one, InferInput, OpDef};
use crate::error::{attr_err, shape_err};
use crate::shape::norm_axis;
use crate::{DType, Error, Result, Tensor, TypeInfo};
use ndarray::{ArrayD, IxDyn};

/// `out[i₀, …, iₐ, …] = x[i₀, …, index[i₀, …, iₐ, …], …]` along `axis`: inputs `x`,
/// `index` (i32/i64, the rank of `x`; negative ids count from the end); the output has the
/// index's shape.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GatherElements {
    /// The indexed axis (negative: from the end).
    pub axis: i64,
}

impl OpDef for GatherElements {
    const KINDS: &'static [&'static str] = &["gather_elements"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("gather_elements", inputs, 2)?;
        let (x, i) = (inputs[0].ty, inputs[1].ty);
        if !matches!(i.dtype, DType::I32 | DType::I64) {
            return Err(Error::DType {
                op: "gather_elements",
                input: 1,
                dtype: i.dtype,
            });
        }
        if x.shape.rank() != i.shape.rank() || x.shape.rank() == 0 {
            return Err(shape_err(
                "gather_elements",
                format!(
                    "index {} must have the rank of the input {}",
                    i.shape, x.shape
                ),
            ));
        }
        norm_axis(self.axis, x.shape.rank()).ok_or_else(|| {
            attr_err(
                "gather_elements",
                "axis",
                format!("{} out of range", self.axis),
            )
        })?;
        Ok(vec![TypeInfo {
            dtype: x.dtype,
            shape: i.shape.clone(),
        }])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t("gather_elements", inputs, 2)?;
        let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
        self.infer(&super::concrete_inputs(&tys, inputs))?;
        let (x, index) = (inputs[0], inputs[1]);
        let ax = norm_axis(self.axis, x.shape().len()).expect("checked by infer");
        let bound = x.shape()[ax] as i64;
        let ids = index.to_i64_vec();
        let ishape = index.shape().to_vec();
        for (d, (&n, &m)) in ishape.iter().zip(x.shape()).enumerate() {
            if d != ax && n > m {
                return Err(shape_err(
                    "gather_elements",
                    format!("index dim {d} is {n}, the input's {m}"),
                ));
            }
        }
        let mut at = Vec::with_capacity(ids.len());
        for &v in &ids {
            let w = if v < 0 { v + bound } else { v };
            if w < 0 || w >= bound {
                return Err(Error::OutOfRange {
                    op: "gather_elements",
                    reason: format!("index {v} out of range for size {bound}"),
                });
            }
            at.push(w as usize);
        }
        let strides: Vec<usize> = (0..ishape.len())
            .map(|d| ishape[d + 1..].iter().product())
            .collect();
        let pick = |ix: IxDyn| -> IxDyn {
            let flat: usize = (0..ishape.len()).map(|d| ix[d] * strides[d]).sum();
            let mut j = ix.clone();
            j[ax] = at[flat];
            j
        };
        one(crate::map_tensor!(x, a => ArrayD::from_shape_fn(IxDyn(&ishape), |ix| a[pick(ix)])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_elements_reads_along_the_axis() {
        // ONNX's GatherElements example: axis 1, and a negative id on axis 0.
        let x = Tensor::from_f32s(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let i = Tensor::from_i64s(&[0, 0, 1, 0]).reshape(&[2, 2]).unwrap();
        let y = GatherElements { axis: 1 }.eval(&[&x, &i]).unwrap();
        assert_eq!(y[0].to_f64_vec(), [1.0, 1.0, 4.0, 3.0]);
        let i = Tensor::from_i64s(&[-1, 0]).reshape(&[1, 2]).unwrap();
        let y = GatherElements { axis: 0 }.eval(&[&x, &i]).unwrap();
        assert_eq!(y[0].to_f64_vec(), [3.0, 2.0]);
        let bad = Tensor::from_i64s(&[2, 0]).reshape(&[1, 2]).unwrap();
        assert!(GatherElements { axis: 0 }.eval(&[&x, &bad]).is_err());
    }
}
