//! Unary elementwise math and activations, prelu, and dtype casts.

use super::{arity, arity_t, one, InferInput, Layout, OpDef};
use crate::error::shape_err;
use crate::sample::{Rng, Sampler, ValKind};
use crate::tensor::Elem;
use crate::{DType, Error, Result, Tensor, TypeInfo};
use ndarray::{ArrayD, IxDyn, Zip};

/// A unary elementwise function with its parameters.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `max(x, 0)`
    Relu,
    /// `min(max(x, 0), threshold)`
    Relu6 {
        /// Upper bound (6 for relu6).
        threshold: f32,
    },
    /// `x if x > 0 else alpha * x`
    LeakyRelu {
        /// Negative slope.
        alpha: f32,
    },
    /// `x * min(max(x + offset, 0), threshold) / scale`
    HardSwish {
        /// Clamp upper bound.
        threshold: f32,
        /// Divisor.
        scale: f32,
        /// Shift.
        offset: f32,
    },
    /// `min(max(slope * x + offset, 0), 1)`
    HardSigmoid {
        /// Slope.
        slope: f32,
        /// Offset.
        offset: f32,
    },
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `x * sigmoid(beta * x)` (swish; silu when beta = 1)
    Swish {
        /// Beta.
        beta: f32,
    },
    /// Gaussian error linear unit: erf form, or the tanh approximation.
    Gelu {
        /// Use the tanh approximation.
        approximate: bool,
    },
    /// tanh
    Tanh,
    /// exp
    Exp,
    /// Natural log.
    Log,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(x)`
    Rsqrt,
    /// Absolute value.
    Abs,
    /// `x * x`
    Square,
    /// `1 / x`
    Reciprocal,
    /// floor
    Floor,
    /// ceil
    Ceil,
    /// The error function.
    Erf,
    /// `x ^ factor` for a constant factor (Paddle's `pow` op).
    PowScalar {
        /// Exponent.
        factor: f32,
    },
    /// `min(max(x, min), max)`
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// sine
    Sin,
    /// cosine
    Cos,
    /// tangent
    Tan,
    /// arcsine
    Asin,
    /// arccosine
    Acos,
    /// arctangent
    Atan,
    /// hyperbolic sine
    Sinh,
    /// hyperbolic cosine
    Cosh,
    /// inverse hyperbolic sine
    Asinh,
    /// inverse hyperbolic cosine
    Acosh,
    /// inverse hyperbolic tangent
    Atanh,
    /// -1, 0 or 1 by the sign of x
    Sign,
    /// nearest integer, ties to even
    Round,
    /// `ln(1 + exp(x))`
    Softplus,
    /// `x / (1 + |x|)`
    Softsign,
    /// `x * tanh(softplus(x))`
    Mish,
    /// `x if x > 0 else alpha * (exp(x) - 1)`
    Elu {
        /// Scale of the negative part.
        alpha: f32,
    },
    /// `gamma * (x if x > 0 else alpha * (exp(x) - 1))`
    Selu {
        /// Scale of the negative part.
        alpha: f32,
        /// Overall scale.
        gamma: f32,
    },
    /// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`
    Celu {
        /// Scale (nonzero).
        alpha: f32,
    },
    /// `x if x > alpha else 0`
    ThresholdedRelu {
        /// Threshold.
        alpha: f32,
    },
    /// `scale * x + bias` (bias after scale) or `scale * (x + bias)`.
    Scale {
        /// Multiplier.
        scale: f32,
        /// Addend.
        bias: f32,
        /// Add the bias after scaling.
        bias_after_scale: bool,
    },
}

