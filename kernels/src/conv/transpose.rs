//! Transposed convolution: per kernel tap, a product of its weights with a panel of input
//! pixels, scattered into the output.

use super::geom::Conv2d;
use super::PANEL;
use crate::gemm::{self, Epilogue, Gemm, Mat};
use crate::pool::{chunk_range, SharedMut, ThreadPool};

/// A transposed convolution's geometry: the fields of [`Conv2d`] (input `[n, ic, h, w]`,
/// output `[n, oc, oh, ow]`, padding resolved to top/left; the output size is given, so
/// output padding is implied), with weights laid out `[ic, oc/groups, kh, kw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2d(pub Conv2d);

impl ConvTranspose2d {
    /// Input pixels per panel.
    fn panel_cols(&self) -> usize {
        let p = &self.0;
        (PANEL / p.ocg().max(1))
            .clamp(16, 1024)
            .min(p.h * p.w)
            .max(1)
    }

    /// Scratch floats [`conv_transpose2d`] needs at `threads` threads.
    pub fn scratch_len(&self, threads: usize) -> usize {
        threads.max(1) * self.0.ocg() * self.panel_cols()
    }

    /// Multiply-adds.
    pub fn macs(&self) -> usize {
        let p = &self.0;
        p.n * p.ic * p.h * p.w * p.ocg() * p.kh * p.kw
    }
}

