//! The AVX-512 direct kernel for convolutions with few taps (a network's first, 3 channels
//! × 3×3): output rows computed from their input rows split into stride phases, no im2col
//! panel (`conv::general` drives it, `conv::geom` has its geometry).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::consts::LANES;
use crate::conv::geom::{direct_scratch, direct_width, Conv2d, SplitRows, DIRECT_MAX_TAPS};

/// Lanes per vector.
const L: usize = LANES;

/// Output row `oy` of image `n` of a convolution with few taps, computed directly: the
/// `ic·kh` input rows it reads are split into their column-stride phases (zero padded),
/// so that tap `(c, ky, kx)` over 16 output columns is one load from phase `kx mod s` at
/// `kx / s`; 16 output channels accumulate at a time, each tap a broadcast weight times
/// that vector. Input row `iy` of channel `c` is split into slot `iy mod kh` of the
/// channel's rows, and stays there for the task's next output row if that reads it too
/// (`held`). Unlike im2col + GEMM, no panel is written and read back (a 3→16 stem conv
/// on 224×224 spent a third of its time building panels). Writes the raw sums (the
/// caller applies the epilogue).
///
/// # Safety
/// AVX-512F present; `x` holds image `n` (`ic·h·w` floats from `n·ic·h·w`), `w` the
/// weights transposed (`wt`: `ic·kh·kw × oc`, tap-major), `out` is writable at row `oy` of
/// every output plane of image `n` with no other alias there, `rows` holds
/// [`direct_scratch`] floats and is the task's own, as `held` is (a fresh
/// [`SplitRows`] with a task's first row, whatever `rows` holds).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn direct_row(
    p: &Conv2d,
    x: &[f32],
    wt: &[f32],
    out: *mut f32,
    (n, oy): (usize, usize),
    rows: &mut [f32],
    held: &mut SplitRows,
) {
    let s = p.stride[1];
    let wd = direct_width(p);
    let rows = &mut rows[..direct_scratch(p)];
    // The padding is zeroed with a task's first row; every later split writes the same
    // places, and a row outside the image is zeroed whole.
    if held.held.iter().all(Option::is_none) {
        rows.fill(0.0);
    }
    let mut at = [0usize; DIRECT_MAX_TAPS];
    let mut t = 0;
    for c in 0..p.ic {
        for ky in 0..p.kh {
            let iy = (oy * p.stride[0] + ky) as isize - p.pad[0] as isize;
            let slot = c * p.kh + iy.rem_euclid(p.kh as isize) as usize;
            let r = slot * s;
            // Tap (c, ky, kx) reads phase kx mod s of this split row from kx / s.
            for kx in 0..p.kw {
                at[t] = (r + kx % s) * wd + kx / s;
                t += 1;
            }
            if held.held[slot] == Some((n, iy)) {
                continue;
            }
            held.held[slot] = Some((n, iy));
            if iy < 0 || iy >= p.h as isize {
                rows[r * wd..(r + s) * wd].fill(0.0);
                continue;
            }
            let src = &x[((n * p.ic + c) * p.h + iy as usize) * p.w..][..p.w];
            for ph in 0..s {
                // Source columns ix ≡ ph − pad (mod s) land in phase ph from index
                // (ix0 + pad) / s on.
                let ix0 = (ph + s - p.pad[1] % s) % s;
                if ix0 >= p.w {
                    continue;
                }
                let count = (p.w - ix0).div_ceil(s);
                let at = (r + ph) * wd + (ix0 + p.pad[1]) / s;
                let dst = &mut rows[at..at + count];
                if s == 1 {
                    dst.copy_from_slice(&src[ix0..ix0 + count]);
                } else {
                    let src = &src[ix0..];
                    assert!(src.len() + 1 >= 2 * dst.len(), "evens: source too short");
                    // SAFETY: the source's length asserted; AVX-512F (this function's).
                    unsafe { super::im2col::evens(src, dst) };
                }
            }
        }
    }
    let at = &at[..t];
    let rp = rows.as_ptr();
    // Output channels 16 at a time, then a remainder in 8, 4, 2, 1.
    let mut oc0 = 0;
    while oc0 < p.oc {
        let left = p.oc - oc0;
        // SAFETY: the caller's contract; `rows` as split above, `at` inside them.
        unsafe {
            oc0 += match left {
                16.. => direct_block::<16>(p, rp, at, wt, out, (n, oy), oc0),
                8.. => direct_block::<8>(p, rp, at, wt, out, (n, oy), oc0),
                4.. => direct_block::<4>(p, rp, at, wt, out, (n, oy), oc0),
                2.. => direct_block::<2>(p, rp, at, wt, out, (n, oy), oc0),
                _ => direct_block::<1>(p, rp, at, wt, out, (n, oy), oc0),
            };
        }
    }
}

/// Output channels `oc0 .. oc0 + NB` of [`direct_row`]'s row (accumulators indexed by
/// constants only, so they stay in registers); returns `NB`.
///
/// # Safety
/// As [`direct_row`], with `rows` its split input rows and `at` where each tap's window
/// starts in them.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn direct_block<const NB: usize>(
    p: &Conv2d,
    rows: *const f32,
    at: &[usize],
    wt: &[f32],
    out: *mut f32,
    (n, oy): (usize, usize),
    oc0: usize,
) -> usize {
    let taps = at.len();
    // Tap t's output channels side by side in the transposed weights (`taps × oc`).
    let wt = &wt[..taps * p.oc];
    let mut xb = 0;
    while xb < p.ow {
        let lanes = L.min(p.ow - xb);
        let mask: __mmask16 = if lanes == L {
            0xffff
        } else {
            (1u16 << lanes) - 1
        };
        let mut acc = [_mm512_setzero_ps(); NB];
        // SAFETY: every read is inside the split rows (their width holds the output
        // columns plus the kernel's reach and a vector of slack); the stores are masked
        // to row oy's real columns of planes oc0.. of image n.
        unsafe {
            for (&a0, wt) in at.iter().zip(wt.chunks_exact(p.oc)).take(taps) {
                let v = _mm512_loadu_ps(rows.add(a0 + xb));
                for (a, &wo) in acc.iter_mut().zip(&wt[oc0..oc0 + NB]) {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(wo), v, *a);
                }
            }
            for (o, acc) in acc.iter().enumerate() {
                let at = out.add(((n * p.oc + oc0 + o) * p.oh + oy) * p.ow + xb);
                _mm512_mask_storeu_ps(at, mask, *acc);
            }
        }
        xb += L;
    }
    NB
}
