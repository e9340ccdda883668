//! The AVX2+FMA depthwise plane of [`crate::conv`], with intrinsics.
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

use crate::conv::Conv2d;

/// Most taps a kernel may have here (larger kernels take the portable path).
pub(crate) const MAX_TAPS: usize = 64;

/// A depthwise convolution's plane kernel, with everything that does not depend on the
/// plane (phase geometry, tap offsets) computed once per call.
pub(crate) struct Depthwise {
    pub(crate) p: Conv2d,
    hq: usize,
    pub(crate) wq: usize,
    /// Offset of each tap in the phases, relative to output (0, 0).
    pub(crate) off: [usize; MAX_TAPS],
}

/// The output vectors of a plane, in order: row by row, `lanes` columns each (a row's
/// last one reaching past its end); each as (offset in the output, offset in the
/// phases).
pub(crate) struct Walk {
    ow: usize,
    oh: usize,
    wq: usize,
    lanes: usize,
    per_row: usize,
    oy: usize,
    c: usize,
}

impl Walk {
    pub(crate) fn new(p: &Conv2d, wq: usize, lanes: usize) -> Walk {
        Walk {
            ow: p.ow,
            oh: p.oh,
            wq,
            lanes,
            per_row: p.ow.div_ceil(lanes),
            oy: 0,
            c: 0,
        }
    }

    /// Vectors in the plane.
    pub(crate) fn total(&self) -> usize {
        self.oh * self.per_row
    }

    /// The next vector's offsets.
    pub(crate) fn advance(&mut self) -> (usize, usize) {
        let at = self.lanes * self.c;
        let j = (self.oy * self.ow + at, self.oy * self.wq + at);
        self.c += 1;
        if self.c == self.per_row {
            self.c = 0;
            self.oy += 1;
        }
        j
    }
}

impl Depthwise {
    /// The kernel for `p` with phase planes `hq × wq`; `None` when its taps exceed
    /// [`MAX_TAPS`].
    pub(crate) fn new(p: &Conv2d, (hq, wq): (usize, usize)) -> Option<Depthwise> {
        if p.kh * p.kw > MAX_TAPS {
            return None;
        }
        let [sh, sw] = p.stride;
        let plane = hq * wq;
        let mut off = [0usize; MAX_TAPS];
        for ky in 0..p.kh {
            let (ry, oy) = ((ky * p.dilation[0]) % sh, (ky * p.dilation[0]) / sh);
            for kx in 0..p.kw {
                let (rx, ox) = ((kx * p.dilation[1]) % sw, (kx * p.dilation[1]) / sw);
                off[ky * p.kw + kx] = (ry * sw + rx) * plane + oy * wq + ox;
            }
        }
        Some(Depthwise { p: *p, hq, wq, off })
    }

    /// Floats of `phases` [`Depthwise::plane`] uses (16 of slack past the phases, for
    /// a row's last vector to read past its end, 16 lanes wide on AVX-512).
    pub(crate) fn phases_len(&self) -> usize {
        self.p.stride[0] * self.p.stride[1] * self.hq * self.wq + 16
    }

    /// Scatters the plane `x` into its zero-padded stride phases (`phases` holds at least
    /// [`Depthwise::phases_len`] floats); `fresh` as [`Depthwise::plane`] says.
    ///
    /// # Safety
    /// AVX2 present.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn scatter(&self, x: &[f32], phases: &mut [f32], fresh: bool) {
        let (p, wq) = (&self.p, self.wq);
        let [sh, s] = p.stride;
        let plane = self.hq * wq;
        let phases = &mut phases[..self.phases_len()];
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
                            let v = _mm256_permutevar8x32_ps(
                                a,
                                _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7),
                            );
                            let (ev, od) =
                                (_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
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

    /// One plane: `o` (`oh × ow`) from `x` (`h × w`), the plane's `kh × kw` weights and
    /// its bias; `phases` holds at least [`Depthwise::phases_len`] floats. `fresh`: the
    /// phases have not been used by this kernel since they were handed out, so their
    /// padding is zeroed first; every later plane scatters into exactly the same places
    /// and leaves the padding as it was.
    ///
    /// # Safety
    /// AVX2 and FMA present; the slices as long as stated.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::int_plus_one)] // `t + $u <= total` reads the same for every group size
    pub(crate) unsafe fn plane(
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
                                acc[u] =
                                    _mm256_fmadd_ps(w, _mm256_loadu_ps(base[u].add(q)), acc[u]);
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
                            acc[u][h] =
                                _mm256_fmadd_ps(w, _mm256_loadu_ps(base[u].add(q)), acc[u][h]);
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
}
