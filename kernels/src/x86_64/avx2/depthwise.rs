//! The AVX2+FMA depthwise plane of [`crate::conv`], with intrinsics, on the phase geometry
//! of `conv::geom::Depthwise`.
//!
//! The input plane is scattered once into its `s²` zero-padded stride phases (`phase
//! (r, c)` holds padded rows `r, r+s, …` and columns `c, c+s, …`, each `hq × wq`; for
//! stride 2 the column split is a vector deinterleave). Tap `(ky, kx)` then reads phase
//! `(ky·dh mod s, kx·dw mod s)` at a fixed offset from the output position, so an output
//! vector of 8 columns is `Σ_taps w · load(phase + offset)`: all the taps accumulate in a
//! register and the output is written once. Four output vectors run together (four
//! independent FMA chains). No masked loads or stores (slow on AMD): a row's last vector
//! spills into slack or into the next row, written again later.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::conv::geom::{Depthwise, Walk};

/// Scatters the plane `x` into its zero-padded stride phases (`phases` holds at least
/// [`Depthwise::phases_len`] floats); `fresh` as `conv::geom::DwScatter` says.
///
/// # Safety
/// AVX2 present.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn scatter(k: &Depthwise, x: &[f32], phases: &mut [f32], fresh: bool) {
    let (p, wq) = (&k.p, k.wq);
    let [sh, s] = p.stride;
    let plane = k.hq * wq;
    let phases = &mut phases[..k.phases_len()];
    if fresh {
        phases.fill(0.0);
    }
    // Scatter: padded row r = iy + pad_top goes to phase row (r mod sh), index r / sh;
    // padded column c = ix + pad_left to phase column (c mod s), index c / s (s the
    // column stride).
    let (mut pr, mut qi) = (p.pad[0] % sh, p.pad[0] / sh);
    for xrow in x.chunks_exact(p.w) {
        let row_at = |pc: usize| (pr * s + pc) * plane + qi * wq;
        match s {
            1 => {
                let at = row_at(0) + p.pad[1];
                phases[at..at + p.w].copy_from_slice(xrow);
            }
            2 => {
                let (e0, o0) = (row_at(0), row_at(1));
                // x[ix] with ix ≡ src0 (mod 2) goes to phase column 0, the others to 1.
                let (src0, src1) = if p.pad[1] % 2 == 0 { (0, 1) } else { (1, 0) };
                let pairs = p.w / 2;
                let mut k = 0;
                // SAFETY: 16 (8) floats from 2k are inside `xrow` (k + 8 <= pairs, or
                // k + 4 <= pairs); the stores land at phase indices < wq (the geometry
                // holds the padded row).
                unsafe {
                    while k < pairs && pairs >= 8 {
                        // The last block overlaps the one before rather than leaving
                        // a scalar tail (it stores the same values again).
                        k = k.min(pairs - 8);
                        let a = _mm256_loadu_ps(xrow.as_ptr().add(2 * k));
                        let b = _mm256_loadu_ps(xrow.as_ptr().add(2 * k + 8));
                        // evens / odds, in order after the cross-lane fix-up
                        let ev = _mm256_castpd_ps(_mm256_permute4x64_pd(
                            _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)),
                            0xD8,
                        ));
                        let od = _mm256_castpd_ps(_mm256_permute4x64_pd(
                            _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)),
                            0xD8,
                        ));
                        let (to0, to1) = if src0 == 0 { (ev, od) } else { (od, ev) };
                        // x[2k + src] lands at (2k + src + pad) / 2 of its phase row.
                        let i0 = (2 * k + src0 + p.pad[1]) / 2;
                        let i1 = (2 * k + src1 + p.pad[1]) / 2;
                        debug_assert!(i0 + 8 <= wq && i1 + 8 <= wq);
                        _mm256_storeu_ps(phases.as_mut_ptr().add(e0 + i0), to0);
                        _mm256_storeu_ps(phases.as_mut_ptr().add(o0 + i1), to1);
                        k += 8;
                    }
                    // Rows of 8 to 15: four pairs at a time, the last block again
                    // overlapping (a 14-wide row would otherwise go one by one).
                    while k < pairs && (4..8).contains(&pairs) {
                        k = k.min(pairs - 4);
                        let a = _mm256_loadu_ps(xrow.as_ptr().add(2 * k));
                        // evens in the low half, odds in the high half
                        let v =
                            _mm256_permutevar8x32_ps(a, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
                        let (ev, od) = (_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                        let (to0, to1) = if src0 == 0 { (ev, od) } else { (od, ev) };
                        let i0 = (2 * k + src0 + p.pad[1]) / 2;
                        let i1 = (2 * k + src1 + p.pad[1]) / 2;
                        debug_assert!(i0 + 4 <= wq && i1 + 4 <= wq);
                        _mm_storeu_ps(phases.as_mut_ptr().add(e0 + i0), to0);
                        _mm_storeu_ps(phases.as_mut_ptr().add(o0 + i1), to1);
                        k += 4;
                    }
                }
                let k = if pairs >= 4 { pairs } else { 0 };
                for (ix, &v) in xrow.iter().enumerate().skip(2 * k) {
                    let c = ix + p.pad[1];
                    phases[row_at(c % 2) + c / 2] = v;
                }
            }
            _ => {
                let (mut pc, mut ci) = (p.pad[1] % s, p.pad[1] / s);
                for &v in xrow {
                    phases[row_at(pc) + ci] = v;
                    pc += 1;
                    if pc == s {
                        pc = 0;
                        ci += 1;
                    }
                }
            }
        }
        pr += 1;
        if pr == sh {
            pr = 0;
            qi += 1;
        }
    }
}

