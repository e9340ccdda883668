//! The AVX2 deinterleave of a stride-2 conv's im2col rows (`conv::geom::Evens`).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// `dst[k] = src[2k]` 8 at a time by a vector deinterleave, as far as whole vectors of
/// both reach; returns how many it did (the caller does the rest).
///
/// # Safety
/// AVX2 and FMA present.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn evens(src: &[f32], dst: &mut [f32]) -> usize {
    let mut k = 0;
    // SAFETY: 16 floats from 2k are in `src`, 8 from k in `dst` (the loop's test).
    unsafe {
        while 2 * k + 16 <= src.len() && k + 8 <= dst.len() {
            let a = _mm256_loadu_ps(src.as_ptr().add(2 * k));
            let b = _mm256_loadu_ps(src.as_ptr().add(2 * k + 8));
            let ev = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)),
                0xD8,
            ));
            _mm256_storeu_ps(dst.as_mut_ptr().add(k), ev);
            k += 8;
        }
    }
    k
}
