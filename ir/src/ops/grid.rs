//! `grid_sample` (ONNX GridSample, Paddle grid_sample): each output point reads the input
//! at the normalized coordinates (−1 … 1 per spatial axis, the last grid component along
//! the last axis) of a sampling grid, by nearest, linear or cubic interpolation, with
//! zero, border or reflection padding. Any number of spatial axes.

use super::{arity, arity_t, check_float, float_in, float_out, one, InferInput, OpDef};
use crate::error::shape_err;
use crate::{Dim, Result, Shape, Tensor, TypeInfo};
use ndarray::{ArrayD, IxDyn};

/// Interpolation.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GridMode {
    /// The nearest point (halves to even).
    Nearest,
    /// Linear in every axis.
    Linear,
    /// Cubic convolution (A = −0.75) in every axis.
    Cubic,
}

/// What points outside the input read.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GridPadding {
    /// Zero.
    Zeros,
    /// The nearest border point.
    Border,
    /// The point mirrored at the borders.
    Reflection,
}

/// Inputs `x [N, C, D₁…Dₖ]` and `grid [N, O₁…Oₖ, k]`; output `[N, C, O₁…Oₖ]`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GridSample {
    /// Interpolation.
    pub mode: GridMode,
    /// Padding.
    pub padding: GridPadding,
    /// −1 and 1 are the centres of the corner points (else their outer edges).
    pub align_corners: bool,
}

impl OpDef for GridSample {
    const KINDS: &'static [&'static str] = &["grid_sample"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("grid_sample", inputs, 2)?;
        check_float("grid_sample", inputs[0].ty, 0)?;
        check_float("grid_sample", inputs[1].ty, 1)?;
        let (x, g) = (&inputs[0].ty.shape, &inputs[1].ty.shape);
        let k = x.rank().saturating_sub(2);
        let last_ok = matches!(g.dims().last(), Some(Dim::Known(n)) if *n == k);
        if x.rank() < 3 || g.rank() != k + 2 || !last_ok {
            return Err(shape_err(
                "grid_sample",
                format!("input {x} and grid {g}: [N, C, D…] and [N, O…, {k}]"),
            ));
        }
        let mut d = vec![x.dims()[0].clone(), x.dims()[1].clone()];
        d.extend(g.dims()[1..=k].iter().cloned());
        Ok(vec![TypeInfo {
            dtype: inputs[0].ty.dtype,
            shape: Shape(d),
        }])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t("grid_sample", inputs, 2)?;
        let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
        let ty = self.infer(&super::concrete_inputs(&tys, inputs))?;
        let x = float_in("grid_sample", inputs[0], 0)?;
        let g = float_in("grid_sample", inputs[1], 1)?;
        let out = ty[0].shape.to_known().expect("concrete");
        one(float_out(sample(self, &x, &g, &out), inputs[0].dtype()))
    }
}

/// Mirrors `v` into `[lo, hi]` (ONNX's rule: by the near border, repeatedly).
fn reflect(v: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    if v < lo {
        let d = lo - v;
        let n = (d / range) as i64;
        let r = d - n as f64 * range;
        if n % 2 == 0 {
            lo + r
        } else {
            hi - r
        }
    } else if v > hi {
        let d = v - hi;
        let n = (d / range) as i64;
        let r = d - n as f64 * range;
        if n % 2 == 0 {
            hi - r
        } else {
            lo + r
        }
    } else {
        v
    }
}

fn cubic(t: f64) -> [f64; 4] {
    let a = -0.75;
    [
        ((a * (t + 1.0) - 5.0 * a) * (t + 1.0) + 8.0 * a) * (t + 1.0) - 4.0 * a,
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0,
        ((a + 2.0) * (1.0 - t) - (a + 3.0)) * (1.0 - t) * (1.0 - t) + 1.0,
        ((a * (2.0 - t) - 5.0 * a) * (2.0 - t) + 8.0 * a) * (2.0 - t) - 4.0 * a,
    ]
}

