//! The general path: implicit im2col — a panel of output pixels' columns gathered into a
//! small scratch panel, then multiplied ([`general`]) — and the direct kernel for few taps
//! ([`direct_conv`]), which reads the input rows split into stride phases instead.

use super::geom::{direct_applies, direct_scratch, Conv2d, ConvEpilogue};
use super::geom::{DIRECT_MAX_OC, DIRECT_MAX_TAPS};
use super::{finish_span, PANEL};
use crate::gemm::{self, Epilogue, Gemm, Mat};
use crate::isa::table;
use crate::pool::{chunk_range, SharedMut, ThreadPool};

impl Conv2d {
    /// Output pixels per panel for the general path (a multiple of 16, 16..=256).
    pub(crate) fn panel_cols(&self) -> usize {
        let q = self.oh * self.ow;
        let nb = (PANEL / self.kdim().max(1)).clamp(64, 256) / 32 * 32;
        nb.min(q.div_ceil(16) * 16).max(16)
    }
}

pub(super) fn general(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let (icg, ocg, kd) = (p.icg(), p.ocg(), p.kdim());
    let ohw = p.oh * p.ow;
    let nb = p.panel_cols();
    let panels = ohw.div_ceil(nb);
    let units = p.n * p.groups * panels;
    let threads = pool.threads().min(units).max(1);
    assert!(scratch.len() >= threads * kd * nb, "conv scratch too short");
    let op = SharedMut::new(out);
    let sp = SharedMut::new(scratch);
    let task = |t: usize| {
        // SAFETY: each task uses its own scratch slot t < threads.
        #[allow(unsafe_code)]
        let panel = unsafe { sp.slice(t * kd * nb, kd * nb) };
        let mut u = t;
        while u < units {
            let (img_g, pi) = (u / panels, u % panels);
            let (b, g) = (img_g / p.groups, img_g % p.groups);
            let q0 = pi * nb;
            let cols = nb.min(ohw - q0);
            im2col_panel(
                p,
                &x[(b * p.ic + g * icg) * p.h * p.w..],
                q0,
                cols,
                nb,
                panel,
            );
            let co = (b * p.oc + g * ocg) * ohw + q0;
            let e = Epilogue {
                row_bias: ep.bias.map(|bb| &bb[g * ocg..]),
                residual: ep.residual.map(|r| &r[co..]),
                act: ep.act,
                post: ep.post,
                ..Epilogue::default()
            };
            // SAFETY: units own disjoint (image, group, column panel) blocks of the output;
            // the slice starts at the block's first element and spans its rows.
            #[allow(unsafe_code)]
            let c = unsafe { op.slice(co, (ocg - 1) * ohw + cols) };
            gemm::sgemm_serial(
                Gemm {
                    m: ocg,
                    n: cols,
                    k: kd,
                },
                Mat::rows(&w[g * ocg * kd..], kd),
                Mat::rows(panel, nb),
                c,
                ohw,
                &e,
            );
            u += threads;
        }
    };
    pool.run(threads, &task);
}

/// `dst[k] = src[2k]` (`src` holds `2·dst.len() − 1` floats): a stride-2 conv's im2col
/// row, 8 at a time with a vector deinterleave on AVX2.
pub(crate) fn evens(src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    assert!(src.len() + 1 >= 2 * n, "evens: source too short");
    let mut k = 0;
    if let Some(vector) = table().conv.evens {
        // SAFETY: the source's length asserted above; the kernel is the dispatch table's,
        // which is private to this crate and built once from detection, so its features
        // are present.
        #[allow(unsafe_code)]
        let done = unsafe { vector(src, dst) };
        k = done;
    }
    for (j, v) in dst.iter_mut().enumerate().skip(k) {
        *v = src[2 * j];
    }
}

