//! Depthwise convolution (one input and one output channel per group) a plane at a time:
//! the plane kernels with intrinsics where the dispatch table has them (the plane split
//! into its stride phases once, every tap accumulated in registers), else the portable
//! loops — flat over a padded copy for small planes ([`depthwise_flat`]), row by row
//! otherwise ([`depthwise_plane`]); or, where [`blocked_depthwise`] says, in blocks of 16
//! channels ([`super::blocked`]).

use super::finish_plane;
use super::geom::{Conv2d, ConvEpilogue, Depthwise};
use crate::consts::{LANES, MAX_TAPS};
use crate::isa::table;
use crate::pool::{chunk_range, SharedMut, ThreadPool};

/// Output rows at least this wide run the plane kernel 16 lanes wide where the dispatch
/// table has it (AVX-512; a 7-wide row would leave most of 16 lanes idle).
const WIDE_MIN_OW: usize = 14;

pub(super) fn depthwise(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    if blocked_depthwise(p) {
        super::blocked::depthwise(pool, p, x, w, ep, out, scratch);
        return;
    }
    let planes = p.n * p.oc;
    let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
    let op = SharedMut::new(out);
    // Groups of planes, four per thread, handed out as threads come free (one group per
    // thread left a thread waiting whenever the other was slow or descheduled).
    let threads = pool.threads();
    let tasks = crate::pool::chunks(planes, if threads > 1 { 4 * threads } else { 1 }, 1);
    let flat = small_plane(p);
    // The plane kernel with intrinsics: the phase geometry, the table's scatter into the
    // phases, and its kernel for rows this wide ([`WIDE_MIN_OW`]).
    let tab = &table().conv;
    let fast = match (tab.dw_scatter, tab.dw_plane) {
        (Some(scatter), Some(plane)) if fast_depthwise(p) => {
            let plane = match tab.dw_plane_wide {
                Some(wide) if p.ow >= WIDE_MIN_OW => wide,
                _ => plane,
            };
            Depthwise::new(p, flat_geometry(p)).map(|k| (k, scatter, plane))
        }
        _ => None,
    };
    let per = if flat {
        flat_scratch(p)
    } else if p.stride[1] > 1 {
        p.h * p.w
    } else {
        0
    };
    // Any thread may run a group (one slot each), unless there is one group.
    let slots = if tasks > 1 { threads } else { 1 };
    assert!(scratch.len() >= slots * per, "depthwise scratch too short");
    let sp = SharedMut::new(scratch);
    let task = |t: usize, thread: usize| {
        // SAFETY: a thread runs one task at a time, so its slot (below `slots`, asserted
        // to fit) is this task's.
        #[allow(unsafe_code)]
        let mine = unsafe { sp.slice(thread * per, per) };
        let mut fresh = true;
        for plane in chunk_range(planes, tasks, t) {
            let c = plane % p.oc;
            let xs = &x[plane * hw..(plane + 1) * hw];
            let ws = &w[c * p.kh * p.kw..(c + 1) * p.kh * p.kw];
            // SAFETY: planes are disjoint ranges of `out`, and each plane belongs to one task.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(plane * ohw, ohw) };
            if let (true, Some((k, scatter, kernel))) = (flat, &fast) {
                // The bias is added in the kernel.
                let b = ep.bias.map_or(0.0, |b| b[c]);
                // SAFETY: the kernels are the dispatch table's, which is private to this
                // crate and built once from detection, so their features are present;
                // `mine` holds `flat_scratch` floats, at least what the phases need.
                #[allow(unsafe_code)]
                unsafe {
                    scatter(k, xs, mine, fresh);
                    kernel(k, ws, b, o, mine);
                };
                fresh = false;
                finish_plane(p, &ConvEpilogue { bias: None, ..*ep }, plane, o);
                continue;
            }
            if flat {
                depthwise_flat(p, xs, ws, o, mine);
            } else {
                depthwise_plane(p, xs, ws, o, mine);
            }
            finish_plane(p, ep, plane, o);
        }
    };
    if p.macs() < 1 << 15 || tasks == 1 {
        (0..tasks).for_each(|t| task(t, 0));
    } else {
        pool.run_indexed(tasks, &task);
    }
}

/// Whether a depthwise conv runs in channel blocks ([`super::blocked`]): where that
/// kernel applies, on planes of at most 64×64 (it measured faster on all of MobileNetV3's
/// and PP-OCR rec's: 576×7×7 k5 55 → 28 µs, 288×14×14 k5 s2 40 → 17, 240×12×80 k5 235 →
/// 165 µs; 72×56×56 k3 s2 in 5 of 6 alternating runs, medians 77 → 67 µs), and on planes
/// too big for the AVX2 plane kernel's padded copy (PP-OCR det's 32×320×320 k3 s2: 2.6 →
/// 1.3 ms). Mid-sized planes keep the plane kernel, which measured faster there (det's
/// 64×160×160 k3 s2: 0.35–0.47 against 0.55–0.65 ms).
pub(super) fn blocked_depthwise(p: &Conv2d) -> bool {
    super::blocked::applies(p) && (p.h * p.w <= 4096 || !small_plane(p))
}

