//! The kernel of the blocked depthwise convolution (`conv::blocked`) on AVX-512: blocks of
//! 16 channels, the layout ONNX Runtime
//! keeps whole networks in (NCHW16c), made here inside the op: a block's input rows are
//! transposed into zero-padded `[width][16]` rows (a ring of the rows one output row
//! reads), each output pixel of the block is then one 16-lane accumulator (a tap is one
//! FMA, whatever the stride, width or kernel size — no idle lanes on 7×7 planes, no
//! shifted loads), and every 16 output pixels are transposed back into the block's 16
//! planes with their epilogue.
//!
//! A task is one (image, channel block, row chunk) item, handed to threads as they come
//! free; a task keeps the input rows one output row reads in a ring (at most
//! `conv::geom`'s `BLOCK_MAX` floats), and rows are cut into chunks when the blocks alone would leave
//! a thread idle (MobileNet's first depthwise conv has 16 channels: one block).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::consts::{LANES, MAX_TAPS};
use crate::conv::geom::{ActPost, Conv2d, ConvEpilogue, Tiling};
use crate::pool::SharedMut;

/// Lanes per vector: channels per block.
const L: usize = LANES;
/// Output pixels accumulating together.
const NB: usize = 8;

/// One (image, channel block, row chunk) item.
///
/// # Safety
/// AVX-512F present; `x`, `w`, `out` (through `op`) as long as `p` says (`x` in the
/// block's layout, `h·w·16` floats, with `blocked`: one image, one block); no other task
/// writes this item's part of `out`; `block` holds `ring·wp·16` floats, `row` `16·16`,
/// `wt` `kh·kw` taps; `sum`, if given, gets the item's per-channel sums of its output
/// (no residual). `act_post` applies the activation and post affine (the dispatcher hands in
/// `crate::act::act_post`).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run_item(
    p: &Conv2d,
    t: &Tiling,
    item: usize,
    (x, w, blocked): (&[f32], &[f32], bool),
    ep: &ConvEpilogue<'_>,
    op: SharedMut<f32>,
    block: &mut [f32],
    row: &mut [f32],
    wt: &mut [[f32; L]],
    sum: Option<&mut [f32]>,
    act_post: ActPost,
) {
    let mut total = _mm512_setzero_ps();
    let cblocks = p.oc.div_ceil(L);
    let (chunk, cb, img) = (
        item % t.chunks,
        (item / t.chunks) % cblocks,
        item / (t.chunks * cblocks),
    );
    let c0 = cb * L;
    let ch = L.min(p.oc - c0);
    let (oy0, oy1) = (chunk * t.rows, ((chunk + 1) * t.rows).min(p.oh));
    if oy0 >= oy1 {
        if let Some(sum) = sum {
            sum.fill(0.0);
        }
        return;
    }
    let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
    let plane0 = img * p.oc + c0;
    if t.claim {
        for j in 0..ch {
            // SAFETY: rows oy0..oy1 of plane plane0 + j: this item's part of `out`, all
            // of it written below.
            unsafe {
                crate::pool::claim_lines(
                    op.0.add((plane0 + j) * ohw + oy0 * p.ow),
                    (oy1 - oy0) * p.ow,
                )
            };
        }
    }
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    // Kernels 3 or 5 wide, column stride 1 or 2, undilated columns: one load per input
    // column ([`Taps::rows_of`]); any other: one per tap.
    let shape = if dw == 1 && matches!(p.kw, 3 | 5) && matches!(sw, 1 | 2) {
        (p.kw, sw)
    } else {
        (0, 0)
    };
    let (wp, ring) = (t.wp, t.ring);
    // Input row iy goes to ring slot iy % ring, padded left and right with zeros; rows
    // in the padding above and below are never stored (their taps are skipped).
    let xp = x.as_ptr();
    let bp = block.as_mut_ptr();
    let fill = |iy: usize| {
        // SAFETY: every read of x is inside plane (plane0 + j) for j < ch, at input row
        // iy < h and columns below w (masked); every write inside ring slot iy % ring
        // (wp·16 floats).
        unsafe {
            let dst = bp.add((iy % ring) * wp * L);
            let zero = |from: usize, to: usize| {
                for q in from..to {
                    _mm512_storeu_ps(dst.add(q * L), _mm512_setzero_ps());
                }
            };
            zero(0, p.pad[1]);
            zero(p.pad[1] + p.w, wp);
            if blocked {
                // Already 16 floats per pixel: a copy.
                std::ptr::copy_nonoverlapping(xp.add(iy * p.w * L), dst.add(p.pad[1] * L), p.w * L);
                return;
            }
            for x0 in (0..p.w).step_by(L) {
                let src = xp.add(plane0 * hw + iy * p.w + x0);
                let cols = L.min(p.w - x0);
                gather(src, hw, ch, cols, 2 * p.w, dst.add((p.pad[1] + x0) * L));
            }
        }
    };
    // The block's weights, tap-major (16 taps of the block's channels transposed at a
    // time), and bias.
    let taps = p.kh * p.kw;
    let wt = &mut wt[..taps];
    let cmask: __mmask16 = ((1u32 << ch) - 1) as __mmask16;
    // SAFETY: reads of w inside channels c0..c0+ch (taps each); writes inside wt.
    unsafe {
        for g in (0..taps).step_by(L) {
            let n = L.min(taps - g);
            gather(
                w.as_ptr().add(c0 * taps + g),
                taps,
                ch,
                n,
                0,
                wt[g].as_mut_ptr(),
            );
        }
    }
    let k = Taps {
        w: wt,
        // SAFETY: the bias of channels c0..c0+ch (masked).
        bias: ep.bias.map_or(_mm512_setzero_ps(), |b| unsafe {
            _mm512_maskz_loadu_ps(cmask, b[c0..].as_ptr())
        }),
        step: sw * L,
        kw: p.kw,
        col: dw * L,
    };
    let rp = row.as_mut_ptr();
    let mut rows = [(0usize, std::ptr::null::<f32>()); MAX_TAPS];
    // The next input row to fill.
    let mut filled = (oy0 * sh).saturating_sub(p.pad[0]);
    for oy in oy0..oy1 {
        // This output row reads input rows oy·sh − pad + ky·dh: those inside the input.
        let mut n_rows = 0;
        for ky in 0..p.kh {
            let iy = (oy * sh + ky * dh) as isize - p.pad[0] as isize;
            if iy < 0 || iy >= p.h as isize {
                continue;
            }
            let iy = iy as usize;
            while filled <= iy {
                fill(filled);
                filled += 1;
            }
            // SAFETY: a ring slot.
            rows[n_rows] = (ky, unsafe { bp.add((iy % ring) * wp * L) as *const f32 });
            n_rows += 1;
        }
        let rows = &rows[..n_rows];
        for x0 in (0..p.ow).step_by(L) {
            let cols = L.min(p.ow - x0);
            // SAFETY: pixel ox of this row reads its kernel rows' columns ox·sw + kx·dw
            // < wp; the pixel buffer holds 16·16 floats.
            unsafe {
                let mut ox = x0;
                while ox < x0 + cols {
                    let n = NB.min(x0 + cols - ox);
                    let (c, d) = (ox * sw * L, rp.add((ox - x0) * L));
                    macro_rules! go {
                        ($($n:literal)*) => {
                            match (n, shape) {
                                $(($n, (3, 1)) => k.rows_of::<$n, 3, 1>(rows, c, d),
                                ($n, (3, 2)) => k.rows_of::<$n, 3, 2>(rows, c, d),
                                ($n, (5, 1)) => k.rows_of::<$n, 5, 1>(rows, c, d),
                                ($n, (5, 2)) => k.rows_of::<$n, 5, 2>(rows, c, d),
                                ($n, _) => k.pixels::<$n>(rows, c, d),)*
                                _ => unreachable!("{n} pixels"),
                            }
                        };
                    }
                    go!(1 2 3 4 5 6 7 8);
                    ox += n;
                }
            }
            if ep.residual.is_none() {
                act_post(&mut row[..cols * L], ep.act, ep.post);
                if sum.is_some() {
                    for px in row[..cols * L].chunks_exact(L) {
                        // SAFETY: 16 floats of the pixel buffer.
                        total = _mm512_add_ps(total, unsafe { _mm512_loadu_ps(px.as_ptr()) });
                    }
                }
            }
            // Back into the block's planes.
            // SAFETY: reads inside the pixel buffer (cols pixels); writes row oy, columns
            // x0..x0+cols of planes plane0 + j, j < ch (masked).
            unsafe {
                let m: __mmask16 = ((1u32 << cols) - 1) as __mmask16;
                let mut v = [_mm512_setzero_ps(); L];
                for (i, v) in v.iter_mut().enumerate() {
                    if i < cols {
                        *v = _mm512_loadu_ps(rp.add(i * L));
                    }
                }
                transpose(&mut v);
                for (j, v) in v.iter().enumerate() {
                    let at = op.0.wrapping_add((plane0 + j) * ohw + oy * p.ow + x0);
                    _mm512_mask_storeu_ps(at, if j < ch { m } else { 0 }, *v);
                }
            }
        }
        // SAFETY: row oy of planes plane0 + j, j < ch, written above by this item only.
        unsafe {
            let o = op.0;
            if let Some(res) = ep.residual {
                for j in 0..ch {
                    let at = (plane0 + j) * ohw + oy * p.ow;
                    let seg = std::slice::from_raw_parts_mut(o.add(at), p.ow);
                    seg.iter_mut()
                        .zip(&res[at..at + p.ow])
                        .for_each(|(v, r)| *v += r);
                    act_post(seg, ep.act, ep.post);
                }
            }
        }
    }
    if let Some(sum) = sum {
        // SAFETY: `sum` holds 16 floats.
        unsafe { _mm512_storeu_ps(sum.as_mut_ptr(), total) };
    }
}

