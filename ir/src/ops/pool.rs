//! Max and average pooling: windows, global, adaptive, ceil mode, exclusive averaging.

use super::Padding;
use super::{arity, arity_t, check_float, float_in, float_out, one, InferInput, Layout, OpDef};
use crate::error::{attr_err, shape_err};
use crate::sample::{Leaf, Sampler};
use crate::{Dim, Result, Shape, Tensor, TypeInfo};
use ndarray::{Array4, Ix4};

/// Max or average.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Maximum over the window.
    Max,
    /// Mean over the window.
    Avg,
}

/// Pooling attributes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Pool {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size (h, w); with `adaptive` it is the output size.
    pub ksize: [usize; 2],
    /// Strides (h, w).
    pub strides: [usize; 2],
    /// Padding.
    pub padding: Padding,
    /// Pool over the whole spatial extent (output 1x1).
    pub global: bool,
    /// Adaptive pooling: `ksize` is the output size; windows cover the input evenly.
    pub adaptive: bool,
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Average over the valid (non-padding) elements only.
    pub exclusive: bool,
    /// Data layout.
    pub layout: Layout,
}

impl Pool {
    /// A `ksize` window moved by `strides`: no padding, NCHW, output size rounded down,
    /// averages over the valid elements. Override fields with struct update syntax.
    pub fn window(kind: PoolKind, ksize: [usize; 2], strides: [usize; 2]) -> Pool {
        Pool {
            kind,
            ksize,
            strides,
            padding: Padding::Explicit([0; 4]),
            global: false,
            adaptive: false,
            ceil_mode: false,
            exclusive: true,
            layout: Layout::Nchw,
        }
    }

    /// Adaptive pooling to an `out` grid (NCHW).
    pub fn adaptive(kind: PoolKind, out: [usize; 2]) -> Pool {
        Pool {
            adaptive: true,
            ..Pool::window(kind, out, [1, 1])
        }
    }

    /// The output size for input spatial dims `input`, and the per-side padding (top,
    /// bottom, left, right) the windows are placed with.
    ///
    /// # Errors
    /// If a window does not fit the padded input.
    pub fn out_size(&self, input: [usize; 2]) -> Result<([usize; 2], [usize; 4])> {
        if self.global {
            return Ok(([1, 1], [0; 4]));
        }
        if self.adaptive {
            return Ok((self.ksize, [0; 4]));
        }
        let (p, _) = self
            .padding
            .resolve(input, self.ksize, self.strides, [1, 1]);
        let mut o = [0; 2];
        for i in 0..2 {
            let padded = input[i] + p[2 * i] + p[2 * i + 1];
            let k = self.ksize[i];
            if padded < k {
                return Err(shape_err(
                    "pool2d",
                    format!("window {k} larger than padded input {padded}"),
                ));
            }
            let s = self.strides[i];
            o[i] = if self.ceil_mode {
                (padded - k).div_ceil(s) + 1
            } else {
                (padded - k) / s + 1
            };
        }
        Ok((o, p))
    }
}

impl OpDef for Pool {
    const KINDS: &'static [&'static str] = &["pool2d"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval(self, inputs)?)
    }
    /// Global, adaptive (average or max), 2×2 max by 2, 3×3 average padded by 1.
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Pool> {
        let p = s.attrs(kind, |r| {
            let base = Pool::window(PoolKind::Avg, [1, 1], [1, 1]);
            Some(match r.below(6) {
                0 => Pool {
                    global: true,
                    ..base
                },
                1 => Pool {
                    adaptive: true,
                    ..base
                },
                2 => Pool {
                    kind: PoolKind::Max,
                    adaptive: true,
                    ..base
                },
                3 => Pool {
                    kind: PoolKind::Max,
                    ksize: [2, 2],
                    strides: [2, 2],
                    ..base
                },
                4 => Pool {
                    ksize: [3, 3],
                    padding: Padding::Explicit([1; 4]),
                    exclusive: r.coin(),
                    ..base
                },
                _ => Pool {
                    adaptive: true,
                    ksize: [2, 2],
                    ..base
                },
            })
        })?;
        if s.free(0) {
            let (r, size) = (&mut *s.rng, s.size);
            let x = vec![r.dim(1), r.dim(size), 1 + r.dim(size), 1 + r.dim(size)];
            s.set(0, Leaf::normal(x));
        }
        Some(p)
    }
}

fn infer(p: &Pool, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("pool2d", inputs, 1)?;
    check_float("pool2d", inputs[0].ty, 0)?;
    if p.strides.contains(&0) || p.ksize.contains(&0) {
        return Err(attr_err("pool2d", "ksize/strides", "must be positive"));
    }
    let s = &inputs[0].ty.shape;
    if s.rank() != 4 {
        return Err(shape_err("pool2d", format!("input {s} must be 4-D")));
    }
    let d = s.dims();
    let (hi, wi) = match p.layout {
        Layout::Nchw => (2, 3),
        Layout::Nhwc => (1, 2),
    };
    let mut out = d.to_vec();
    match (d[hi].known(), d[wi].known()) {
        (Some(h), Some(w)) => {
            let (o, _) = p.out_size([h, w])?;
            out[hi] = Dim::Known(o[0]);
            out[wi] = Dim::Known(o[1]);
        }
        _ if p.global || p.adaptive => {
            let (o, _) = p.out_size([1, 1])?;
            out[hi] = Dim::Known(o[0]);
            out[wi] = Dim::Known(o[1]);
        }
        _ => {
            out[hi] = Dim::Unknown;
            out[wi] = Dim::Unknown;
        }
    }
    Ok(vec![TypeInfo {
        dtype: inputs[0].ty.dtype,
        shape: Shape(out),
    }])
}

