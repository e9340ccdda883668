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
            Act::Scale { scale, bias, after } => {
                if after {
                    scale * x + bias
                } else {
                    scale * (x + bias)
                }
            }
        }
    }

    /// Applies the function to every element, in place (vectorized where the CPU allows:
    /// the body is compiled for AVX-512 and AVX2 as well, and chosen at run time).
    pub fn apply_slice(self, xs: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match crate::gemm::isa() {
            crate::gemm::Isa::Avx512 => {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn go(a: Act, xs: &mut [f32]) {
                    // The GELUs' AVX2 forms beat what the compiler makes of the plain
                    // loop at 512 bits (tanh-GELU has no vector form there at all);
                    // the others are faster as 512-bit loops (`act_speed`, Zen 4).
                    let done = if matches!(a, Act::Gelu | Act::GeluTanh) {
                        // SAFETY: this function has the features.
                        #[allow(unsafe_code)]
                        unsafe {
                            crate::act_avx2::apply(a, xs)
                        }
                    } else {
                        0
                    };
                    a.apply_slice_body(&mut xs[done..])
                }
                // SAFETY: the features were detected by `isa()`.
                #[allow(unsafe_code)]
                return unsafe { go(self, xs) };
            }
            crate::gemm::Isa::Avx2 => {
                #[target_feature(enable = "avx2,fma")]
                fn go(a: Act, xs: &mut [f32]) {
                    let done = if crate::act_avx2::covers(a) {
                        // SAFETY: this function has the features.
                        #[allow(unsafe_code)]
                        unsafe {
                            crate::act_avx2::apply(a, xs)
                        }
                    } else {
                        0
                    };
                    a.apply_slice_body(&mut xs[done..])
                }
                // SAFETY: as above.
                #[allow(unsafe_code)]
                return unsafe { go(self, xs) };
            }
            crate::gemm::Isa::Generic => {}
        }
        self.apply_slice_body(xs)
    }

    #[inline(always)]
    fn apply_slice_body(self, xs: &mut [f32]) {
        if self == Act::Identity || piecewise(xs, self, |v| v) {
            return;
        }
        match self {
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
    // Capped as in `act_avx2`: past 9, the intermediates would be denormal (slow); ±∞ and
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

/// `e^{x - shift}` for every element, in place, returning their sum (softmax's inner
/// loop), vectorized like [`Act::apply_slice`].
pub fn exp_sum(xs: &mut [f32], shift: f32) -> f32 {
    #[inline(always)]
    fn body(xs: &mut [f32], shift: f32) -> f32 {
        const L: usize = 16;
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
    #[cfg(target_arch = "x86_64")]
    match crate::gemm::isa() {
        crate::gemm::Isa::Avx512 => {
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn go(xs: &mut [f32], shift: f32) -> f32 {
                body(xs, shift)
            }
            // SAFETY: the features were detected by `isa()`.
            #[allow(unsafe_code)]
            return unsafe { go(xs, shift) };
        }
        crate::gemm::Isa::Avx2 => {
            #[target_feature(enable = "avx2,fma")]
            fn go(xs: &mut [f32], shift: f32) -> f32 {
                // SAFETY: this function has the features.
                #[allow(unsafe_code)]
                let (done, sum) = unsafe { crate::act_avx2::exp_sum(xs, shift) };
                sum + body(&mut xs[done..], shift)
            }
            // SAFETY: as above.
            #[allow(unsafe_code)]
            return unsafe { go(xs, shift) };
        }
        crate::gemm::Isa::Generic => {}
    }
    body(xs, shift)
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `xs = act(pre(xs))` in one pass for the piecewise-linear activations (identity, relu,
/// relu6, leaky relu, hard swish, hard sigmoid), each its own loop; false, with nothing
/// done, for the others.
#[inline(always)]
fn piecewise(xs: &mut [f32], act: Act, pre: impl Fn(f32) -> f32) -> bool {
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

/// `xs = act(xs + bias)`: one pass for the activations convs fuse (see `piecewise`),
/// compiled for the best instruction set; other activations take a second pass.
pub fn bias_act(xs: &mut [f32], bias: f32, act: Act) {
    #[inline(always)]
    fn body(xs: &mut [f32], b: f32, act: Act) {
        if !piecewise(xs, act, |v| v + b) {
            xs.iter_mut().for_each(|v| *v += b);
            act.apply_slice(xs);
        }
    }
    crate::simd!(body(xs: &mut [f32], bias: f32, act: Act))
}

/// `out = act(post_scale·(act(v)) + shift)`-style epilogue of fused ops: activation, then
/// an optional affine `(scale, shift)`.
pub fn act_post(xs: &mut [f32], act: Act, post: Option<(f32, f32)>) {
    act.apply_slice(xs);
    if let Some((s, t)) = post {
        xs.iter_mut().for_each(|v| *v = s * *v + t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorized transcendental activations (on AVX2 machines `act_avx2`'s, blocks
    /// of 16 plus a scalar tail) against their definitions in f64 through `libm`, over
    /// ordinary values, both tails, ±0, ±∞ and NaN.
    #[test]
    fn transcendental_activations_match_their_definitions() {
        let mut xs: Vec<f32> = (0..2000).map(|i| (i as f32 - 1000.0) * 0.013).collect();
        xs.extend([
            0.0,
            -0.0,
            1e-8,
            -1e-8,
            30.0,
            -30.0,
            87.0,
            -87.0,
            100.0,
            -100.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        let f64_ref = |act: Act, x: f64| -> f64 {
            let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
            match act {
                Act::Exp => x.exp(),
                Act::Sigmoid => sig(x),
                Act::Swish(b) => x * sig(b as f64 * x),
                Act::Tanh => x.tanh(),
                Act::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
                Act::GeluTanh => {
                    let c = (2.0 / std::f64::consts::PI).sqrt();
                    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
                }
                _ => unreachable!(),
            }
        };
        let acts = [
            Act::Exp,
            Act::Sigmoid,
            Act::Swish(1.0),
            Act::Swish(0.5),
            Act::Tanh,
            Act::Gelu,
            Act::GeluTanh,
        ];
        for act in acts {
            // Every offset, so each value is seen both in a vector block and in the tail.
            for start in [0, 5, 13] {
                let mut got = xs[start..].to_vec();
                act.apply_slice(&mut got);
                for (&x, &g) in xs[start..].iter().zip(&got) {
                    let want = f64_ref(act, x as f64);
                    if want.is_nan() {
                        assert!(g.is_nan(), "{act:?}({x}) = {g}, want NaN");
                        continue;
                    }
                    // exp overflows f32 past 88.7; the reference says so too.
                    let want32 = want as f32;
                    let ok = if want32.is_infinite() || g.is_infinite() {
                        g == want32
                    } else {
                        (g as f64 - want).abs() <= 3e-6 * want.abs() + 1e-6
                    };
                    assert!(ok, "{act:?}({x}) = {g}, want {want}");
                }
            }
        }
    }

    #[test]
    fn exp_and_tanh_are_accurate_to_a_few_ulp() {
        let mut worst = (0f64, 0f64, 0f64);
        let mut x = -87.0f32;
        while x < 88.0 {
            let (e, want) = (exp(x) as f64, (x as f64).exp());
            let rel = ((e - want) / want).abs();
            if rel > worst.0 {
                worst = (rel, x as f64, e);
            }
            x += 0.0137;
        }
        assert!(
            worst.0 < 1e-6,
            "exp: relative error {:e} at {}",
            worst.0,
            worst.1
        );
        assert!(exp(-200.0) < 1.3e-38, "underflow saturates near 0");
        assert!(exp(f32::NAN).is_nan());
        let mut x = -20.0f32;
        while x < 20.0 {
            let (t, want) = (tanh(x) as f64, (x as f64).tanh());
            assert!(
                (t - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "tanh({x}) = {t} vs {want}"
            );
            x += 0.0071;
        }
        let mut x = -9.0f32;
        while x < 9.0 {
            let (e, want) = (erfc(x) as f64, libm::erfc(x as f64));
            // Relative error ~1e-7 near 0, growing with exp's argument −z² in the far tail
            // (erfc(8) ~ 1e-29: 5e-6).
            assert!(
                (e - want).abs() <= 5e-7 * (1.0 + (x * x) as f64) * want.abs(),
                "erfc({x}) = {e} vs {want}"
            );
            let mut g = [x];
            Act::Gelu.apply_slice(&mut g);
            let gw = 0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2));
            assert!(
                (g[0] as f64 - gw).abs() <= 2e-6 * gw.abs() + 1e-12,
                "gelu({x}) = {} vs {gw}",
                g[0]
            );
            x += 0.0093;
        }
        let mut v: Vec<f32> = (0..100).map(|i| i as f32 / 10.0 - 5.0).collect();
        let want: f64 = v.iter().map(|&a| ((a - 1.0) as f64).exp()).sum();
        let got = exp_sum(&mut v, 1.0) as f64;
        assert!((got - want).abs() < 1e-5 * want);
    }
}