/// Gathers the im2col columns `q0 .. q0+cols` of one (image, group) into `panel`
/// (`K` rows of stride `nb`). Each panel row is filled one output row segment at a time:
/// zeros where the window falls in the padding, and a straight copy (stride 1) or a
/// strided read in between.
fn im2col_panel(p: &Conv2d, x: &[f32], q0: usize, cols: usize, nb: usize, panel: &mut [f32]) {
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let [ph, pw] = p.pad;
    let mut r = 0;
    for c in 0..p.icg() {
        let xc = &x[c * p.h * p.w..(c + 1) * p.h * p.w];
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let row = &mut panel[r * nb..r * nb + cols];
                let off = (kx * dw) as isize - pw as isize;
                // Output columns ox with 0 <= ox·sw + off < w.
                let lo = if off >= 0 {
                    0
                } else {
                    ((-off) as usize).div_ceil(sw)
                }
                .min(p.ow);
                let hi = if (p.w as isize) <= off {
                    0
                } else {
                    ((p.w as isize - off - 1) as usize / sw + 1).min(p.ow)
                }
                .max(lo);
                let mut q = q0;
                let mut done = 0;
                while done < cols {
                    let (oy, ox0) = (q / p.ow, q % p.ow);
                    let n = (p.ow - ox0).min(cols - done);
                    let seg = &mut row[done..done + n];
                    let iy = (oy * sh + ky * dh) as isize - ph as isize;
                    if iy < 0 || iy >= p.h as isize {
                        seg.fill(0.0);
                    } else {
                        let xr = &xc[iy as usize * p.w..(iy as usize + 1) * p.w];
                        // Segment columns ox0 .. ox0+n: zeros before lo, data in lo..hi, zeros after.
                        let a = lo.clamp(ox0, ox0 + n);
                        let b = hi.clamp(ox0, ox0 + n);
                        seg[..a - ox0].fill(0.0);
                        seg[b - ox0..].fill(0.0);
                        if b > a {
                            let dst = &mut seg[a - ox0..b - ox0];
                            let start = (a as isize * sw as isize + off) as usize;
                            if sw == 1 {
                                dst.copy_from_slice(&xr[start..start + (b - a)]);
                            } else if sw == 2 {
                                evens(&xr[start..start + 2 * (b - a) - 1], dst);
                            } else {
                                for (k, v) in dst.iter_mut().enumerate() {
                                    *v = xr[start + k * sw];
                                }
                            }
                        }
                    }
                    q += n;
                    done += n;
                }
                r += 1;
            }
        }
    }
}

/// Whether the direct few-tap kernel runs `p` (where the dispatch table has it: AVX-512).
pub(super) fn direct(p: &Conv2d) -> bool {
    table().conv.direct.is_some() && direct_applies(p)
}

/// Output rows the direct conv computes before it applies their epilogue.
const FINISH_ROWS: usize = 8;

/// [`super::ConvPath::Direct`]: output rows over the pool, each task's epilogue on its rows, 8 at
/// a time.
pub(super) fn direct_conv(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let direct_row = table()
        .conv
        .direct
        .expect("the direct path is chosen only where the table has its kernel");
    let per = direct_scratch(p);
    let units = p.n * p.oh;
    // The weights transposed, tap-major: a tap's output channels side by side.
    let taps = p.ic * p.kh * p.kw;
    let mut wt = [0f32; DIRECT_MAX_TAPS * DIRECT_MAX_OC];
    for o in 0..p.oc {
        for t in 0..taps {
            wt[t * p.oc + o] = w[o * taps + t];
        }
    }
    let wt = &wt[..taps * p.oc];
    let threads = pool.threads().min(units).max(1);
    assert!(scratch.len() >= threads * per, "conv scratch too short");
    let op = SharedMut::new(out);
    let sp = SharedMut::new(scratch);
    let opr = &op;
    let ohw = p.oh * p.ow;
    let task = |t: usize| {
        // SAFETY: task t owns scratch slot t.
        #[allow(unsafe_code)]
        let rows = unsafe { sp.slice(t * per, per) };
        let shared: &SharedMut<f32> = opr;
        let mut held = super::geom::SplitRows::new();
        let mine = chunk_range(units, threads, t);
        // The epilogue runs on the task's rows, every FINISH_ROWS of them, while they
        // are in cache (a pass per plane afterwards read at 2 threads rows the other
        // core had written, and cost a second fork-join).
        let mut done = mine.start;
        let finish = |to: usize, done: &mut usize| {
            while *done < to {
                let img = *done / p.oh;
                let end = to.min((img + 1) * p.oh);
                let (y0, y1) = (*done % p.oh, (end - 1) % p.oh + 1);
                for oc in 0..p.oc {
                    let plane = img * p.oc + oc;
                    // SAFETY: rows y0..y1 of this image's planes are this task's
                    // (units are disjoint between tasks) and written above.
                    #[allow(unsafe_code)]
                    let o = unsafe { shared.slice(plane * ohw + y0 * p.ow, (y1 - y0) * p.ow) };
                    finish_span(p, ep, plane, y0 * p.ow, o);
                }
                *done = end;
            }
        };
        for u in mine.clone() {
            // SAFETY: the kernel is the dispatch table's, which is private to this crate
            // and built once from detection, so its features are present; unit u writes
            // only row u % oh of image u / oh's planes (disjoint between units); the asserts
            // in `conv2d` cover the slices.
            #[allow(unsafe_code)]
            unsafe {
                direct_row(p, x, wt, shared.0, (u / p.oh, u % p.oh), rows, &mut held)
            };
            if u + 1 - done >= FINISH_ROWS {
                finish(u + 1, &mut done);
            }
        }
        finish(mine.end, &mut done);
    };
    pool.run(threads, &task);
}