/// One plane: `o` (`oh × ow`) from the plane's phases ([`scatter`]), its `kh × kw` weights
/// and its bias; `phases` holds at least [`Depthwise::phases_len`] floats.
///
/// # Safety
/// AVX2 and FMA present; the slices as long as stated.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::int_plus_one)] // `t + $u <= total` reads the same for every group size
pub(crate) unsafe fn plane(k: &Depthwise, w: &[f32], bias: f32, o: &mut [f32], phases: &[f32]) {
    let p = &k.p;
    let wq = k.wq;
    let taps = p.kh * p.kw;
    let (off, wv) = (&k.off[..taps], &w[..taps]);
    // Output vectors: (row, first column), four at a time, all 8 lanes wide. A row's
    // last vector reads past the row's end within `phases` (the `+ 8` slack) and writes
    // past it into the next row's start, which a later vector (in this order) writes
    // again; only a vector that would leave `o` goes through a local copy.
    let mut walk = Walk::new(p, wq, 8);
    let total = walk.total();
    let mut next = || walk.advance();
    let olen = o.len();
    let pp = phases.as_ptr();
    let op = o.as_mut_ptr();
    let store = |at: usize, v: __m256| {
        // SAFETY: a whole vector only when it fits in `o`; else the lanes inside `o`.
        unsafe {
            if at + 8 <= olen {
                _mm256_storeu_ps(op.add(at), v);
            } else {
                let mut tmp = [0f32; 8];
                _mm256_storeu_ps(tmp.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), op.add(at), olen - at);
            }
        }
    };
    let b0 = _mm256_set1_ps(bias);
    let mut t = 0;
    macro_rules! group {
        ($u:literal) => {
            while t + $u <= total {
                let mut j = [(0usize, 0usize); $u];
                j.iter_mut().for_each(|j| *j = next());
                let mut acc = [b0; $u];
                // SAFETY: reads are at phase rows oy + ⌊ky·dh/s⌋ < hq of one phase,
                // columns from 8c + ⌊kx·dw/s⌋ on, 8 floats: inside `s²·hq·wq + 8`
                // floats of `phases`.
                unsafe {
                    let mut base = [pp; $u];
                    for u in 0..$u {
                        base[u] = pp.add(j[u].1);
                    }
                    for (&q, &wq) in off.iter().zip(wv) {
                        let w = _mm256_set1_ps(wq);
                        for u in 0..$u {
                            acc[u] = _mm256_fmadd_ps(w, _mm256_loadu_ps(base[u].add(q)), acc[u]);
                        }
                    }
                }
                for u in 0..$u {
                    store(j[u].0, acc[u]);
                }
                t += $u;
            }
        };
    }
    // A last group of 1–3 vectors splits its taps over two accumulators per vector
    // (even and odd taps, added at the end), so that it is not one long chain of
    // dependent FMAs: a 7×7 plane is 7 vectors, 6 + 1.
    macro_rules! split_group {
        ($u:literal) => {{
            let mut j = [(0usize, 0usize); $u];
            j.iter_mut().for_each(|j| *j = next());
            let mut acc = [[b0, _mm256_setzero_ps()]; $u];
            // SAFETY: as in `group!`.
            unsafe {
                let mut base = [pp; $u];
                for u in 0..$u {
                    base[u] = pp.add(j[u].1);
                }
                for (tap, (&q, &wq)) in off.iter().zip(wv).enumerate() {
                    let w = _mm256_set1_ps(wq);
                    let h = tap & 1;
                    for u in 0..$u {
                        acc[u][h] = _mm256_fmadd_ps(w, _mm256_loadu_ps(base[u].add(q)), acc[u][h]);
                    }
                }
            }
            for u in 0..$u {
                store(j[u].0, _mm256_add_ps(acc[u][0], acc[u][1]));
            }
        }};
    }
    // Six at a time (independent FMA chains hide the FMA latency), then the rest as
    // one group.
    group!(6);
    match total - t {
        5 => group!(5),
        4 => group!(4),
        3 => split_group!(3),
        2 => split_group!(2),
        1 => split_group!(1),
        _ => {}
    }
}
