//! Batch normalization (inference) and layer normalization.

use super::{arity, arity_t, check_float, float_in, float_out, one, InferInput, Layout, OpDef};
use crate::error::{attr_err, shape_err};
use crate::sample::{Leaf, Sampler};
use crate::{Result, Tensor, TypeInfo};
use ndarray::{ArrayD, Axis, IxDyn};

/// Batch normalization with running statistics: `(x - mean) / sqrt(var + eps) * scale + bias`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Added to the variance.
    pub epsilon: f32,
    /// Where the channel axis is (NCHW: 1, NHWC: last).
    pub layout: Layout,
}

/// Layer normalization over the trailing axes from `begin_norm_axis`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// First normalized axis.
    pub begin_norm_axis: usize,
    /// Added to the variance.
    pub epsilon: f32,
    /// A scale input follows `x`.
    pub has_scale: bool,
    /// A bias input follows (after the scale, if any).
    pub has_bias: bool,
}

fn channel_axis(layout: Layout, rank: usize) -> usize {
    match layout {
        Layout::Nchw => 1.min(rank.saturating_sub(1)),
        Layout::Nhwc => rank.saturating_sub(1),
    }
}

impl OpDef for BatchNorm {
    const KINDS: &'static [&'static str] = &["batch_norm"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_batch_norm(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_batch_norm(self, inputs)?)
    }
    /// Rank 2 or 4 (mostly 4), NCHW or now and then NHWC; the variance positive.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<BatchNorm> {
        if s.arity() != 5 {
            return None;
        }
        let b = s.attrs(kind, |r| {
            Some(BatchNorm {
                epsilon: r.pick(&[1e-5, 1e-3, 0.1, 0.5]),
                layout: if r.below(6) == 0 {
                    Layout::Nhwc
                } else {
                    Layout::Nchw
                },
            })
        })?;
        let x = s.first_input(|r| r.pick(&[2, 4, 4, 4]));
        let c = if b.layout == Layout::Nhwc {
            *x.last()?
        } else {
            *x.get(1)?
        };
        for i in 1..5 {
            s.set(
                i,
                if i == 4 {
                    Leaf::positive(vec![c])
                } else {
                    Leaf::normal(vec![c])
                },
            );
        }
        Some(b)
    }
}

impl OpDef for LayerNorm {
    const KINDS: &'static [&'static str] = &["layer_norm"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_layer_norm(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_layer_norm(self, inputs)?)
    }
    /// Rank 2 or 3, mostly over the last axis; scale and bias as the inputs say.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<LayerNorm> {
        let x = s.first_input(|r| 2 + r.below(2));
        if x.len() < 2 {
            return None;
        }
        let n = s.arity();
        let ln = s.attrs(kind, |r| {
            Some(LayerNorm {
                begin_norm_axis: if r.below(3) > 0 {
                    x.len() - 1
                } else {
                    1 + r.below(x.len() - 1)
                },
                epsilon: r.pick(&[1e-5, 1e-12, 1e-3, 0.1, 1.0]),
                has_scale: n >= 2,
                has_bias: n >= 3,
            })
        })?;
        let numel: usize = x.get(ln.begin_norm_axis..)?.iter().product();
        for i in 1..n {
            s.set(i, Leaf::normal(vec![numel]));
        }
        Some(ln)
    }
}

fn infer_batch_norm(b: &BatchNorm, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("batch_norm", inputs, 5)?;
    check_float("batch_norm", inputs[0].ty, 0)?;
    let x = &inputs[0].ty.shape;
    if x.rank() < 2 {
        return Err(shape_err(
            "batch_norm",
            format!("input {x} needs a channel axis"),
        ));
    }
    let c = &x.dims()[channel_axis(b.layout, x.rank())];
    for (i, inp) in inputs.iter().enumerate().skip(1) {
        let s = &inp.ty.shape;
        if s.rank() != 1 || s.dims()[0].unify(c).is_none() {
            return Err(shape_err(
                "batch_norm",
                format!("input {i} has shape {s}, expected [{c}]"),
            ));
        }
    }
    Ok(vec![inputs[0].ty.clone()])
}