/// `out = conv_transpose(x, w) + bias`. Each kernel tap `(ky, kx)` is a product of its
/// weight slice with a panel of input pixels (into `scratch`), scattered into the output
/// at `(iy·s − pad + ky·d, ix·s − pad + kx·d)`. Work is split over output channels'
/// (image, group) blocks and output rows so that no two tasks write the same element.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    pool: &ThreadPool,
    t: &ConvTranspose2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let p = &t.0;
    let (icg, ocg) = (p.icg(), p.ocg());
    let (hw, ohw, taps) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    assert!(x.len() >= p.n * p.ic * hw, "conv_transpose input too short");
    assert!(
        w.len() >= p.ic * ocg * taps,
        "conv_transpose weights too short"
    );
    assert!(
        out.len() >= p.n * p.oc * ohw,
        "conv_transpose output too short"
    );
    let nb = t.panel_cols();
    // Work units: (image, group, chunk of output channels); each writes only its own
    // channels' planes, so units never touch the same element.
    let chunks_per = pool.threads().min(ocg).max(1);
    let units = p.n * p.groups * chunks_per;
    let threads = pool.threads().min(units).max(1);
    assert!(
        scratch.len() >= threads * ocg * nb,
        "conv_transpose scratch too short"
    );
    let op = SharedMut::new(out);
    let sp = SharedMut::new(scratch);
    let task = |t: usize| {
        // SAFETY: scratch slot t belongs to task t.
        #[allow(unsafe_code)]
        let tmp = unsafe { sp.slice(t * ocg * nb, ocg * nb) };
        let mut u = t;
        while u < units {
            let (bg, ch) = (u / chunks_per, u % chunks_per);
            let (b, g) = (bg / p.groups, bg % p.groups);
            let cr = chunk_range(ocg, chunks_per, ch);
            let (c0, nc) = (cr.start, cr.len());
            let o0 = (b * p.oc + g * ocg + c0) * ohw;
            // SAFETY: unit (b, g, chunk) owns output channels g·ocg + c0 .. + nc of image b.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(o0, nc * ohw) };
            for (c, plane) in o.chunks_exact_mut(ohw).enumerate() {
                plane.fill(bias.map_or(0.0, |bb| bb[g * ocg + c0 + c]));
            }
            let xg = &x[(b * p.ic + g * icg) * hw..];
            // Panels of input columns outside, taps inside: the output rows one panel
            // touches stay in cache across its taps (tap-outer swept the whole output,
            // tens of MB on PP-OCR det, once per tap).
            let mut q0 = 0;
            while q0 < hw {
                let cols = nb.min(hw - q0);
                for ky in 0..p.kh {
                    for kx in 0..p.kw {
                        // A[oc, ic] = w[g·icg + ic, oc, ky, kx], rows c0 .. c0 + nc.
                        let a = Mat {
                            data: &w[g * icg * ocg * taps + c0 * taps + ky * p.kw + kx..],
                            rs: taps,
                            cs: ocg * taps,
                        };
                        gemm::sgemm_serial(
                            Gemm {
                                m: nc,
                                n: cols,
                                k: icg,
                            },
                            a,
                            Mat {
                                data: &xg[q0..],
                                rs: hw,
                                cs: 1,
                            },
                            tmp,
                            nb,
                            &Epilogue::default(),
                        );
                        // Where each column lands (or u32::MAX outside the output), then
                        // one contiguous pass per channel.
                        let mut ats = [u32::MAX; 1024];
                        debug_assert!(ohw < u32::MAX as usize);
                        // (iy, ix) of column q0, then stepped (no division per column).
                        let (mut iy, mut ix) = (q0 / p.w, q0 % p.w);
                        for at in ats.iter_mut().take(cols) {
                            let oy = (iy * p.stride[0] + ky * p.dilation[0]) as isize
                                - p.pad[0] as isize;
                            let ox = (ix * p.stride[1] + kx * p.dilation[1]) as isize
                                - p.pad[1] as isize;
                            *at = if oy >= 0 && ox >= 0 && oy < p.oh as isize && ox < p.ow as isize
                            {
                                (oy as usize * p.ow + ox as usize) as u32
                            } else {
                                u32::MAX
                            };
                            ix += 1;
                            if ix == p.w {
                                ix = 0;
                                iy += 1;
                            }
                        }
                        for c in 0..nc {
                            let plane = &mut o[c * ohw..(c + 1) * ohw];
                            let t = &tmp[c * nb..c * nb + cols];
                            for (&at, &v) in ats[..cols].iter().zip(t) {
                                if at != u32::MAX {
                                    plane[at as usize] += v;
                                }
                            }
                        }
                    }
                }
                q0 += cols;
            }
            u += threads;
        }
    };
    pool.run(threads, &task);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_transpose_matches_the_scatter_definition() {
        for &(ic, oc, g, k, s, pad, d, h, w) in &[
            (4, 6, 1, 2, 2, 0, 1, 5, 7),
            (4, 4, 2, 3, 2, 1, 1, 4, 4),
            (3, 2, 1, 3, 1, 1, 2, 6, 5),
        ] {
            let oh = (h - 1) * s + d * (k - 1) + 1 - 2 * pad;
            let ow = (w - 1) * s + d * (k - 1) + 1 - 2 * pad;
            let p = ConvTranspose2d(Conv2d {
                n: 2,
                ic,
                h,
                w,
                oc,
                oh,
                ow,
                kh: k,
                kw: k,
                stride: [s, s],
                pad: [pad, pad],
                dilation: [d, d],
                groups: g,
            });
            let (icg, ocg) = (ic / g, oc / g);
            let x: Vec<f32> = (0..2 * ic * h * w)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let wt: Vec<f32> = (0..ic * ocg * k * k)
                .map(|i| ((i * 3 % 7) as f32 - 3.0) / 5.0)
                .collect();
            let bias: Vec<f32> = (0..oc).map(|i| i as f32).collect();
            let mut want = vec![0f32; 2 * oc * oh * ow];
            for b in 0..2 {
                for o in 0..oc {
                    want[(b * oc + o) * oh * ow..(b * oc + o + 1) * oh * ow].fill(bias[o]);
                }
                for ci in 0..ic {
                    let gg = ci / icg;
                    for o in 0..ocg {
                        for ky in 0..k {
                            for kx in 0..k {
                                for iy in 0..h {
                                    for ix in 0..w {
                                        let oy = (iy * s + ky * d) as isize - pad as isize;
                                        let ox = (ix * s + kx * d) as isize - pad as isize;
                                        if oy < 0
                                            || ox < 0
                                            || oy >= oh as isize
                                            || ox >= ow as isize
                                        {
                                            continue;
                                        }
                                        want[((b * oc + gg * ocg + o) * oh + oy as usize) * ow
                                            + ox as usize] += x[((b * ic + ci) * h + iy) * w + ix]
                                            * wt[((ci * ocg + o) * k + ky) * k + kx];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for threads in [1, 2] {
                let pool = ThreadPool::new(threads);
                // Scratch as the arena hands it out: holding whatever was there (NaN here).
                let mut scratch = vec![f32::NAN; p.scratch_len(threads)];
                let mut out = vec![f32::NAN; want.len()];
                conv_transpose2d(&pool, &p, &x, &wt, Some(&bias), &mut out, &mut scratch);
                for (a, b) in out.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{p:?}: {a} vs {b}");
                }
            }
        }
    }
}
