//! 2-D pooling (max, average; windows, adaptive, global).

use super::{par_ranges, reduce_lanes, reduce_planes};
use crate::pool::{SharedMut, ThreadPool};

/// A 2-D pooling window geometry (NCHW, padding resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// Max (else average).
    pub max: bool,
    /// Planes (`n · c`).
    pub planes: usize,
    /// Input size.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output size.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Window.
    pub k: [usize; 2],
    /// Strides.
    pub s: [usize; 2],
    /// Padding before (top, left).
    pub pad: [usize; 2],
    /// Adaptive windows (`k`, `s`, `pad` unused).
    pub adaptive: bool,
    /// Average over the valid elements only (else over the padded window).
    pub exclusive: bool,
}

/// Pools each plane of `x` into `out`.
pub fn pool2d(pool: &ThreadPool, p: &Pool2d, x: &[f32], out: &mut [f32]) {
    let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
    let op = SharedMut::new(out);
    // (start, end) clipped to the input, and the window size counted when not exclusive.
    let win = |i: usize, ax: usize, len: usize, o: usize| -> (usize, usize, usize) {
        if p.adaptive {
            let start = (i * len) / o;
            let end = ((i + 1) * len).div_ceil(o);
            (start, end, end - start)
        } else {
            let start = (i * p.s[ax]) as isize - p.pad[ax] as isize;
            let end = (start + p.k[ax] as isize).min(len as isize);
            let sc = start.max(0);
            (sc as usize, end.max(sc) as usize, p.k[ax])
        }
    };
    // Small windows that all lie inside the plane (PP-LCNet's final 2×2 max pool) skip
    // the clipping; large ones keep the lane-reduced path below.
    let inside = !p.adaptive
        && p.k[0] * p.k[1] < 32
        && p.pad == [0, 0]
        && p.oh > 0
        && p.ow > 0
        && (p.oh - 1) * p.s[0] + p.k[0] <= p.h
        && (p.ow - 1) * p.s[1] + p.k[1] <= p.w;
    // One output per plane whose window is the whole plane (global pooling): the planes
    // of a range reduced in one call (a call per plane cost more than MobileNetV3's 49
    // floats each: 576 planes took 10 µs).
    let whole = p.oh == 1 && p.ow == 1 && hw > 0 && {
        let ((y0, y1, ky), (x0, x1, kx)) = (win(0, 0, p.h, 1), win(0, 1, p.w, 1));
        (y0, y1, x0, x1) == (0, p.h, 0, p.w) && (p.exclusive || p.adaptive || ky * kx == hw)
    };
    if whole {
        par_ranges(pool, p.planes, hw, &|r| {
            // SAFETY: disjoint output ranges (one float per plane).
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(r.start, r.len()) };
            reduce_planes(&x[r.start * hw..r.end * hw], hw, p.max, o);
            if !p.max {
                o.iter_mut().for_each(|v| *v /= hw as f32);
            }
        });
        return;
    }
    par_ranges(pool, p.planes, hw, &|r| {
        for pl in r {
            let xs = &x[pl * hw..(pl + 1) * hw];
            // SAFETY: disjoint output planes.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(pl * ohw, ohw) };
            if inside {
                // Every window lies inside the plane: no clipping, and each output is
                // reduced row by row as below (same order, same result).
                let [kh, kw] = p.k;
                let count = (kh * kw) as f32;
                for (oy, orow) in o.chunks_exact_mut(p.ow).enumerate() {
                    let rows = &xs[oy * p.s[0] * p.w..(oy * p.s[0] + kh) * p.w];
                    for (ox, d) in orow.iter_mut().enumerate() {
                        let x0 = ox * p.s[1];
                        if p.max {
                            // `v > m` skips NaN as `f32::max` does, without its NaN fix-up
                            // in the dependency chain; rows reduce independently.
                            let gt = |m: f32, v: f32| if v > m { v } else { m };
                            *d = rows
                                .chunks_exact(p.w)
                                .map(|r| {
                                    r[x0..x0 + kw]
                                        .iter()
                                        .fold(f32::NEG_INFINITY, |m, &v| gt(m, v))
                                })
                                .fold(f32::NEG_INFINITY, gt);
                        } else {
                            let mut s = 0.0f32;
                            for r in rows.chunks_exact(p.w) {
                                s += r[x0..x0 + kw].iter().sum::<f32>();
                            }
                            *d = s / count;
                        }
                    }
                }
                continue;
            }
            for oy in 0..p.oh {
                let (y0, y1, ky) = win(oy, 0, p.h, p.oh);
                for ox in 0..p.ow {
                    let (x0, x1, kx) = win(ox, 1, p.w, p.ow);
                    // A window of whole rows (global pooling, SE blocks) is one contiguous
                    // block: reduced in lanes, not one sequential chain of adds.
                    if x0 == 0 && x1 == p.w && (y1 - y0) * p.w >= 32 {
                        let block = &xs[y0 * p.w..y1 * p.w];
                        o[oy * p.ow + ox] = if p.max {
                            reduce_lanes(block, true)
                        } else {
                            let count = if p.exclusive || p.adaptive {
                                block.len()
                            } else {
                                ky * kx
                            };
                            reduce_lanes(block, false) / count.max(1) as f32
                        };
                        continue;
                    }
                    o[oy * p.ow + ox] = if p.max {
                        let mut m = f32::NEG_INFINITY;
                        for iy in y0..y1 {
                            for v in &xs[iy * p.w + x0..iy * p.w + x1] {
                                m = m.max(*v);
                            }
                        }
                        m
                    } else {
                        let mut s = 0.0f32;
                        for iy in y0..y1 {
                            s += xs[iy * p.w + x0..iy * p.w + x1].iter().sum::<f32>();
                        }
                        let count = if p.exclusive || p.adaptive {
                            (y1 - y0) * (x1 - x0)
                        } else {
                            ky * kx
                        };
                        s / count.max(1) as f32
                    };
                }
            }
        }
    });
}