/// A block's taps: weights (tap-major, 16 channels each), the bias, the floats between
/// output pixels (`step`) and between kernel columns (`col`), and the kernel's width.
struct Taps<'a> {
    w: &'a [[f32; L]],
    bias: __m512,
    step: usize,
    kw: usize,
    col: usize,
}

impl Taps<'_> {
    /// `N` output pixels into `dst` (16 floats each) from the kernel rows `rows` holds as
    /// (ky, input row): kernel row `ky` of the first pixel starts `c` floats into its row
    /// (kernel rows over padding are left out: they add nothing).
    ///
    /// # Safety
    /// AVX-512F present; `row + c + i·step + kx·col` readable for 16 floats (each listed
    /// row, kernel column kx, pixel i < N); `dst` writable for `16·N` floats.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn pixels<const N: usize>(&self, rows: &[(usize, *const f32)], c: usize, dst: *mut f32) {
        let mut acc = [self.bias; N];
        // SAFETY: the caller's contract.
        unsafe {
            for &(ky, row) in rows {
                for kx in 0..self.kw {
                    let wv = _mm512_loadu_ps(self.w[ky * self.kw + kx].as_ptr());
                    let s = row.add(c + kx * self.col);
                    for (i, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_ps(wv, _mm512_loadu_ps(s.add(i * self.step)), *acc);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(dst.add(i * L), *acc);
            }
        }
    }

    /// [`Taps::pixels`] for a kernel `KW` wide with column stride `SW` and no column
    /// dilation: per kernel row, a window of the `KW` input columns a pixel reads slides
    /// `SW` columns per pixel, so each column is loaded once (`(N−1)·SW + KW` loads and
    /// `KW` weights for `N·KW` FMAs, where one load per FMA bound the plain loop).
    ///
    /// # Safety
    /// As [`Taps::pixels`], with `kw == KW`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows_of<const N: usize, const KW: usize, const SW: usize>(
        &self,
        rows: &[(usize, *const f32)],
        c: usize,
        dst: *mut f32,
    ) {
        let mut acc = [self.bias; N];
        // SAFETY: the caller's contract: column i·SW + kx of a kernel row is tap kx of
        // pixel i.
        unsafe {
            for &(ky, row) in rows {
                let s = row.add(c);
                let mut wv = [_mm512_setzero_ps(); KW];
                for (kx, wv) in wv.iter_mut().enumerate() {
                    *wv = _mm512_loadu_ps(self.w[ky * KW + kx].as_ptr());
                }
                let mut win = [_mm512_setzero_ps(); KW];
                for (q, v) in win.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(s.add(q * L));
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    for kx in 0..KW {
                        *acc = _mm512_fmadd_ps(wv[kx], win[kx], *acc);
                    }
                    if i + 1 < N {
                        for kx in 0..KW {
                            win[kx] = if kx + SW < KW {
                                win[kx + SW]
                            } else {
                                _mm512_loadu_ps(s.add(((i + 1) * SW + kx) * L))
                            };
                        }
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(dst.add(i * L), *acc);
            }
        }
    }
}

