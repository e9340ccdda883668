//! Activations and unary math on f32, elementwise.

/// A unary elementwise function (the kernels' copy of the IR's unary ops).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// `x`.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), t)`.
    Relu6(f32),
    /// `x > 0 ? x : a·x`.
    LeakyRelu(f32),
    /// `x · min(max(x + offset, 0), threshold) / scale`.
    HardSwish {
        /// Upper clip.
        threshold: f32,
        /// Divisor.
        scale: f32,
        /// Offset.
        offset: f32,
    },
    /// `clamp(slope·x + offset, 0, 1)`.
    HardSigmoid {
        /// Slope.
        slope: f32,
        /// Offset.
        offset: f32,
    },
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `x · sigmoid(beta·x)`.
    Swish(f32),
    /// `0.5·x·(1 + erf(x/√2))`.
    Gelu,
    /// `0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))`.
    GeluTanh,
    /// `tanh(x)`.
    Tanh,
    /// `e^x`.
    Exp,
    /// `ln x`.
    Log,
    /// `√x`.
    Sqrt,
    /// `1/√x`.
    Rsqrt,
    /// `|x|`.
    Abs,
    /// `x²`.
    Square,
    /// `1/x`.
    Reciprocal,
    /// `⌊x⌋`.
    Floor,
    /// `⌈x⌉`.
    Ceil,
    /// `erf(x)`.
    Erf,
    /// `x^p`.
    Pow(f32),
    /// `min(max(x, lo), hi)`.
    Clip(f32, f32),
    /// `s·x + b` (or `s·(x + b)` when not `after`).
    Scale {
        /// Multiplier.
        scale: f32,
        /// Bias.
        bias: f32,
        /// Bias added after scaling.
        after: bool,
    },
}

impl Act {
    /// The function at one point.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::Identity => x,
            Act::Relu => x.max(0.0),
            Act::Relu6(t) => x.max(0.0).min(t),
            Act::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Act::HardSwish {
                threshold,
                scale,
                offset,
            } => x * (x + offset).max(0.0).min(threshold) / scale,
            Act::HardSigmoid { slope, offset } => (slope * x + offset).clamp(0.0, 1.0),
            Act::Sigmoid => sigmoid(x),
            Act::Swish(b) => x * sigmoid(b * x),
            Act::Gelu => 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
            Act::GeluTanh => {
                let c = 0.797_884_6_f32;
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            Act::Tanh => x.tanh(),
            Act::Exp => x.exp(),
            Act::Log => x.ln(),
            Act::Sqrt => x.sqrt(),
            Act::Rsqrt => 1.0 / x.sqrt(),
            Act::Abs => x.abs(),
            Act::Square => x * x,
            Act::Reciprocal => 1.0 / x,
            Act::Floor => x.floor(),
            Act::Ceil => x.ceil(),
            Act::Erf => libm::erff(x),
            Act::Pow(p) => x.powf(p),
            Act::Clip(lo, hi) => x.max(lo).min(hi),
            Act::Scale { scale, bias, after } => {
                if after {
                    scale * x + bias
                } else {
                    scale * (x + bias)
                }
            }
        }
    }

    /// Applies the function to every element, in place.
    pub fn apply_slice(self, xs: &mut [f32]) {
        match self {
            Act::Identity => {}
            Act::Relu => xs.iter_mut().for_each(|v| *v = v.max(0.0)),
            Act::Relu6(t) => xs.iter_mut().for_each(|v| *v = v.max(0.0).min(t)),
            Act::HardSwish {
                threshold,
                scale,
                offset,
            } => {
                let inv = 1.0 / scale;
                xs.iter_mut()
                    .for_each(|v| *v = *v * (*v + offset).max(0.0).min(threshold) * inv)
            }
            Act::HardSigmoid { slope, offset } => xs
                .iter_mut()
                .for_each(|v| *v = (slope * *v + offset).clamp(0.0, 1.0)),
            a => xs.iter_mut().for_each(|v| *v = a.apply(*v)),
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `out = act(post_scale·(act(v)) + shift)`-style epilogue of fused ops: activation, then
/// an optional affine `(scale, shift)`.
pub fn act_post(xs: &mut [f32], act: Act, post: Option<(f32, f32)>) {
    act.apply_slice(xs);
    if let Some((s, t)) = post {
        xs.iter_mut().for_each(|v| *v = s * *v + t);
    }
}
