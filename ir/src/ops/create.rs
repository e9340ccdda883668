//! Ops that make tensors: shape, fill_constant, fill_any_like, range.

use super::{arity, arity_t, list_from_inputs, one, InferInput, ListInput, ListVal, OpDef};
use crate::error::{attr_err, shape_err};
use crate::sample::Sampler;
use crate::{DType, Dim, Error, Result, Shape, Tensor, TypeInfo};

/// A tensor of one value.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct FillConstant {
    /// Shape (when not from inputs).
    pub shape: Vec<i64>,
    /// The value.
    pub value: f64,
    /// Output dtype.
    pub dtype: DType,
    /// Where the shape comes from (inputs first).
    pub shape_input: ListInput,
    /// A one-element tensor input (after the shape inputs) overrides `value`.
    pub value_input: bool,
}

/// `[start, end)` by `step`; the dtype is the inputs'.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Range {}

/// The shape of the input, as a 1-D integer tensor: i32 (`shape`, Paddle's legacy op) or
/// i64 (`shape64`: PIR's `shape64` and ONNX's `Shape`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeOf {
    /// The output is i64 (else i32).
    pub i64: bool,
}

impl ShapeOf {
    /// The shape of `dims` as this op's output tensor.
    pub fn tensor(&self, dims: &[usize]) -> Tensor {
        if self.i64 {
            Tensor::from_i64s(&dims.iter().map(|&d| d as i64).collect::<Vec<_>>())
        } else {
            Tensor::from_i32s(&dims.iter().map(|&d| d as i32).collect::<Vec<_>>())
        }
    }
}

/// A tensor of the input's shape filled with one value.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct FillAnyLike {
    /// Fill value.
    pub value: f64,
    /// Output dtype (`None`: the input's).
    pub dtype: Option<DType>,
}

impl OpDef for ShapeOf {
    const KINDS: &'static [&'static str] = &["shape", "shape64"];
    fn kind(&self) -> &'static str {
        Self::KINDS[self.i64 as usize]
    }
    fn param_free(kind: &str) -> Option<ShapeOf> {
        match kind {
            "shape" => Some(ShapeOf { i64: false }),
            "shape64" => Some(ShapeOf { i64: true }),
            _ => None,
        }
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<ShapeOf> {
        s.first_input(|r| 1 + r.below(4));
        Self::param_free(kind)
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity(self.kind(), inputs, 1)?;
        let dtype = if self.i64 { DType::I64 } else { DType::I32 };
        Ok(vec![TypeInfo::known(dtype, &[inputs[0].ty.shape.rank()])])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t(self.kind(), inputs, 1)?;
        one(self.tensor(inputs[0].shape()))
    }
}

impl OpDef for FillConstant {
    const KINDS: &'static [&'static str] = &["fill_constant"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_fill_constant(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_fill_constant(self, inputs)?)
    }
}

impl OpDef for FillAnyLike {
    const KINDS: &'static [&'static str] = &["fill_any_like"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("fill_any_like", inputs, 1)?;
        Ok(vec![TypeInfo {
            dtype: self.dtype.unwrap_or(inputs[0].ty.dtype),
            shape: inputs[0].ty.shape.clone(),
        }])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t("fill_any_like", inputs, 1)?;
        let dt = self.dtype.unwrap_or(inputs[0].dtype());
        one(Tensor::full(dt, inputs[0].shape(), self.value))
    }
}

impl OpDef for Range {
    const KINDS: &'static [&'static str] = &["range"];
    fn param_free(kind: &str) -> Option<Range> {
        (kind == "range").then_some(Range {})
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_range(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_range(self, inputs)?)
    }
}

fn dims_of(shape: &[i64]) -> Result<Vec<usize>> {
    shape
        .iter()
        .map(|&d| {
            if d < 0 {
                Err(attr_err(
                    "fill_constant",
                    "shape",
                    format!("negative dim in {shape:?}"),
                ))
            } else {
                Ok(d as usize)
            }
        })
        .collect()
}