/// Columns `0..cols` of rows `0..rows` (`stride` floats apart from `src`; both at most 16)
/// into `cols` vectors of 16 at `dst`, one per column, lane j from row j (zero past
/// `rows`); with `ahead` > 0 each row is also prefetched that many floats on. The loops
/// run 16 times with masks (a row past `rows` loads nothing), so the vectors stay in
/// registers where a loop of `rows` put them on the stack.
///
/// # Safety
/// AVX-512F present; rows `0..rows` of `src` readable for `cols` floats; `dst` writable
/// for `16·cols` floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn gather(
    src: *const f32,
    stride: usize,
    rows: usize,
    cols: usize,
    ahead: usize,
    dst: *mut f32,
) {
    let m: __mmask16 = ((1u32 << cols) - 1) as __mmask16;
    let mut v = [_mm512_setzero_ps(); L];
    // SAFETY: the caller's contract; loads are masked to the real rows and columns.
    unsafe {
        for (j, v) in v.iter_mut().enumerate() {
            let at = src.wrapping_add(j * stride);
            *v = _mm512_maskz_loadu_ps(if j < rows { m } else { 0 }, at);
            if j < rows && ahead > 0 {
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(ahead) as *const i8);
            }
        }
        transpose(&mut v);
        for (i, v) in v.iter().enumerate() {
            if i < cols {
                _mm512_storeu_ps(dst.add(i * L), *v);
            }
        }
    }
}