fn eval_batch_norm(b: &BatchNorm, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("batch_norm", inputs, 5)?;
    let x = float_in("batch_norm", inputs[0], 0)?;
    let rank = x.ndim();
    let ca = channel_axis(b.layout, rank);
    let c = x.shape()[ca];
    let p: Vec<_> = (1..5)
        .map(|i| float_in("batch_norm", inputs[i], i))
        .collect::<Result<_>>()?;
    for (i, t) in p.iter().enumerate() {
        if t.len() != c {
            return Err(shape_err(
                "batch_norm",
                format!("input {} has {} elements for {c} channels", i + 1, t.len()),
            ));
        }
    }
    let (scale, bias, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
    let mut y = x.into_owned();
    for (ch, mut lane) in y.axis_iter_mut(Axis(ca)).enumerate() {
        let inv = 1.0 / (var[ch] as f64 + b.epsilon as f64).sqrt();
        let (m, s, bb) = (mean[ch] as f64, scale[ch] as f64, bias[ch] as f64);
        lane.mapv_inplace(|v| (((v as f64) - m) * inv * s + bb) as f32);
    }
    Ok(float_out(y, inputs[0].dtype()))
}

pub(super) fn infer_layer_norm(l: &LayerNorm, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    let n = 1 + l.has_scale as usize + l.has_bias as usize;
    arity("layer_norm", inputs, n)?;
    check_float("layer_norm", inputs[0].ty, 0)?;
    let x = &inputs[0].ty.shape;
    if l.begin_norm_axis >= x.rank().max(1) {
        return Err(attr_err(
            "layer_norm",
            "begin_norm_axis",
            format!("{} out of range for {x}", l.begin_norm_axis),
        ));
    }
    let norm = crate::Shape(x.dims()[l.begin_norm_axis..].to_vec()).numel();
    for inp in &inputs[1..] {
        let pn = inp.ty.shape.numel();
        if let (Some(a), Some(b)) = (pn.known(), norm.known()) {
            if a != b {
                return Err(shape_err(
                    "layer_norm",
                    format!(
                        "scale/bias {} does not match normalized size {b}",
                        inp.ty.shape
                    ),
                ));
            }
        }
    }
    Ok(vec![inputs[0].ty.clone()])
}

pub(super) fn eval_layer_norm(l: &LayerNorm, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    infer_layer_norm(l, &super::concrete_inputs(&tys, inputs))?;
    let x = float_in("layer_norm", inputs[0], 0)?;
    let shape = x.shape().to_vec();
    let inner: usize = shape[l.begin_norm_axis..].iter().product();
    let outer: usize = shape[..l.begin_norm_axis].iter().product();
    let scale = if l.has_scale {
        Some(float_in("layer_norm", inputs[1], 1)?)
    } else {
        None
    };
    let bias = if l.has_bias {
        let i = 1 + l.has_scale as usize;
        Some(float_in("layer_norm", inputs[i], i)?)
    } else {
        None
    };
    let xs: Vec<f32> = x.iter().copied().collect();
    let scale: Option<Vec<f32>> = scale.map(|s| s.iter().copied().collect());
    let bias: Option<Vec<f32>> = bias.map(|s| s.iter().copied().collect());
    let mut out = vec![0f32; xs.len()];
    for r in 0..outer {
        let row = &xs[r * inner..(r + 1) * inner];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / inner as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / inner as f64;
        let inv = 1.0 / (var + l.epsilon as f64).sqrt();
        for (j, &v) in row.iter().enumerate() {
            let mut y = (v as f64 - mean) * inv;
            if let Some(s) = &scale {
                y *= s[j] as f64;
            }
            if let Some(b) = &bias {
                y += b[j] as f64;
            }
            out[r * inner + j] = y as f32;
        }
    }
    let y = ArrayD::from_shape_vec(IxDyn(&shape), out)
        .map_err(|e| shape_err("layer_norm", e.to_string()))?;
    Ok(float_out(y, inputs[0].dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_normalizes_rows() {
        let x = Tensor::from_f32s(&[2, 2], vec![1.0, 3.0, -2.0, 2.0]).unwrap();
        let s = Tensor::from_f32s(&[2], vec![2.0, 1.0]).unwrap();
        let b = Tensor::from_f32s(&[2], vec![0.0, 10.0]).unwrap();
        let l = LayerNorm {
            begin_norm_axis: 1,
            epsilon: 0.0,
            has_scale: true,
            has_bias: true,
        };
        let y = eval_layer_norm(&l, &[&x, &s, &b]).unwrap().to_f64_vec();
        assert_eq!(y, vec![-2.0, 11.0, -2.0, 11.0]);
    }

    #[test]
    fn batch_norm_per_channel() {
        let x = Tensor::from_f32s(&[1, 2, 1, 1], vec![3.0, 5.0]).unwrap();
        let p = |v: [f32; 2]| Tensor::from_f32s(&[2], v.to_vec()).unwrap();
        let b = BatchNorm {
            epsilon: 0.0,
            layout: Layout::Nchw,
        };
        let y = eval_batch_norm(
            &b,
            &[
                &x,
                &p([2.0, 1.0]),
                &p([1.0, 0.0]),
                &p([1.0, 1.0]),
                &p([4.0, 16.0]),
            ],
        )
        .unwrap();
        assert_eq!(y.to_f64_vec(), vec![3.0, 1.0]);
    }
}
