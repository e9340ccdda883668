//! AVX2+FMA forms of the transcendental activations of [`crate::act`] (exp, sigmoid,
//! swish, tanh, GELU in its erf and tanh forms) and of softmax's `exp_sum`.
//!
//! The same approximations as the portable code ([`crate::act::exp`], [`crate::act::erfc`],
//! [`crate::act::tanh`]), with fused multiply-adds, two vectors per step: one vector's
//! chain of ~40 dependent operations left the FP units mostly idle (GELU ran at ~6 ns per
//! element on a 2-core Zen 1, most of ERNIE's FFN epilogue). The tail (< 16 elements) runs
//! the scalar functions.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::act::portable::Act;

/// Two vectors, processed step by step.
type V2 = [__m256; 2];

/// `[e(0), e(1)]` with `$i` bound to the lane index.
macro_rules! two {
    ($i:ident => $e:expr) => {
        [
            {
                let $i = 0usize;
                $e
            },
            {
                let $i = 1usize;
                $e
            },
        ]
    };
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn splat(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

/// `e^x` ([`crate::act::exp`]'s reduction and polynomial).
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::excessive_precision)]
fn exp2v(x: V2) -> V2 {
    let xc = two!(i => _mm256_min_ps(_mm256_max_ps(x[i], splat(-87.3)), splat(88.7)));
    let n = two!(i => _mm256_floor_ps(_mm256_fmadd_ps(xc[i], splat(std::f32::consts::LOG2_E), splat(0.5))));
    let r = two!(i => _mm256_fnmadd_ps(n[i], splat(0.693_359_4), xc[i]));
    let r = two!(i => _mm256_fnmadd_ps(n[i], splat(-2.121_944_4e-4), r[i]));
    // The degree-5 polynomial by Estrin's scheme (3 dependent steps instead of 5).
    let r2 = two!(i => _mm256_mul_ps(r[i], r[i]));
    let r4 = two!(i => _mm256_mul_ps(r2[i], r2[i]));
    let q0 = two!(i => _mm256_fmadd_ps(splat(1.666_666_5e-1), r[i], splat(5.000_000_1e-1)));
    let q1 = two!(i => _mm256_fmadd_ps(splat(8.333_452e-3), r[i], splat(4.166_579_6e-2)));
    let q2 = two!(i => _mm256_fmadd_ps(splat(1.987_569_1e-4), r[i], splat(1.398_199_9e-3)));
    let p = two!(i => _mm256_fmadd_ps(q2[i], r4[i], _mm256_fmadd_ps(q1[i], r2[i], q0[i])));
    let e = two!(i => _mm256_add_ps(_mm256_fmadd_ps(p[i], r2[i], r[i]), splat(1.0)));
    // 2^n: n is an integer in -126..=128 after the clamp.
    let scale = two!(i => _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n[i]),
        _mm256_set1_epi32(127),
    ))));
    let y = two!(i => _mm256_mul_ps(e[i], scale[i]));
    // NaN in, NaN out (the clamp dropped it).
    two!(i => _mm256_blendv_ps(y[i], x[i], _mm256_cmp_ps::<_CMP_UNORD_Q>(x[i], x[i])))
}

/// `erfc(x)` ([`crate::act::erfc`]'s fit).
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::excessive_precision)]
fn erfc2v(x: V2) -> V2 {
    // |x| capped at 9 (erfc(9) ≈ 4e-37, below what any output can show next to 2): past
    // it, e^{−z²} and t·e^{−z²} would be denormal, and operations on denormals take
    // microcode assists (GELU of large-magnitude inputs ran 2.7× slower on Zen 4).
    // (±∞ stays: GELU(−∞) is −∞·0, NaN, as IEEE has it.)
    let a = two!(i => _mm256_andnot_ps(splat(-0.0), x[i]));
    let inf = two!(i => _mm256_cmp_ps::<_CMP_EQ_OQ>(a[i], splat(f32::INFINITY)));
    let z = two!(i => _mm256_blendv_ps(_mm256_min_ps(a[i], splat(9.0)), a[i], inf[i]));
    let t = two!(i => _mm256_div_ps(splat(1.0), _mm256_fmadd_ps(z[i], splat(0.5), splat(1.0))));
    // The degree-9 polynomial in t by Estrin's scheme (pairs, then t², t⁴, t⁸): a chain
    // of 4 dependent steps instead of Horner's 9.
    let c = [
        -1.265_512_23f32,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let pair = |k: usize, t: &V2| two!(i => _mm256_fmadd_ps(splat(c[k + 1]), t[i], splat(c[k])));
    let (q0, q1, q2, q3, q4) = (
        pair(0, &t),
        pair(2, &t),
        pair(4, &t),
        pair(6, &t),
        pair(8, &t),
    );
    let t2 = two!(i => _mm256_mul_ps(t[i], t[i]));
    let t4 = two!(i => _mm256_mul_ps(t2[i], t2[i]));
    let t8 = two!(i => _mm256_mul_ps(t4[i], t4[i]));
    let r0 = two!(i => _mm256_fmadd_ps(q1[i], t2[i], q0[i]));
    let r1 = two!(i => _mm256_fmadd_ps(q3[i], t2[i], q2[i]));
    let s0 = two!(i => _mm256_fmadd_ps(r1[i], t4[i], r0[i]));
    let p = two!(i => _mm256_fmadd_ps(q4[i], t8[i], s0[i]));
    let e = exp2v(two!(i => _mm256_fnmadd_ps(z[i], z[i], p[i])));
    let ans = two!(i => _mm256_mul_ps(t[i], e[i]));
    let neg = two!(i => _mm256_cmp_ps::<_CMP_LT_OQ>(x[i], _mm256_setzero_ps()));
    two!(i => _mm256_blendv_ps(ans[i], _mm256_sub_ps(splat(2.0), ans[i]), neg[i]))
}

/// `tanh(x)` ([`crate::act::tanh`]'s two branches).
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::excessive_precision)]
fn tanh2v(x: V2) -> V2 {
    let sign = splat(-0.0);
    let a = two!(i => _mm256_andnot_ps(sign, x[i]));
    let e = exp2v(two!(i => _mm256_add_ps(a[i], a[i])));
    let big = two!(i => _mm256_sub_ps(
        splat(1.0),
        _mm256_div_ps(splat(2.0), _mm256_add_ps(e[i], splat(1.0)))
    ));
    let z = two!(i => _mm256_mul_ps(x[i], x[i]));
    let mut p = [splat(-5.704_988_7e-3); 2];
    for c in [
        2.063_908_9e-2,
        -5.373_971_6e-2,
        1.333_144_2e-1,
        -3.333_328_2e-1,
    ] {
        p = two!(i => _mm256_fmadd_ps(p[i], z[i], splat(c)));
    }
    let small = two!(i => _mm256_fmadd_ps(_mm256_mul_ps(p[i], z[i]), a[i], a[i]));
    let lt = two!(i => _mm256_cmp_ps::<_CMP_LT_OQ>(a[i], splat(0.625)));
    let t = two!(i => _mm256_blendv_ps(big[i], small[i], lt[i]));
    two!(i => _mm256_or_ps(t[i], _mm256_and_ps(x[i], sign)))
}