fn eval(p: &Pool, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("pool2d", inputs, 1)?;
    let x = float_in("pool2d", inputs[0], 0)?;
    let x4 = x
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| shape_err("pool2d", e.to_string()))?;
    let x4 = match p.layout {
        Layout::Nchw => x4,
        Layout::Nhwc => x4.permuted_axes([0, 3, 1, 2]),
    };
    let (n, c, h, w) = x4.dim();
    let (o, pad) = p.out_size([h, w])?;
    let (k, s) = if p.global {
        ([h, w], [1, 1])
    } else {
        (p.ksize, p.strides)
    };
    let window = |i: usize, ax: usize, len: usize| -> (usize, usize, usize) {
        // (start, end) clipped to the input, and the full (padded) window size.
        if p.adaptive {
            let start = (i * len) / o[ax];
            let end = ((i + 1) * len).div_ceil(o[ax]);
            (start, end, end - start)
        } else {
            let start = (i * s[ax]) as isize - pad[2 * ax] as isize;
            let end = (start + k[ax] as isize).min(len as isize);
            let start_c = start.max(0);
            // Paddle counts the padded window (clipped to the input's far edge) when not exclusive.
            (start_c as usize, end.max(start_c) as usize, k[ax])
        }
    };
    let mut y = Array4::<f32>::zeros((n, c, o[0], o[1]));
    for b in 0..n {
        for ch in 0..c {
            for oy in 0..o[0] {
                let (y0, y1, ky) = window(oy, 0, h);
                for ox in 0..o[1] {
                    let (x0, x1, kx) = window(ox, 1, w);
                    let v = match p.kind {
                        PoolKind::Max => {
                            let mut m = f32::NEG_INFINITY;
                            for iy in y0..y1 {
                                for ix in x0..x1 {
                                    m = m.max(x4[[b, ch, iy, ix]]);
                                }
                            }
                            m
                        }
                        PoolKind::Avg => {
                            let mut sum = 0.0f64;
                            for iy in y0..y1 {
                                for ix in x0..x1 {
                                    sum += x4[[b, ch, iy, ix]] as f64;
                                }
                            }
                            let count = if p.exclusive || p.adaptive || p.global {
                                (y1 - y0) * (x1 - x0)
                            } else {
                                ky * kx
                            };
                            (sum / count.max(1) as f64) as f32
                        }
                    };
                    y[[b, ch, oy, ox]] = v;
                }
            }
        }
    }
    let y = match p.layout {
        Layout::Nchw => y.into_dyn(),
        Layout::Nhwc => y
            .permuted_axes([0, 2, 3, 1])
            .as_standard_layout()
            .to_owned()
            .into_dyn(),
    };
    Ok(float_out(y, inputs[0].dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(kind: PoolKind, k: usize, s: usize, pad: usize, ceil: bool, excl: bool) -> Pool {
        Pool {
            padding: Padding::Explicit([pad; 4]),
            ceil_mode: ceil,
            exclusive: excl,
            ..Pool::window(kind, [k, k], [s, s])
        }
    }

    fn input() -> Tensor {
        Tensor::from_f32s(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn max_avg_and_padding_counts() {
        let x = input();
        let m = eval(&pool(PoolKind::Max, 2, 1, 0, false, true), &[&x]).unwrap();
        assert_eq!(m.to_f64_vec(), vec![5.0, 6.0, 8.0, 9.0]);
        // 3x3 window, pad 1, stride 2 → corners see 4 valid elements.
        let e = eval(&pool(PoolKind::Avg, 3, 2, 1, false, true), &[&x]).unwrap();
        assert_eq!(e.to_f64_vec(), vec![3.0, 4.0, 6.0, 7.0]);
        let ne = eval(&pool(PoolKind::Avg, 3, 2, 1, false, false), &[&x]).unwrap();
        for (a, b) in ne
            .to_f64_vec()
            .iter()
            .zip([12.0 / 9.0, 16.0 / 9.0, 24.0 / 9.0, 28.0 / 9.0])
        {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let c = eval(&pool(PoolKind::Max, 2, 2, 0, true, true), &[&x]).unwrap();
        assert_eq!(c.shape(), &[1, 1, 2, 2]);
        assert_eq!(c.to_f64_vec(), vec![5.0, 6.0, 8.0, 9.0]);
    }

    #[test]
    fn adaptive_and_global() {
        let x = input();
        let mut p = pool(PoolKind::Avg, 2, 1, 0, false, true);
        p.adaptive = true;
        let a = eval(&p, &[&x]).unwrap();
        assert_eq!(a.to_f64_vec(), vec![3.0, 4.0, 6.0, 7.0]);
        p.adaptive = false;
        p.global = true;
        assert_eq!(eval(&p, &[&x]).unwrap().to_f64_vec(), vec![5.0]);
    }
}