/// Depthwise planes whose padded copy holds at most this many floats (256 KiB) run
/// [`depthwise_flat`] when at most 32 wide; others run row by row ([`depthwise_plane`]).
const FLAT_MAX: usize = 64 * 1024;

pub(super) fn small_plane(p: &Conv2d) -> bool {
    // The portable flat loop takes equal strides only; the AVX2 kernel any up to 4.
    if p.stride[0] > 4 || p.stride[1] > 4 || (p.stride[0] != p.stride[1] && !fast_depthwise(p)) {
        return false;
    }
    // The portable flat loop's padded copy (and a strided plane's phase split) only pays
    // on narrow planes, whose rows are too short for the row-by-row loops; wide rows
    // vectorize as they are. The AVX2 kernel keeps every tap in registers and also wins
    // on wide planes (PP-OCR rec's 12 × 80 planes: 1.49 → 1.11 ms per conv), unless
    // padding makes the phases more than 3× the input (planes a few rows tall).
    let (hq, wq) = flat_geometry(p);
    let padded = p.stride[0] * p.stride[1] * hq * wq;
    if p.ow > 32 && !(fast_depthwise(p) && padded <= 3 * p.h * p.w) {
        return false;
    }
    padded <= FLAT_MAX
}

/// Whether the plane kernel with intrinsics (the dispatch table's, AVX2 and up) runs flat
/// planes.
fn fast_depthwise(p: &Conv2d) -> bool {
    table().conv.dw_plane.is_some() && p.kh * p.kw <= MAX_TAPS
}

/// The geometry of [`depthwise_flat`]: phase-plane rows and width (`hq`, `wq`); the padded
/// plane is `sh·hq × sw·wq`.
fn flat_geometry(p: &Conv2d) -> (usize, usize) {
    let [sh, sw] = p.stride;
    let wq = (p.ow + ((p.kw - 1) * p.dilation[1]) / sw + 1).max((p.w + p.pad[1]).div_ceil(sw));
    let hq = (p.oh + ((p.kh - 1) * p.dilation[0]) / sh + 2).max((p.h + p.pad[0]).div_ceil(sh) + 1);
    (hq, wq)
}

/// Scratch floats per thread for a flat plane: the AVX2 kernel's phases (plus 16 floats
/// of slack), or the portable loop's padded plane, phases and output grid.
pub(super) fn flat_scratch(p: &Conv2d) -> usize {
    let (hq, wq) = flat_geometry(p);
    let phases = p.stride[0] * p.stride[1] * hq * wq;
    if fast_depthwise(p) {
        phases + LANES
    } else {
        2 * phases + p.oh * wq + 8
    }
}

/// One small depthwise plane, computed flat. The input goes into a zero-padded plane
/// `s·hq × s·wq` (`s` the stride), split into `s²` phase planes by row and column parity
/// (`phase (r, c)` holds padded rows `r, r+s, …`, columns `c, c+s, …`). Tap `(ky, kx)`
/// then reads phase `(ky·dh mod s, kx·dw mod s)` at a fixed offset for every output, so
/// each tap is one contiguous multiply-add over the whole output, on a grid `wq` wide
/// whose extra columns are dropped at the end.
fn depthwise_flat(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], scratch: &mut [f32]) {
    crate::simd!(depthwise_flat_body(
        p: &Conv2d,
        x: &[f32],
        w: &[f32],
        o: &mut [f32],
        scratch: &mut [f32]
    ))
}

#[inline(always)]
fn depthwise_flat_body(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], scratch: &mut [f32]) {
    let s = p.stride[0];
    let (hq, wq) = flat_geometry(p);
    let (hp, wp) = (s * hq, s * wq);
    let (padded, rest) = scratch.split_at_mut(hp * wp);
    let (phases, wide) = rest.split_at_mut(hp * wp);
    padded.fill(0.0);
    for (iy, row) in x.chunks_exact(p.w).enumerate() {
        let at = (iy + p.pad[0]) * wp + p.pad[1];
        padded[at..at + p.w].copy_from_slice(row);
    }
    let plane = hq * wq;
    if s == 1 {
        phases[..plane].copy_from_slice(padded);
    } else {
        for r in 0..s {
            for c in 0..s {
                let ph = &mut phases[(r * s + c) * plane..(r * s + c + 1) * plane];
                for (i, prow) in ph.chunks_exact_mut(wq).enumerate() {
                    let src = &padded[(i * s + r) * wp..(i * s + r + 1) * wp];
                    for (j, v) in prow.iter_mut().enumerate() {
                        *v = src[j * s + c];
                    }
                }
            }
        }
    }
    let n = p.oh * wq;
    let wide = &mut wide[..n];
    wide.fill(0.0);
    for ky in 0..p.kh {
        let (ry, oy) = ((ky * p.dilation[0]) % s, (ky * p.dilation[0]) / s);
        for kx in 0..p.kw {
            let (rx, ox) = ((kx * p.dilation[1]) % s, (kx * p.dilation[1]) / s);
            let wv = w[ky * p.kw + kx];
            let base = (ry * s + rx) * plane + oy * wq + ox;
            debug_assert!(
                base + n <= (ry * s + rx + 1) * plane,
                "tap read leaves its phase"
            );
            for (d, v) in wide.iter_mut().zip(&phases[base..base + n]) {
                *d += wv * v;
            }
        }
    }
    for (oy, orow) in o.chunks_exact_mut(p.ow).enumerate() {
        orow.copy_from_slice(&wide[oy * wq..oy * wq + p.ow]);
    }
}