fn sample(op: &GridSample, x: &ArrayD<f32>, g: &ArrayD<f32>, out: &[usize]) -> ArrayD<f32> {
    let xs = x.shape();
    let k = xs.len() - 2;
    let dims = &xs[2..];
    // Per axis: the borders coordinates are checked against, and the tap's index rule.
    let bounds: Vec<(f64, f64)> = dims
        .iter()
        .map(|&d| {
            if op.align_corners {
                (0.0, d as f64 - 1.0)
            } else {
                (-0.5, d as f64 - 0.5)
            }
        })
        .collect();
    let mut y = ArrayD::<f32>::zeros(IxDyn(out));
    let npts: usize = out[2..].iter().product();
    let (n, c) = (out[0], out[1]);
    let gflat = g.as_standard_layout();
    let gflat = gflat.as_slice().expect("standard layout");
    let xflat = x.as_standard_layout();
    let xflat = xflat.as_slice().expect("standard layout");
    let plane: usize = dims.iter().product();
    let xstr: Vec<usize> = (0..k).map(|a| dims[a + 1..].iter().product()).collect();
    let yflat = y.as_slice_mut().expect("fresh array");
    for b in 0..n {
        for p in 0..npts {
            // Taps per axis: (index, weight); the grid's components run last axis first.
            let mut taps: Vec<Vec<(i64, f64)>> = Vec::with_capacity(k);
            for a in 0..k {
                let gv = gflat[(b * npts + p) * k + (k - 1 - a)] as f64;
                let d = dims[a] as f64;
                let mut v = if op.align_corners {
                    (gv + 1.0) / 2.0 * (d - 1.0)
                } else {
                    ((gv + 1.0) * d - 1.0) / 2.0
                };
                if op.mode == GridMode::Nearest {
                    v = v.round_ties_even();
                }
                let (lo, hi) = bounds[a];
                if v < lo || v > hi {
                    v = match op.padding {
                        GridPadding::Border => v.clamp(0.0, d - 1.0),
                        GridPadding::Reflection => reflect(v, lo, hi),
                        GridPadding::Zeros => v,
                    };
                }
                taps.push(match op.mode {
                    GridMode::Nearest => vec![(v as i64, 1.0)],
                    GridMode::Linear => {
                        let f = v.floor();
                        let t = v - f;
                        vec![(f as i64, 1.0 - t), (f as i64 + 1, t)]
                    }
                    GridMode::Cubic => {
                        let f = v.floor();
                        let w = cubic(v - f);
                        (0..4).map(|j| (f as i64 - 1 + j as i64, w[j])).collect()
                    }
                });
            }
            // Every combination of taps: its weight and its input offset (None: zero).
            let mut combos: Vec<(f64, Option<usize>)> = vec![(1.0, Some(0))];
            for a in 0..k {
                let d = dims[a] as i64;
                let mut next = Vec::with_capacity(combos.len() * taps[a].len());
                for &(w, off) in &combos {
                    for &(i, wt) in &taps[a] {
                        let idx = match op.padding {
                            GridPadding::Zeros => (0..d).contains(&i).then_some(i),
                            GridPadding::Border => Some(i.clamp(0, d - 1)),
                            GridPadding::Reflection => {
                                let (lo, hi) = bounds[a];
                                Some((reflect(i as f64, lo, hi) as i64).clamp(0, d - 1))
                            }
                        };
                        let off = match (off, idx) {
                            (Some(o), Some(i)) => Some(o + i as usize * xstr[a]),
                            _ => None,
                        };
                        next.push((w * wt, off));
                    }
                }
                combos = next;
            }
            for ch in 0..c {
                let base = (b * c + ch) * plane;
                let v: f64 = combos
                    .iter()
                    .map(|&(w, off)| off.map_or(0.0, |o| w * xflat[base + o] as f64))
                    .sum();
                yflat[(b * c + ch) * npts + p] = v as f32;
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_sample_reads_corners_centres_and_pads() {
        // 1×1×2×2 input; sample the four corners and a point outside.
        let x = Tensor::from_f32s(&[1, 1, 2, 2], vec![1., 2., 3., 4.]).unwrap();
        let g = Tensor::from_f32s(
            &[1, 1, 5, 2],
            vec![-1., -1., 1., -1., -1., 1., 1., 1., 3., 0.],
        )
        .unwrap();
        let op = |mode, padding, align_corners| GridSample {
            mode,
            padding,
            align_corners,
        };
        let y = op(GridMode::Linear, GridPadding::Zeros, true)
            .eval(&[&x, &g])
            .unwrap();
        // Aligned corners read the corner points; x = 3 lies two widths out: zero.
        assert_eq!(y[0].to_f64_vec(), [1., 2., 3., 4., 0.]);
        let y = op(GridMode::Linear, GridPadding::Border, true)
            .eval(&[&x, &g])
            .unwrap();
        // Clamped to the right border, halfway down: (2 + 4) / 2.
        assert_eq!(y[0].to_f64_vec()[4], 3.0);
        // Not aligned: −1 is the outer edge, 0.5 pixel before the first centre; linear
        // with zeros there reads a quarter of the corner.
        let y = op(GridMode::Linear, GridPadding::Zeros, false)
            .eval(&[&x, &g])
            .unwrap();
        assert_eq!(y[0].to_f64_vec()[0], 0.25);
        // A grid whose last axis is not the input's spatial rank.
        let bad = Tensor::from_f32s(&[1, 1, 1, 3], vec![0.; 3]).unwrap();
        assert!(op(GridMode::Nearest, GridPadding::Zeros, false)
            .eval(&[&x, &bad])
            .is_err());
    }
}