impl UnaryOp {
    /// IR name.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Relu => "relu",
            UnaryOp::Relu6 { .. } => "relu6",
            UnaryOp::LeakyRelu { .. } => "leaky_relu",
            UnaryOp::HardSwish { .. } => "hard_swish",
            UnaryOp::HardSigmoid { .. } => "hard_sigmoid",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Swish { .. } => "swish",
            UnaryOp::Gelu { .. } => "gelu",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Square => "square",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Erf => "erf",
            UnaryOp::PowScalar { .. } => "pow_scalar",
            UnaryOp::Clip { .. } => "clip",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tan => "tan",
            UnaryOp::Asin => "asin",
            UnaryOp::Acos => "acos",
            UnaryOp::Atan => "atan",
            UnaryOp::Sinh => "sinh",
            UnaryOp::Cosh => "cosh",
            UnaryOp::Asinh => "asinh",
            UnaryOp::Acosh => "acosh",
            UnaryOp::Atanh => "atanh",
            UnaryOp::Sign => "sign",
            UnaryOp::Round => "round",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Softsign => "softsign",
            UnaryOp::Mish => "mish",
            UnaryOp::Elu { .. } => "elu",
            UnaryOp::Selu { .. } => "selu",
            UnaryOp::Celu { .. } => "celu",
            UnaryOp::ThresholdedRelu { .. } => "thresholded_relu",
            UnaryOp::Scale { .. } => "scale",
        }
    }

    /// The reference function, computed in f64.
    pub fn apply(&self, x: f64) -> f64 {
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        match *self {
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::Relu6 { threshold } => x.max(0.0).min(threshold as f64),
            UnaryOp::LeakyRelu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha as f64 * x
                }
            }
            UnaryOp::HardSwish {
                threshold,
                scale,
                offset,
            } => x * (x + offset as f64).max(0.0).min(threshold as f64) / scale as f64,
            UnaryOp::HardSigmoid { slope, offset } => {
                (slope as f64 * x + offset as f64).clamp(0.0, 1.0)
            }
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Swish { beta } => x * sigmoid(beta as f64 * x),
            UnaryOp::Gelu { approximate: false } => {
                0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
            }
            UnaryOp::Gelu { approximate: true } => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Square => x * x,
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Erf => libm::erf(x),
            UnaryOp::PowScalar { factor } => x.powf(factor as f64),
            UnaryOp::Clip { min, max } => x.max(min as f64).min(max as f64),
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Tan => x.tan(),
            UnaryOp::Asin => x.asin(),
            UnaryOp::Acos => x.acos(),
            UnaryOp::Atan => x.atan(),
            UnaryOp::Sinh => x.sinh(),
            UnaryOp::Cosh => x.cosh(),
            UnaryOp::Asinh => x.asinh(),
            UnaryOp::Acosh => x.acosh(),
            UnaryOp::Atanh => x.atanh(),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            UnaryOp::Round => x.round_ties_even(),
            UnaryOp::Softplus => softplus(x),
            UnaryOp::Softsign => x / (1.0 + x.abs()),
            UnaryOp::Mish => x * softplus(x).tanh(),
            UnaryOp::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha as f64 * x.exp_m1()
                }
            }
            UnaryOp::Selu { alpha, gamma } => {
                gamma as f64
                    * if x > 0.0 {
                        x
                    } else {
                        alpha as f64 * x.exp_m1()
                    }
            }
            UnaryOp::Celu { alpha } => {
                let a = alpha as f64;
                x.max(0.0) + (a * (x / a).exp_m1()).min(0.0)
            }
            UnaryOp::ThresholdedRelu { alpha } => {
                if x > alpha as f64 {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::Scale {
                scale,
                bias,
                bias_after_scale,
            } => {
                if bias_after_scale {
                    scale as f64 * x + bias as f64
                } else {
                    scale as f64 * (x + bias as f64)
                }
            }
        }
    }

    /// True if the op is defined on integer tensors (computed in f64, cast back).
    fn allows_int(&self) -> bool {
        matches!(
            self,
            UnaryOp::Relu
                | UnaryOp::Abs
                | UnaryOp::Square
                | UnaryOp::Clip { .. }
                | UnaryOp::Scale { .. }
                | UnaryOp::Floor
                | UnaryOp::Ceil
                | UnaryOp::Sign
                | UnaryOp::Round
        )
    }
}

