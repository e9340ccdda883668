//! The AVX-512 depthwise plane: [`crate::conv_avx2::Depthwise`]'s stride phases and tap
//! offsets, with output vectors 16 lanes wide (half the loads and FMAs of the AVX2
//! plane on rows of 14 and more) and up to 8 of them accumulating together. The last
//! vector of the plane is stored with a lane mask; a row's last vector otherwise spills
//! into the next row's start, which a later vector (in this order) writes again.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::conv_avx2::Depthwise;

/// Lanes per vector.
const L: usize = 16;

impl Depthwise {
    /// As [`Depthwise::plane`], 16 lanes wide.
    ///
    /// # Safety
    /// AVX-512F present; the slices as long as [`Depthwise::plane`] says.
    #[target_feature(enable = "avx512f,avx2")]
    #[allow(clippy::int_plus_one)] // `t + $u <= total` reads the same for every group size
    pub(crate) unsafe fn plane512(
        &self,
        x: &[f32],
        w: &[f32],
        bias: f32,
        o: &mut [f32],
        phases: &mut [f32],
        fresh: bool,
    ) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.scatter(x, phases, fresh) };
        let p = &self.p;
        let wq = self.wq;
        let taps = p.kh * p.kw;
        let (off, wv) = (&self.off[..taps], &w[..taps]);
        let mut walk = crate::conv_avx2::Walk::new(p, wq, L);
        let total = walk.total();
        let mut next = || walk.advance();
        let olen = o.len();
        let pp = phases.as_ptr();
        let op = o.as_mut_ptr();
        let store = |at: usize, v: __m512| {
            // SAFETY: a whole vector when it fits in `o`; else only the lanes inside it.
            unsafe {
                if at + L <= olen {
                    _mm512_storeu_ps(op.add(at), v);
                } else {
                    let mask: __mmask16 = (1u16 << (olen - at)) - 1;
                    _mm512_mask_storeu_ps(op.add(at), mask, v);
                }
            }
        };
        let b0 = _mm512_set1_ps(bias);
        let mut t = 0;
        macro_rules! group {
            ($u:literal) => {
                while t + $u <= total {
                    let mut j = [(0usize, 0usize); $u];
                    j.iter_mut().for_each(|j| *j = next());
                    let mut acc = [b0; $u];
                    // SAFETY: reads are at phase rows oy + ⌊ky·dh/s⌋ < hq of one phase,
                    // columns from 16c + ⌊kx·dw/s⌋ on, 16 floats: inside the
                    // `s²·hq·wq + 16` floats of `phases`.
                    unsafe {
                        let mut base = [pp; $u];
                        for u in 0..$u {
                            base[u] = pp.add(j[u].1);
                        }
                        for (&q, &wq) in off.iter().zip(wv) {
                            let w = _mm512_set1_ps(wq);
                            for u in 0..$u {
                                acc[u] =
                                    _mm512_fmadd_ps(w, _mm512_loadu_ps(base[u].add(q)), acc[u]);
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
        group!(8);
        match total - t {
            7 => group!(7),
            6 => group!(6),
            5 => group!(5),
            4 => group!(4),
            3 => group!(3),
            2 => group!(2),
            1 => group!(1),
            _ => {}
        }
    }
}

/// Most taps (`ic·kh·kw`) the direct kernel takes: a network's first convolution (3
/// channels, 3×3: 27) and the like.
pub(crate) const DIRECT_MAX_TAPS: usize = 64;

/// Most output channels the direct kernel takes (its transposed weights live on the
/// stack: 16 KiB at most).
pub(crate) const DIRECT_MAX_OC: usize = 64;

/// Whether [`direct_row`] covers `p`: ungrouped, few taps and output channels, unit
/// dilation, column stride 1 or 2, rows at least a vector wide.
pub(crate) fn direct_applies(p: &crate::conv::Conv2d) -> bool {
    p.groups == 1
        && p.ic * p.kh * p.kw <= DIRECT_MAX_TAPS
        && p.oc <= DIRECT_MAX_OC
        && p.dilation == [1, 1]
        && (p.stride[1] == 1 || p.stride[1] == 2)
        && p.ow >= L
}

/// Floats of scratch [`direct_row`] needs: each of the `ic·kh` input rows it reads, split
/// into its column-stride phases, zero-padded, with a vector of slack.
pub(crate) fn direct_scratch(p: &crate::conv::Conv2d) -> usize {
    p.ic * p.kh * p.stride[1] * direct_width(p)
}

fn direct_width(p: &crate::conv::Conv2d) -> usize {
    (p.w + 2 * p.pad[1])
        .div_ceil(p.stride[1])
        .max(p.ow + (p.kw - 1) / p.stride[1])
        + L
}

/// Which input row each of [`direct_row`]'s split rows holds, so that a task's next
/// output row splits only the input rows it does not share with the last one (a stride-2
/// 3×3 conv shares one of its three, a stride-1 one two).
#[derive(Debug, Clone)]
pub(crate) struct SplitRows {
    /// Per split row (`c·kh + slot`): the (image, input row) it holds, if any.
    held: [Option<(usize, isize)>; DIRECT_MAX_TAPS],
}

impl SplitRows {
    /// None held yet (a task's first row).
    pub(crate) fn new() -> SplitRows {
        SplitRows {
            held: [None; DIRECT_MAX_TAPS],
        }
    }
}

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
    p: &crate::conv::Conv2d,
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
                    crate::conv::evens(&src[ix0..], dst);
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
    p: &crate::conv::Conv2d,
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
