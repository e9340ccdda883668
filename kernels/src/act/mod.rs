//! Activations and unary math on f32, elementwise. [`Act`] and its portable loops are in
//! `portable`; the slice functions here compile those loops for each instruction set
//! (`crate::simd!`) and take the vectorized transcendental forms with intrinsics (on AVX2,
//! `crate::x86_64::avx2::act`'s FMA forms) from the dispatch table (`crate::isa`).

pub(crate) mod portable;

pub use portable::{erfc, exp, tanh, Act};

use crate::isa::table;
use portable::{apply_slice_body, exp_sum_body, piecewise};

impl Act {
    /// Applies the function to every element, in place (vectorized where the CPU allows:
    /// the body is compiled for AVX-512 and AVX2 as well, and chosen at run time).
    pub fn apply_slice(self, xs: &mut [f32]) {
        let done = match table().act.vector {
            // SAFETY: the vector form is the dispatch table's, which is private to this
            // crate and built once from detection, so its features are present; it takes
            // any slice.
            #[allow(unsafe_code)]
            Some(v) if (v.covers)(self) => unsafe { (v.apply)(self, xs) },
            _ => 0,
        };
        let (act, xs) = (self, &mut xs[done..]);
        crate::simd!(apply_slice_body(act: Act, xs: &mut [f32]))
    }
}

/// `e^{x - shift}` for every element, in place, returning their sum (softmax's inner
/// loop), vectorized like [`Act::apply_slice`].
pub fn exp_sum(xs: &mut [f32], shift: f32) -> f32 {
    match table().act.exp_sum {
        Some(vector) => {
            // SAFETY: the dispatch table's vector form (its features detected); it takes any
            // slice.
            #[allow(unsafe_code)]
            let (done, sum) = unsafe { vector(xs, shift) };
            let xs = &mut xs[done..];
            sum + crate::simd!(exp_sum_body(xs: &mut [f32], shift: f32) -> f32)
        }
        None => crate::simd!(exp_sum_body(xs: &mut [f32], shift: f32) -> f32),
    }
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

    /// The vectorized transcendental activations (on AVX2 machines the AVX2 forms', blocks
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
