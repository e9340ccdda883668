//! The AVX-512 deinterleave of a stride-2 conv's input rows (`conv::geom::Evens`): for
//! im2col panels and the direct kernel's split rows.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// `dst[k] = src[2k]` for all of `dst`, 16 at a time by a two-register permute; the rest
/// (the source ends one float short of a whole last block) by masked loads and a masked
/// store. Returns `dst.len()`.
///
/// # Safety
/// `src` holds at least `2·dst.len() − 1` floats; AVX-512F present.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn evens(src: &[f32], dst: &mut [f32]) -> usize {
    let n = dst.len();
    let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let mask = |m: usize| -> __mmask16 {
        if m >= 16 {
            0xffff
        } else {
            (1u16 << m) - 1
        }
    };
    let mut k = 0;
    // SAFETY: full loads only while 32 floats from 2k are in `src`; the tail's
    // loads are masked to `src`'s end (`src` holds 2·n − 1 floats, the caller's
    // contract) and its store to `dst`'s.
    unsafe {
        while k + 16 <= n && 2 * k + 32 <= src.len() {
            let a = _mm512_loadu_ps(src.as_ptr().add(2 * k));
            let b = _mm512_loadu_ps(src.as_ptr().add(2 * k + 16));
            _mm512_storeu_ps(dst.as_mut_ptr().add(k), _mm512_permutex2var_ps(a, idx, b));
            k += 16;
        }
        while k < n {
            let left = src.len() - 2 * k;
            let a = _mm512_maskz_loadu_ps(mask(left), src.as_ptr().add(2 * k));
            let b = _mm512_maskz_loadu_ps(
                mask(left.saturating_sub(16)),
                src.as_ptr().add(2 * k + 16.min(left)),
            );
            let ev = _mm512_permutex2var_ps(a, idx, b);
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(k), mask(n - k), ev);
            k += 16;
        }
    }
    n
}
