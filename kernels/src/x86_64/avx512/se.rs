//! The AVX-512 gating of a squeeze-and-excitation block's planes (`ops::se`).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::consts::LANES;

/// Lanes per vector.
const L: usize = LANES;

/// `ops::se`'s `scale_planes` on AVX-512 (`crate::isa`'s `ScalePlanes`): `n` planes of `hw` floats at `o` (read from `src`, else
/// from `o`).
///
/// # Safety
/// `o` (and `src`) valid for `n·hw` floats, `gates` for `n`; AVX-512F present.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn scale_planes(
    o: *mut f32,
    src: Option<*const f32>,
    gates: &[f32],
    n: usize,
    hw: usize,
) {
    let rem = hw % L;
    let mask: __mmask16 = if rem == 0 { 0 } else { (1u16 << rem) - 1 };
    let full = hw - rem;
    let x = src.unwrap_or(o.cast_const());
    for (k, &g) in gates.iter().enumerate().take(n) {
        let gv = _mm512_set1_ps(g);
        let base = k * hw;
        // SAFETY: plane k lies in the n·hw floats the caller guarantees; the tail is
        // masked to the plane.
        unsafe {
            let mut p = base;
            while p < base + full {
                _mm512_storeu_ps(o.add(p), _mm512_mul_ps(_mm512_loadu_ps(x.add(p)), gv));
                p += L;
            }
            if rem > 0 {
                let v = _mm512_maskz_loadu_ps(mask, x.add(p));
                _mm512_mask_storeu_ps(o.add(p), mask, _mm512_mul_ps(v, gv));
            }
        }
    }
}