/// `ln(1 + exp(x))`, without overflow for large x.
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// The unary ops without parameters, by kind.
const PARAM_FREE: [UnaryOp; 29] = [
    UnaryOp::Relu,
    UnaryOp::Sigmoid,
    UnaryOp::Tanh,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Abs,
    UnaryOp::Square,
    UnaryOp::Reciprocal,
    UnaryOp::Floor,
    UnaryOp::Ceil,
    UnaryOp::Erf,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Tan,
    UnaryOp::Asin,
    UnaryOp::Acos,
    UnaryOp::Atan,
    UnaryOp::Sinh,
    UnaryOp::Cosh,
    UnaryOp::Asinh,
    UnaryOp::Acosh,
    UnaryOp::Atanh,
    UnaryOp::Sign,
    UnaryOp::Round,
    UnaryOp::Softplus,
    UnaryOp::Softsign,
    UnaryOp::Mish,
];

impl OpDef for UnaryOp {
    const KINDS: &'static [&'static str] = &[
        "relu",
        "relu6",
        "leaky_relu",
        "hard_swish",
        "hard_sigmoid",
        "sigmoid",
        "swish",
        "gelu",
        "tanh",
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "abs",
        "square",
        "reciprocal",
        "floor",
        "ceil",
        "erf",
        "pow_scalar",
        "clip",
        "scale",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "asinh",
        "acosh",
        "atanh",
        "sign",
        "round",
        "softplus",
        "softsign",
        "mish",
        "elu",
        "selu",
        "celu",
        "thresholded_relu",
    ];
    fn kind(&self) -> &'static str {
        self.name()
    }
    fn param_free(kind: &str) -> Option<UnaryOp> {
        PARAM_FREE.into_iter().find(|u| u.name() == kind)
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval(self, inputs)?)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<UnaryOp> {
        if s.arity() != 1 {
            return None;
        }
        let u = match UnaryOp::param_free(kind) {
            Some(u) => u,
            None => s.attrs(kind, |r| unary_attrs(kind, r))?,
        };
        // Logs, roots and reciprocals of positive values; fractional powers too.
        let values = match u {
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Reciprocal => {
                ValKind::Positive
            }
            UnaryOp::PowScalar { factor } if factor.fract() != 0.0 => ValKind::Positive,
            // acosh is defined from 1 on (NaN below): positive draws keep half defined.
            UnaryOp::Acosh => ValKind::Positive,
            _ => ValKind::Normal,
        };
        s.same_shape(values);
        Some(u)
    }
}

/// Parameters of a unary kind that has them, drawn from the values models use.
fn unary_attrs(kind: &str, r: &mut Rng) -> Option<UnaryOp> {
    Some(match kind {
        "relu6" => UnaryOp::Relu6 {
            threshold: r.pick(&[6.0, 6.0, 6.0, 1.0, 0.5]),
        },
        "leaky_relu" => UnaryOp::LeakyRelu {
            alpha: r.pick(&[0.01, 0.1, 0.2, -0.5]),
        },
        "hard_swish" => {
            if r.below(4) > 0 {
                UnaryOp::HardSwish {
                    threshold: 6.0,
                    scale: 6.0,
                    offset: 3.0,
                }
            } else {
                UnaryOp::HardSwish {
                    threshold: r.pick(&[4.0, 1.0]),
                    scale: r.pick(&[5.0, 2.0]),
                    offset: r.pick(&[2.0, 0.5]),
                }
            }
        }
        "hard_sigmoid" => {
            let (slope, offset) = r.pick(&[
                (0.2, 0.5),
                (0.2, 0.5),
                (1.0 / 6.0, 0.5),
                (0.25, 0.4),
                (2.0, 0.1),
            ]);
            UnaryOp::HardSigmoid { slope, offset }
        }
        "swish" => UnaryOp::Swish {
            beta: r.pick(&[1.0, 1.0, 0.5, 2.0]),
        },
        "gelu" => UnaryOp::Gelu {
            approximate: r.coin(),
        },
        "pow_scalar" => UnaryOp::PowScalar {
            factor: r.pick(&[2.0, 3.0, 0.5]),
        },
        "clip" => {
            let (min, max) = r.pick(&[(0.0, 6.0), (-0.5, 0.5), (0.0, 1.0)]);
            UnaryOp::Clip { min, max }
        }
        "elu" => UnaryOp::Elu {
            alpha: r.pick(&[1.0, 0.5, 2.0]),
        },
        "selu" => UnaryOp::Selu {
            alpha: r.pick(&[1.673_263_2, 2.0]),
            gamma: r.pick(&[1.050_701, 3.0]),
        },
        "celu" => UnaryOp::Celu {
            alpha: r.pick(&[1.0, 2.0, 0.5]),
        },
        "thresholded_relu" => UnaryOp::ThresholdedRelu {
            alpha: r.pick(&[1.0, 0.5, 0.0]),
        },
        "scale" => UnaryOp::Scale {
            scale: {
                let any = r.f32() * 4.0 - 2.0;
                r.pick(&[1.0, 2.0, 0.5, -1.5, any])
            },
            bias: if r.coin() { 0.0 } else { r.f32() - 0.5 },
            bias_after_scale: r.coin(),
        },
        _ => return None,
    })
}

