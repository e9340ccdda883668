//! The portable side of the activations: [`Act`], its value at a point, and the plain
//! loops the dispatching functions of [`crate::act`] compile for each instruction set
//! (`e^x`, `erfc`, `tanh` written branch-free so that they vectorize). Nothing here
//! dispatches: the ISA modules build on this file.

use crate::consts::LANES;

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
    /// `sin(x)`.
    Sin,
    /// `cos(x)`.
    Cos,
    /// `tan(x)`.
    Tan,
    /// `asin(x)`.
    Asin,
    /// `acos(x)`.
    Acos,
    /// `atan(x)`.
    Atan,
    /// `sinh(x)`.
    Sinh,
    /// `cosh(x)`.
    Cosh,
    /// `asinh(x)`.
    Asinh,
    /// `acosh(x)`.
    Acosh,
    /// `atanh(x)`.
    Atanh,
    /// `sign(x)`.
    Sign,
    /// `round(x)`.
    Round,
    /// `softplus(x)`.
    Softplus,
    /// `softsign(x)`.
    Softsign,
    /// `mish(x)`.
    Mish,
    /// `x` if positive, else `α·(eˣ − 1)`.
    Elu(f32),
    /// `γ·elu_α(x)`.
    Selu(f32, f32),
    /// `max(0, x) + min(0, α·(e^(x/α) − 1))`.
    Celu(f32),
    /// `x` if `x > α`, else 0.
    ThresholdedRelu(f32),
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
    /// The function at one point: for the piecewise-linear ones the same operations, in
    /// the same order, as the vectorized passes and the GEMM's in-register epilogue (hard
    /// swish multiplies by `1/scale`), so every path gives the same bits.
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
            } => x * (x + offset).max(0.0).min(threshold) * (1.0 / scale),
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
            Act::Sin => x.sin(),
            Act::Cos => x.cos(),
            Act::Tan => x.tan(),
            Act::Asin => x.asin(),
            Act::Acos => x.acos(),
            Act::Atan => x.atan(),
            Act::Sinh => x.sinh(),
            Act::Cosh => x.cosh(),
            Act::Asinh => x.asinh(),
            Act::Acosh => x.acosh(),
            Act::Atanh => x.atanh(),
            Act::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            Act::Round => x.round_ties_even(),
            Act::Softplus => softplus(x),
            Act::Softsign => x / (1.0 + x.abs()),
            Act::Mish => x * softplus(x).tanh(),
            Act::Elu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Act::Selu(a, g) => g * if x > 0.0 { x } else { a * x.exp_m1() },
            Act::Celu(a) => x.max(0.0) + (a * (x / a).exp_m1()).min(0.0),
            Act::ThresholdedRelu(a) => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            Act::Scale { scale, bias, after } => {
                if after {
                    scale * x + bias
                } else {
                    scale * (x + bias)
                }
            }
        }
    }
}

/// `xs = act(xs)` in plain loops ([`Act::apply_slice`]'s, compiled for each instruction
/// set; the transcendental ones on [`exp`], [`erfc`] and [`tanh`]).
#[inline(always)]
pub(crate) fn apply_slice_body(act: Act, xs: &mut [f32]) {
    if act == Act::Identity || piecewise(xs, act, |v| v) {
        return;
    }
    match act {
        Act::Sigmoid => xs.iter_mut().for_each(|v| *v = 1.0 / (1.0 + exp(-*v))),
        Act::Gelu => xs.iter_mut().for_each(|v| {
            *v = 0.5 * *v * erfc(-*v * std::f32::consts::FRAC_1_SQRT_2);
        }),
        Act::Swish(b) => xs.iter_mut().for_each(|v| *v = *v / (1.0 + exp(-b * *v))),
        Act::Exp => xs.iter_mut().for_each(|v| *v = exp(*v)),
        Act::Tanh => xs.iter_mut().for_each(|v| *v = tanh(*v)),
        a => xs.iter_mut().for_each(|v| *v = a.apply(*v)),
    }
}

/// `ln(1 + eˣ)` without overflow for large x.
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// `e^x` in f32 with branch-free code that vectorizes: `x = n·ln2 + r` with `|r| ≤ ln2/2`,
/// a degree-6 polynomial for `e^r` (Cephes' `expf` coefficients, about 1 ulp), and `2^n`
/// built in the exponent bits. Saturates to 0 below −87.3 and to `f32::MAX`-range above
/// 88.7; NaN stays NaN.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let nan = x.is_nan();
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    // 2^n without a float-to-int conversion (which would not vectorize): `n + 127 + 2²³`
    // is a float whose mantissa bits are exactly `n + 127` (an integer in 1..=254 after the
    // clamp); shifted into the exponent field they make 2^n.
    let biased = (n + (127.0 + 8_388_608.0)).to_bits() & 0x007f_ffff;
    let scale = f32::from_bits(biased << 23);
    if nan {
        f32::NAN
    } else {
        e * scale
    }
}