/// One depthwise plane. With a column stride `s > 1`, every input row is first split into
/// its `s` phases (`phase q` holds `x[q], x[q+s], …`, laid end to end; row `iy` at `iy·w` in
/// `phases`), so that every tap reads contiguous memory.
fn depthwise_plane(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], phases: &mut [f32]) {
    crate::simd!(depthwise_plane_body(
        p: &Conv2d,
        x: &[f32],
        w: &[f32],
        o: &mut [f32],
        phases: &mut [f32]
    ))
}

#[inline(always)]
fn depthwise_plane_body(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], phases: &mut [f32]) {
    o.fill(0.0);
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let [ph, pw] = p.pad;
    // Per kernel column: the valid output columns [lo, hi) (0 <= ox·sw + off < w) and where
    // they read, the same for every row — computed once.
    const MAX_KW: usize = 32;
    let split = sw > 1 && sw <= 8;
    let mut taps = [(0usize, 0usize, 0isize); MAX_KW];
    let kw = p.kw.min(MAX_KW);
    for (kx, t) in taps.iter_mut().enumerate().take(kw) {
        let off = (kx * dw) as isize - pw as isize;
        let lo = if off >= 0 {
            0
        } else {
            ((-off) as usize).div_ceil(sw)
        };
        let hi = if (p.w as isize) <= off {
            0
        } else {
            ((p.w as isize - off - 1) as usize / sw + 1).min(p.ow)
        };
        *t = (lo.min(hi), hi, off);
    }
    // Phase q of a row starts at `start[q]` in `phases` (only with a stride).
    let mut start = [0usize; 8];
    if split {
        let mut at = 0;
        for (q, st) in start.iter_mut().enumerate().take(sw) {
            *st = at;
            at += (p.w - q.min(p.w)).div_ceil(sw);
        }
        // Every input row split once (row iy's phases at iy·w in `phases`).
        for (xrow, prow) in x.chunks_exact(p.w).zip(phases.chunks_exact_mut(p.w)) {
            for (q, &st) in start.iter().enumerate().take(sw) {
                for (k, v) in xrow.iter().skip(q).step_by(sw).enumerate() {
                    prow[st + k] = *v;
                }
            }
        }
    }
    for oy in 0..p.oh {
        let orow = &mut o[oy * p.ow..(oy + 1) * p.ow];
        for ky in 0..p.kh {
            let iy = (oy * sh + ky * dh) as isize - ph as isize;
            if iy < 0 || iy >= p.h as isize {
                continue;
            }
            let xrow = &x[iy as usize * p.w..(iy as usize + 1) * p.w];
            let prow: &[f32] = if split {
                &phases[iy as usize * p.w..(iy as usize + 1) * p.w]
            } else {
                &[]
            };
            for kx in 0..p.kw {
                let wv = w[ky * p.kw + kx];
                let (lo, hi, off) = if kx < MAX_KW {
                    taps[kx]
                } else {
                    let off = (kx * dw) as isize - pw as isize;
                    let lo = if off >= 0 {
                        0
                    } else {
                        ((-off) as usize).div_ceil(sw)
                    };
                    let hi = if (p.w as isize) <= off {
                        0
                    } else {
                        ((p.w as isize - off - 1) as usize / sw + 1).min(p.ow)
                    };
                    (lo.min(hi), hi, off)
                };
                if lo >= hi {
                    continue;
                }
                let n = hi - lo;
                let src: &[f32] = if sw == 1 {
                    let st = (lo as isize + off) as usize;
                    &xrow[st..st + n]
                } else if split {
                    // x[ox·s + off] = phase (off mod s), element ox + ⌊off / s⌋.
                    let q = off.rem_euclid(sw as isize) as usize;
                    let j = (lo as isize + off.div_euclid(sw as isize)) as usize;
                    &prow[start[q] + j..start[q] + j + n]
                } else {
                    for (ox, d) in orow.iter_mut().enumerate().take(hi).skip(lo) {
                        *d += wv * xrow[(ox as isize * sw as isize + off) as usize];
                    }
                    continue;
                };
                for (d, s) in orow[lo..hi].iter_mut().zip(src) {
                    *d += wv * s;
                }
            }
        }
    }
}