/// A random activation as models fuse them (for fused ops' samplers and random graphs).
pub fn sample_activation(r: &mut Rng) -> UnaryOp {
    match r.below(9) {
        0 => UnaryOp::Relu,
        1 => UnaryOp::Relu6 { threshold: 6.0 },
        2 => UnaryOp::LeakyRelu { alpha: 0.1 },
        3 => UnaryOp::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        },
        4 => UnaryOp::HardSigmoid {
            slope: 0.2,
            offset: 0.5,
        },
        5 => UnaryOp::Sigmoid,
        6 => UnaryOp::Swish { beta: 1.0 },
        7 => UnaryOp::Gelu {
            approximate: r.coin(),
        },
        _ => UnaryOp::Tanh,
    }
}

fn infer(u: &UnaryOp, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity(u.name(), inputs, 1)?;
    let t = inputs[0].ty;
    let ok = t.dtype.is_float() || (t.dtype.is_int() && u.allows_int());
    if !ok {
        return Err(Error::DType {
            op: u.name(),
            input: 0,
            dtype: t.dtype,
        });
    }
    Ok(vec![t.clone()])
}

fn eval(u: &UnaryOp, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t(u.name(), inputs, 1)?;
    let x = inputs[0];
    if !(x.dtype().is_float() || (x.dtype().is_int() && u.allows_int())) {
        return Err(Error::DType {
            op: u.name(),
            input: 0,
            dtype: x.dtype(),
        });
    }
    fn go<T: Elem>(u: &UnaryOp, a: &ArrayD<T>) -> Tensor {
        T::wrap(a.mapv(|v| T::from_f64(u.apply(v.to_f64()))))
    }
    Ok(match x {
        // f32 is computed in f64 and rounded once: a correctly rounded oracle.
        Tensor::F32(a) => Tensor::F32(a.mapv(|v| u.apply(v as f64) as f32)),
        t => crate::with_tensor!(t, a => go(u, a)),
    })
}

/// How prelu's alpha applies.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreluMode {
    /// One alpha for the whole tensor.
    All,
    /// One alpha per channel.
    Channel,
    /// One alpha per element (alpha has the input's shape without the batch axis).
    Element,
}

/// Parametric relu: `x if x > 0 else alpha * x`, alpha by [`PreluMode`].
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prelu {
    /// How alpha applies.
    pub mode: PreluMode,
    /// Where the channels are (for [`PreluMode::Channel`]).
    pub layout: Layout,
}

impl OpDef for Prelu {
    const KINDS: &'static [&'static str] = &["prelu"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("prelu", inputs, 2)?;
        Ok(vec![inputs[0].ty.clone()])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_prelu(self.mode, self.layout, inputs)?)
    }
}

/// Dtype conversion (floats to integers truncate toward zero; nonzero is `true`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cast {
    /// The output dtype.
    pub to: DType,
}

