//! Every convolution path against a naive loop.

use super::*;
use crate::act::Act;

fn naive(p: &Conv2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    let (icg, ocg) = (p.icg(), p.ocg());
    let mut o = vec![0f32; p.n * p.oc * p.oh * p.ow];
    for b in 0..p.n {
        for oc in 0..p.oc {
            let g = oc / ocg;
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let mut s = bias[oc] as f64;
                    for ci in 0..icg {
                        for ky in 0..p.kh {
                            for kx in 0..p.kw {
                                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                                    - p.pad[0] as isize;
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                    - p.pad[1] as isize;
                                if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize {
                                    continue;
                                }
                                let xv = x[((b * p.ic + g * icg + ci) * p.h + iy as usize) * p.w
                                    + ix as usize];
                                let wv = w[((oc * icg + ci) * p.kh + ky) * p.kw + kx];
                                s += xv as f64 * wv as f64;
                            }
                        }
                    }
                    o[((b * p.oc + oc) * p.oh + oy) * p.ow + ox] = s as f32;
                }
            }
        }
    }
    o
}

#[allow(clippy::too_many_arguments)]
fn geom(
    n: usize,
    ic: usize,
    h: usize,
    w: usize,
    oc: usize,
    k: usize,
    s: usize,
    pad: usize,
    d: usize,
    g: usize,
) -> Conv2d {
    let oh = (h + 2 * pad - d * (k - 1) - 1) / s + 1;
    let ow = (w + 2 * pad - d * (k - 1) - 1) / s + 1;
    Conv2d {
        n,
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
    }
}

/// `p` with strides `(sh, sw)`, its output size recomputed.
fn strided(mut p: Conv2d, sh: usize, sw: usize) -> Conv2d {
    p.stride = [sh, sw];
    p.oh = (p.h + 2 * p.pad[0] - p.dilation[0] * (p.kh - 1) - 1) / sh + 1;
    p.ow = (p.w + 2 * p.pad[1] - p.dilation[1] * (p.kw - 1) - 1) / sw + 1;
    p
}

/// Input, weights, bias and residual for `p`: small patterned values.
#[allow(clippy::type_complexity)]
fn operands(p: &Conv2d) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let x = (0..p.n * p.ic * p.h * p.w)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
        .collect();
    let w = (0..p.oc * p.icg() * p.kh * p.kw)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 7.0)
        .collect();
    let bias = (0..p.oc).map(|i| i as f32 / 10.0 - 1.0).collect();
    let res = (0..p.n * p.oc * p.oh * p.ow)
        .map(|i| (i % 3) as f32 - 1.0)
        .collect();
    (x, w, bias, res)
}

#[test]
fn blocked_depthwise_matches_the_naive_loop() {
    // Channel counts with full and partial blocks of 16; 7×7 and 14×14 planes; a
    // plane too big for the plane kernel, cut into row chunks; a 7×7 kernel, a dilated
    // one (one load per tap); no padding with rows of several 8-pixel groups and a
    // tail; two images; strides 2, 2 × 1 and 1 × 2, on odd sizes and a big plane.
    let cases = [
        geom(2, 40, 7, 7, 40, 5, 1, 2, 1, 40),
        geom(1, 16, 14, 14, 16, 3, 1, 1, 1, 16),
        geom(1, 20, 260, 258, 20, 3, 1, 1, 1, 20),
        geom(1, 33, 9, 23, 33, 7, 1, 3, 1, 33),
        geom(1, 20, 12, 12, 20, 3, 1, 2, 2, 20),
        geom(1, 17, 5, 40, 17, 5, 1, 0, 1, 17),
        geom(1, 40, 14, 14, 40, 5, 2, 2, 1, 40),
        geom(1, 24, 31, 29, 24, 3, 2, 1, 1, 24),
        strided(geom(1, 24, 6, 40, 24, 3, 1, 1, 1, 24), 2, 1),
        strided(geom(1, 24, 7, 33, 24, 5, 1, 2, 1, 24), 1, 2),
        geom(1, 16, 300, 300, 16, 3, 2, 1, 1, 16),
    ];
    #[cfg(target_arch = "x86_64")]
    let blocked = crate::isa::isa() == crate::isa::Isa::Avx512;
    #[cfg(not(target_arch = "x86_64"))]
    let blocked = false;
    for p in cases {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(blocked_depthwise(&p), blocked, "{p:?}");
        let (x, w, bias, res) = operands(&p);
        let want = naive(&p, &x, &w, &bias);
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads);
            for residual in [None, Some(&res[..])] {
                let mut scratch = vec![f32::NAN; p.scratch_len(threads)];
                let mut out = vec![f32::NAN; want.len()];
                let ep = ConvEpilogue {
                    bias: Some(&bias),
                    residual,
                    act: Act::HardSwish {
                        threshold: 6.0,
                        scale: 6.0,
                        offset: 3.0,
                    },
                    post: Some((2.0, 1.0)),
                };
                conv2d(&pool, &p, &x, &w, &ep, &mut out, &mut scratch);
                for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                    let v = b + residual.map_or(0.0, |r| r[i]);
                    let b = v * (v + 3.0).clamp(0.0, 6.0) / 6.0 * 2.0 + 1.0;
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{p:?} t{threads} residual {} [{i}]: {a} vs {b}",
                        residual.is_some()
                    );
                }
            }
        }
    }
}