/// `act` over 16 values (two vectors); `None` for an activation without a form here.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn act2v(act: Act, x: V2) -> V2 {
    let half = splat(0.5);
    let one = splat(1.0);
    match act {
        Act::Exp => exp2v(x),
        Act::Sigmoid => {
            let e = exp2v(two!(i => _mm256_sub_ps(_mm256_setzero_ps(), x[i])));
            two!(i => _mm256_div_ps(one, _mm256_add_ps(one, e[i])))
        }
        Act::Swish(b) => {
            let e = exp2v(two!(i => _mm256_mul_ps(splat(-b), x[i])));
            two!(i => _mm256_div_ps(x[i], _mm256_add_ps(one, e[i])))
        }
        Act::Tanh => tanh2v(x),
        Act::Gelu => {
            let e = erfc2v(two!(i => _mm256_mul_ps(x[i], splat(-std::f32::consts::FRAC_1_SQRT_2))));
            two!(i => _mm256_mul_ps(_mm256_mul_ps(half, x[i]), e[i]))
        }
        Act::GeluTanh => {
            let x3 = two!(i => _mm256_mul_ps(_mm256_mul_ps(x[i], x[i]), x[i]));
            let u = two!(i => _mm256_mul_ps(splat(0.797_884_6), _mm256_fmadd_ps(x3[i], splat(0.044715), x[i])));
            let t = tanh2v(u);
            two!(i => _mm256_mul_ps(_mm256_mul_ps(half, x[i]), _mm256_add_ps(one, t[i])))
        }
        _ => x,
    }
}

/// Whether [`apply`] computes `act`.
pub(crate) fn covers(act: Act) -> bool {
    matches!(
        act,
        Act::Exp | Act::Sigmoid | Act::Swish(_) | Act::Tanh | Act::Gelu | Act::GeluTanh
    )
}

/// `xs = act(xs)` over whole blocks of 16 for an activation [`covers`] says yes to;
/// returns how many values it did (the caller does the rest).
///
/// # Safety
/// AVX2 and FMA present.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn apply(act: Act, xs: &mut [f32]) -> usize {
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds 16 floats.
        unsafe {
            let p = c.as_mut_ptr();
            let y = act2v(act, [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]);
            _mm256_storeu_ps(p, y[0]);
            _mm256_storeu_ps(p.add(8), y[1]);
        }
    }
    xs.len() / 16 * 16
}

/// `xs = e^{xs − shift}` over whole blocks of 16, returning how many values it did and
/// their sum (softmax; the caller does the rest).
///
/// # Safety
/// AVX2 and FMA present.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn exp_sum(xs: &mut [f32], shift: f32) -> (usize, f32) {
    let mut acc = [_mm256_setzero_ps(); 2];
    let s = splat(shift);
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds 16 floats.
        unsafe {
            let p = c.as_mut_ptr();
            let x = [
                _mm256_sub_ps(_mm256_loadu_ps(p), s),
                _mm256_sub_ps(_mm256_loadu_ps(p.add(8)), s),
            ];
            let y = exp2v(x);
            _mm256_storeu_ps(p, y[0]);
            _mm256_storeu_ps(p.add(8), y[1]);
            acc = two!(i => _mm256_add_ps(acc[i], y[i]));
        }
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(acc[0], acc[1])) };
    (xs.len() / 16 * 16, lanes.iter().sum())
}