impl OpDef for Cast {
    const KINDS: &'static [&'static str] = &["cast"];
    fn sample(_: &str, s: &mut Sampler<'_>) -> Option<Cast> {
        s.same_shape(ValKind::Normal);
        s.attrs("cast", |r| {
            Some(Cast {
                to: r.pick(&[DType::F32, DType::I64, DType::I32]),
            })
        })
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("cast", inputs, 1)?;
        Ok(vec![TypeInfo {
            dtype: self.to,
            shape: inputs[0].ty.shape.clone(),
        }])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t("cast", inputs, 1)?;
        one(inputs[0].cast(self.to))
    }
}

fn eval_prelu(mode: PreluMode, layout: Layout, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("prelu", inputs, 2)?;
    let x = super::float_in("prelu", inputs[0], 0)?;
    let alpha = super::float_in("prelu", inputs[1], 1)?;
    let rank = x.ndim();
    let alpha_b: ArrayD<f32> = match mode {
        PreluMode::All => {
            let a = *alpha
                .iter()
                .next()
                .ok_or_else(|| shape_err("prelu", "empty alpha"))?;
            ArrayD::from_elem(IxDyn(&[]), a)
        }
        PreluMode::Channel => {
            let c_axis = if layout == Layout::Nchw { 1 } else { rank - 1 };
            let c = x.shape().get(c_axis).copied().unwrap_or(1);
            if alpha.len() != c {
                return Err(shape_err(
                    "prelu",
                    format!("{} alphas for {c} channels", alpha.len()),
                ));
            }
            let mut s = vec![1; rank];
            s[c_axis] = c;
            alpha
                .clone()
                .into_owned()
                .into_shape_with_order(IxDyn(&s))
                .map_err(|e| shape_err("prelu", e.to_string()))?
        }
        PreluMode::Element => {
            let per: usize = x.shape().iter().skip(1).product();
            if alpha.len() != per {
                return Err(shape_err(
                    "prelu",
                    format!("{} alphas for {per} elements", alpha.len()),
                ));
            }
            let mut s = x.shape().to_vec();
            s[0] = 1;
            alpha
                .clone()
                .into_owned()
                .into_shape_with_order(IxDyn(&s))
                .map_err(|e| shape_err("prelu", e.to_string()))?
        }
    };
    let ab = alpha_b
        .broadcast(x.raw_dim())
        .ok_or_else(|| shape_err("prelu", "alpha does not broadcast"))?;
    let out = Zip::from(&*x)
        .and(&ab)
        .map_collect(|&v, &a| if v > 0.0 { v } else { a * v });
    Ok(super::float_out(out, inputs[0].dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_at_known_points() {
        let hs = UnaryOp::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        };
        assert_eq!(hs.apply(-4.0), 0.0);
        assert_eq!(hs.apply(4.0), 4.0);
        assert!((hs.apply(1.0) - 4.0 / 6.0).abs() < 1e-12);
        let hsig = UnaryOp::HardSigmoid {
            slope: 0.2,
            offset: 0.5,
        };
        assert!((hsig.apply(1.0) - 0.7).abs() < 1e-7);
        assert_eq!(hsig.apply(10.0), 1.0);
        assert!((UnaryOp::Gelu { approximate: false }.apply(1.0) - 0.841_344_746).abs() < 1e-8);
        assert!((UnaryOp::Gelu { approximate: true }.apply(1.0) - 0.841_191_990).abs() < 1e-8);
        assert_eq!(UnaryOp::Relu6 { threshold: 6.0 }.apply(7.0), 6.0);
        let s = UnaryOp::Scale {
            scale: 2.0,
            bias: 1.0,
            bias_after_scale: false,
        };
        assert_eq!(s.apply(3.0), 8.0);
    }

    #[test]
    fn int_inputs_only_where_defined() {
        let t = Tensor::from_i64s(&[-2, 3]);
        let out = eval(&UnaryOp::Abs, &[&t]).unwrap();
        assert_eq!(out.to_i64_vec(), vec![2, 3]);
        assert!(eval(&UnaryOp::Exp, &[&t]).is_err());
    }
}