/// Transposes 16 vectors of 16 in place: lane j of vector i becomes lane i of vector j.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose(r: &mut [__m512; L]) {
    // Pairs of rows interleaved, then pairs of pairs: within each 128-bit lane `q`,
    // vector 4a + b holds column 4q + b of rows 4a .. 4a+4.
    let mut t = [_mm512_setzero_ps(); L];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for a in 0..4 {
        let (t0, t1, t2, t3) = (
            _mm512_castps_pd(t[4 * a]),
            _mm512_castps_pd(t[4 * a + 1]),
            _mm512_castps_pd(t[4 * a + 2]),
            _mm512_castps_pd(t[4 * a + 3]),
        );
        r[4 * a] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[4 * a + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[4 * a + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[4 * a + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    // 128-bit lanes: vector b (+8) pairs lanes 0, 2 (1, 3) of rows 0–3 and 4–7 (8–11,
    // 12–15); then the halves are joined.
    for b in 0..4 {
        t[b] = _mm512_shuffle_f32x4::<0x88>(r[b], r[b + 4]);
        t[b + 4] = _mm512_shuffle_f32x4::<0xdd>(r[b], r[b + 4]);
        t[b + 8] = _mm512_shuffle_f32x4::<0x88>(r[b + 8], r[b + 12]);
        t[b + 12] = _mm512_shuffle_f32x4::<0xdd>(r[b + 8], r[b + 12]);
    }
    for b in 0..4 {
        r[b] = _mm512_shuffle_f32x4::<0x88>(t[b], t[b + 8]);
        r[b + 8] = _mm512_shuffle_f32x4::<0xdd>(t[b], t[b + 8]);
        r[b + 4] = _mm512_shuffle_f32x4::<0x88>(t[b + 4], t[b + 12]);
        r[b + 12] = _mm512_shuffle_f32x4::<0xdd>(t[b + 4], t[b + 12]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_rows_and_columns() {
        if crate::isa::isa() != crate::isa::Isa::Avx512 {
            return;
        }
        let m: Vec<f32> = (0..256).map(|i| i as f32).collect();
        // SAFETY: AVX-512F detected; 16 loads and stores of 16 floats inside `m`, `got`.
        let got = unsafe {
            let mut v = [_mm512_setzero_ps(); L];
            for (i, v) in v.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(m.as_ptr().add(16 * i));
            }
            transpose(&mut v);
            let mut got = vec![0f32; 256];
            for (i, v) in v.iter().enumerate() {
                _mm512_storeu_ps(got.as_mut_ptr().add(16 * i), *v);
            }
            got
        };
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(got[16 * j + i], m[16 * i + j], "({i}, {j})");
            }
        }
    }
}