/// `erfc(x)` (Numerical Recipes' `erfcc` fit, fractional error below 1.2e-7) on [`exp`],
/// branch-free: GELU's `1 + erf(z)` is `erfc(−z)`, accurate in relative terms at both
/// tails down to `erfc(9) ≈ 4e-37`, where it is held for finite `x` (`|x|` is capped at
/// 9 so no intermediate is denormal).
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub fn erfc(x: f32) -> f32 {
    // Capped as in the AVX2 form (`crate::x86_64::avx2::act`): past 9, the intermediates would be denormal (slow); ±∞ and
    // NaN go through as they are.
    let a = x.abs();
    let z = if a > 9.0 && a != f32::INFINITY {
        9.0
    } else {
        a
    };
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_87;
    p = p * t - 1.135_203_98;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_68;
    p = p * t - 1.265_512_23;
    let ans = t * exp(-z * z + p);
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

/// `tanh(x)`: below `|x| < 0.625` an odd polynomial (Cephes' `tanhf` coefficients), above
/// it `sign(x)·(1 − 2/(e^{2|x|} + 1))` from [`exp`]; both branch-free.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let big = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
    let small = p * z * a + a;
    let t = if a < 0.625 { small } else { big };
    t.copysign(x)
}

/// `e^{x - shift}` for every element, in place, returning their sum: [`crate::act::exp_sum`]'s
/// plain loop, in 16 lanes.
#[inline(always)]
pub(crate) fn exp_sum_body(xs: &mut [f32], shift: f32) -> f32 {
    const L: usize = LANES;
    let mut acc = [0f32; L];
    let mut chunks = xs.chunks_exact_mut(L);
    for c in &mut chunks {
        for l in 0..L {
            c[l] = exp(c[l] - shift);
            acc[l] += c[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for v in chunks.into_remainder() {
        *v = exp(*v - shift);
        s += *v;
    }
    s
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `xs = act(pre(xs))` in one pass for the piecewise-linear activations (identity, relu,
/// relu6, leaky relu, hard swish, hard sigmoid), each its own loop; false, with nothing
/// done, for the others.
#[inline(always)]
pub(crate) fn piecewise(xs: &mut [f32], act: Act, pre: impl Fn(f32) -> f32) -> bool {
    match act {
        Act::Identity => xs.iter_mut().for_each(|v| *v = pre(*v)),
        Act::Relu => xs.iter_mut().for_each(|v| *v = pre(*v).max(0.0)),
        Act::Relu6(t) => xs.iter_mut().for_each(|v| *v = pre(*v).max(0.0).min(t)),
        Act::LeakyRelu(a) => xs.iter_mut().for_each(|v| {
            let x = pre(*v);
            *v = if x > 0.0 { x } else { a * x };
        }),
        Act::HardSwish {
            threshold,
            scale,
            offset,
        } => {
            let inv = 1.0 / scale;
            xs.iter_mut().for_each(|v| {
                let x = pre(*v);
                *v = x * (x + offset).max(0.0).min(threshold) * inv;
            })
        }
        Act::HardSigmoid { slope, offset } => xs
            .iter_mut()
            .for_each(|v| *v = (slope * pre(*v) + offset).clamp(0.0, 1.0)),
        _ => return false,
    }
    true
}

/// The vectorized forms of some activations with intrinsics (the AVX2 forms), as the
/// dispatch table (`crate::isa`) holds them.
#[derive(Clone, Copy)]
pub(crate) struct VectorAct {
    /// Whether [`VectorAct::apply`] is taken for an activation (it computes nothing
    /// useful for one its forms do not cover).
    pub(crate) covers: fn(Act) -> bool,
    /// `xs = act(xs)` over whole blocks of 16; returns how many values it did (the caller
    /// does the rest).
    ///
    /// # Safety
    /// The kernel's instruction set present.
    pub(crate) apply: unsafe fn(Act, &mut [f32]) -> usize,
}

/// `xs = e^{xs − shift}` over whole blocks of 16, returning how many values it did and their
/// sum (softmax; the caller does the rest).
///
/// # Safety
/// The kernel's instruction set present.
pub(crate) type ExpSum = unsafe fn(&mut [f32], f32) -> (usize, f32);