#[test]
fn all_paths_match_the_naive_loop() {
    // Few-tap convolutions run the direct kernel where AVX-512 is there, else im2col.
    let few = if crate::isa::isa() == crate::isa::Isa::Avx512 {
        ConvPath::Direct
    } else {
        ConvPath::General
    };
    let cases = [
        (geom(2, 8, 5, 7, 6, 1, 1, 0, 1, 1), ConvPath::Pointwise),
        (geom(1, 8, 5, 7, 8, 1, 1, 0, 1, 2), ConvPath::Pointwise),
        (geom(2, 6, 9, 11, 6, 3, 1, 1, 1, 6), ConvPath::Depthwise),
        (geom(1, 4, 9, 10, 4, 5, 2, 2, 1, 4), ConvPath::Depthwise),
        (geom(1, 4, 12, 12, 4, 3, 1, 2, 2, 4), ConvPath::Depthwise),
        // Wide strided planes take the row path over pre-split phases.
        (geom(1, 3, 20, 70, 3, 3, 2, 1, 1, 3), ConvPath::Depthwise),
        (geom(2, 2, 9, 81, 2, 5, 3, 2, 1, 2), ConvPath::Depthwise),
        // Stride 2 with even and odd padding over widths the vector deinterleave
        // covers; strides 3 and 4; 7×7 (49 taps) and 9×9 (beyond the AVX2 kernel).
        (geom(1, 3, 21, 40, 3, 3, 2, 0, 1, 3), ConvPath::Depthwise),
        (geom(1, 3, 22, 41, 3, 5, 2, 2, 1, 3), ConvPath::Depthwise),
        (geom(1, 2, 13, 50, 2, 3, 3, 1, 1, 2), ConvPath::Depthwise),
        (geom(1, 2, 17, 37, 2, 3, 4, 1, 1, 2), ConvPath::Depthwise),
        (geom(1, 2, 15, 19, 2, 7, 1, 3, 1, 2), ConvPath::Depthwise),
        (geom(1, 2, 15, 19, 2, 9, 1, 4, 1, 2), ConvPath::Depthwise),
        (geom(1, 2, 16, 18, 2, 3, 2, 2, 2, 2), ConvPath::Depthwise),
        // Planes past 64×64 and planes thinner than the kernel: the plane kernel, also
        // on AVX-512 (where smaller planes run in channel blocks).
        (geom(1, 3, 70, 72, 3, 3, 1, 1, 1, 3), ConvPath::Depthwise),
        (geom(1, 3, 80, 70, 3, 3, 2, 1, 1, 3), ConvPath::Depthwise),
        (geom(1, 20, 2, 40, 20, 5, 1, 2, 1, 20), ConvPath::Depthwise),
        // Unequal strides (PP-OCR cls/rec: 2 × 1), both ways, and 3 × 2.
        (
            strided(geom(1, 3, 6, 40, 3, 3, 1, 1, 1, 3), 2, 1),
            ConvPath::Depthwise,
        ),
        (
            strided(geom(1, 3, 7, 33, 3, 5, 1, 2, 1, 3), 1, 2),
            ConvPath::Depthwise,
        ),
        (
            strided(geom(1, 2, 11, 20, 2, 3, 1, 1, 1, 2), 3, 2),
            ConvPath::Depthwise,
        ),
        (geom(2, 3, 17, 19, 16, 3, 2, 1, 1, 1), ConvPath::General),
        // Stride 2 over rows long enough for several deinterleaved vectors (the
        // direct few-tap kernel on AVX-512).
        (geom(1, 3, 9, 70, 16, 3, 2, 1, 1, 1), few),
        // More few-tap shapes: two images and an odd width; 5×5 with 13 output
        // channels (blocks of 8, 4, 1); no padding, one input channel; strides 2 × 1.
        (geom(2, 3, 20, 37, 16, 3, 2, 1, 1, 1), few),
        (geom(1, 2, 20, 40, 13, 5, 1, 2, 1, 1), few),
        (geom(1, 1, 9, 33, 7, 3, 2, 0, 1, 1), few),
        (strided(geom(1, 3, 10, 40, 16, 3, 1, 1, 1, 1), 2, 1), few),
        (geom(1, 8, 7, 9, 12, 3, 1, 1, 1, 4), ConvPath::General),
        (geom(1, 40, 6, 6, 24, 3, 1, 1, 1, 1), ConvPath::Winograd),
        (geom(2, 16, 9, 7, 8, 3, 1, 1, 1, 1), ConvPath::Winograd),
        (geom(1, 24, 37, 41, 12, 3, 1, 0, 1, 1), ConvPath::Winograd),
        (geom(1, 8, 6, 6, 8, 3, 1, 1, 1, 1), ConvPath::General),
        (geom(1, 4, 6, 6, 8, 1, 2, 0, 1, 1), ConvPath::General),
        (geom(1, 2, 3, 3, 4, 2, 1, 1, 1, 2), ConvPath::General),
    ];
    for (p, path) in cases {
        assert_eq!(p.path(), path, "{p:?}");
        let (x, w, bias, res) = operands(&p);
        let want = naive(&p, &x, &w, &bias);
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads);
            // Scratch as the arena hands it out: holding whatever was there (NaN here).
            let mut scratch = vec![f32::NAN; p.scratch_len(threads)];
            let mut out = vec![f32::NAN; want.len()];
            let ep = ConvEpilogue {
                bias: Some(&bias),
                residual: Some(&res),
                act: Act::Relu,
                post: Some((2.0, 1.0)),
            };
            conv2d(&pool, &p, &x, &w, &ep, &mut out, &mut scratch);
            for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                let b = (b + res[i]).max(0.0) * 2.0 + 1.0;
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{p:?} t{threads} [{i}]: {a} vs {b}"
                );
            }
        }
    }
}