fn infer_fill_constant(f: &FillConstant, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity(
        "fill_constant",
        inputs,
        f.shape_input.count() + f.value_input as usize,
    )?;
    let shape = match list_from_inputs("fill_constant", f.shape_input, 0, inputs)? {
        ListVal::Attr => Shape::known(&dims_of(&f.shape)?),
        ListVal::Known(v) => Shape::known(&dims_of(&v)?),
        ListVal::Unknown(Some(n)) => Shape(vec![Dim::Unknown; n]),
        ListVal::Unknown(None) => {
            return Err(Error::NeedsValue {
                op: "fill_constant",
                input: 0,
            })
        }
    };
    Ok(vec![TypeInfo {
        dtype: f.dtype,
        shape,
    }])
}

fn eval_fill_constant(f: &FillConstant, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out = infer_fill_constant(f, &super::concrete_inputs(&tys, inputs))?;
    let value = if f.value_input {
        let v = inputs[f.shape_input.count()];
        if v.len() != 1 {
            return Err(shape_err(
                "fill_constant",
                format!("value tensor has shape {:?}", v.shape()),
            ));
        }
        v.to_f64_vec()[0]
    } else {
        f.value
    };
    Ok(Tensor::full(
        f.dtype,
        &out[0].shape.to_known().expect("concrete"),
        value,
    ))
}

fn range_len(start: f64, end: f64, step: f64, int: bool) -> Result<usize> {
    if step == 0.0 {
        return Err(Error::OutOfRange {
            op: "range",
            reason: "step is 0".into(),
        });
    }
    let n = if int {
        ((end - start).abs() / step.abs()).ceil()
    } else {
        ((end - start) / step).ceil()
    };
    if (end - start) * step < 0.0 {
        return Ok(0);
    }
    Ok(n.max(0.0) as usize)
}

fn infer_range(_: &Range, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("range", inputs, 3)?;
    let dt = inputs[0].ty.dtype;
    for (i, inp) in inputs.iter().enumerate() {
        if inp.ty.dtype != dt {
            return Err(Error::DTypeMismatch {
                op: "range",
                lhs: dt,
                rhs: inp.ty.dtype,
            });
        }
        if let Some(n) = inp.ty.shape.numel().known() {
            if n != 1 {
                return Err(shape_err(
                    "range",
                    format!("input {i} must hold one element, has {}", inp.ty.shape),
                ));
            }
        }
    }
    let vals: Option<Vec<f64>> = inputs
        .iter()
        .map(|i| i.value.map(|v| v.to_f64_vec()[0]))
        .collect();
    let len = match vals {
        Some(v) => Dim::Known(range_len(v[0], v[1], v[2], dt.is_int())?),
        None => Dim::Unknown,
    };
    Ok(vec![TypeInfo {
        dtype: dt,
        shape: Shape(vec![len]),
    }])
}

fn eval_range(r: &Range, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out = infer_range(r, &super::concrete_inputs(&tys, inputs))?;
    let n = out[0].shape.to_known().expect("concrete")[0];
    let (s, st) = (inputs[0].to_f64_vec()[0], inputs[2].to_f64_vec()[0]);
    let vals: Vec<f64> = (0..n).map(|i| s + i as f64 * st).collect();
    let t = Tensor::F64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), vals).expect("1-D"));
    Ok(t.cast(out[0].dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_lengths() {
        let r = |a: i64, b: i64, c: i64| {
            eval_range(
                &Range {},
                &[
                    &Tensor::from_i64s(&[a]),
                    &Tensor::from_i64s(&[b]),
                    &Tensor::from_i64s(&[c]),
                ],
            )
            .unwrap()
            .to_i64_vec()
        };
        assert_eq!(r(0, 5, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(r(0, 5, 2), vec![0, 2, 4]);
        assert_eq!(r(5, 0, -2), vec![5, 3, 1]);
        assert_eq!(r(5, 0, 1), Vec::<i64>::new());
    }
}
