//! Nearest, bilinear and bicubic resize: Paddle's `nearest_interp_v2`/`bilinear_interp_v2`
//! with its `align_corners` / `align_mode` index arithmetic, and ONNX's `Resize` with its
//! coordinate transformations and rounding rules ([`OnnxCoords`]).

use super::{
    check_float, float_in, float_out, list_from_inputs, one, InferInput, Layout, ListInput,
    ListVal, OpDef,
};
use crate::error::{attr_err, shape_err};
use crate::{Dim, Error, Result, Shape, Tensor, TypeInfo};
use ndarray::{Array4, Ix4};

/// Resize method.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterpMode {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear.
    Bilinear,
    /// Bicubic (ONNX's cubic convolution, coefficient `cubic_a`).
    Bicubic,
}

/// How an output coordinate maps to an input one (ONNX's
/// `coordinate_transformation_mode`; `s` is the scale, output over input).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordTransform {
    /// `(x + 0.5) / s − 0.5`.
    HalfPixel,
    /// Half-pixel about the centre of the input, for scales that do not tile it.
    HalfPixelSymmetric,
    /// Half-pixel, but 0 for an output of length 1.
    PytorchHalfPixel,
    /// `x · (in − 1) / (out − 1)` (0 for an output of length 1).
    AlignCorners,
    /// `x / s`.
    Asymmetric,
}

/// How a nearest resize rounds the source coordinate.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NearestRound {
    /// Round, halves down.
    RoundPreferFloor,
    /// Round, halves up.
    RoundPreferCeil,
    /// Down.
    Floor,
    /// Up.
    Ceil,
}

/// ONNX's resize rules: the coordinate transformation, the nearest rounding, the cubic
/// coefficient and whether taps outside the input are dropped (and the rest renormalized).
/// With these, an explicit output size wins over the scale, and the scale given (not the
/// size ratio) maps coordinates.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct OnnxCoords {
    /// Coordinate transformation.
    pub transform: CoordTransform,
    /// Nearest rounding.
    pub nearest: NearestRound,
    /// Cubic coefficient `A` (−0.75 by default).
    pub cubic_a: f32,
    /// Drop taps outside the input (cubic).
    pub exclude_outside: bool,
}

impl Default for OnnxCoords {
    fn default() -> Self {
        OnnxCoords {
            transform: CoordTransform::HalfPixel,
            nearest: NearestRound::RoundPreferFloor,
            cubic_a: -0.75,
            exclude_outside: false,
        }
    }
}

/// Source taps of one output position along an axis: (input index, weight).
type Taps = Vec<(usize, f32)>;

impl OnnxCoords {
    /// The taps of each of `out` output positions along an axis of `len` inputs at scale
    /// `s` (output over input).
    fn taps(&self, mode: InterpMode, len: usize, out: usize, s: f64) -> Vec<Taps> {
        let last = len as i64 - 1;
        let clamp = |i: i64| i.clamp(0, last) as usize;
        // The resized length as ONNX's rules use it: `len · s`, not rounded (the output
        // size when the size was given).
        let resized = len as f64 * s;
        (0..out)
            .map(|k| {
                let k = k as f64;
                let x = match self.transform {
                    CoordTransform::HalfPixel => (k + 0.5) / s - 0.5,
                    CoordTransform::HalfPixelSymmetric => {
                        let adj = out as f64 / resized;
                        let offset = len as f64 / 2.0 * (1.0 - adj);
                        offset + (k + 0.5) / s - 0.5
                    }
                    CoordTransform::PytorchHalfPixel if resized > 1.0 => (k + 0.5) / s - 0.5,
                    CoordTransform::PytorchHalfPixel => 0.0,
                    CoordTransform::AlignCorners if resized != 1.0 => {
                        k * (len as f64 - 1.0) / (resized - 1.0)
                    }
                    CoordTransform::AlignCorners => 0.0,
                    CoordTransform::Asymmetric => k / s,
                };
                match mode {
                    InterpMode::Nearest => {
                        let r = match self.nearest {
                            NearestRound::Floor => x.floor(),
                            NearestRound::Ceil => x.ceil(),
                            NearestRound::RoundPreferFloor if x.fract().abs() == 0.5 => x.floor(),
                            NearestRound::RoundPreferCeil if x.fract().abs() == 0.5 => x.ceil(),
                            _ => x.round(),
                        };
                        vec![(clamp(r as i64), 1.0)]
                    }
                    InterpMode::Bilinear => {
                        let lo = x.floor();
                        let t = (x - lo) as f32;
                        let lo = lo as i64;
                        vec![(clamp(lo), 1.0 - t), (clamp(lo + 1), t)]
                    }
                    InterpMode::Bicubic => {
                        let lo = x.floor();
                        let t = x - lo;
                        let a = self.cubic_a as f64;
                        let c = [
                            ((a * (t + 1.0) - 5.0 * a) * (t + 1.0) + 8.0 * a) * (t + 1.0) - 4.0 * a,
                            ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0,
                            ((a + 2.0) * (1.0 - t) - (a + 3.0)) * (1.0 - t) * (1.0 - t) + 1.0,
                            ((a * (2.0 - t) - 5.0 * a) * (2.0 - t) + 8.0 * a) * (2.0 - t) - 4.0 * a,
                        ];
                        let lo = lo as i64;
                        let mut taps: Vec<(i64, f64)> =
                            (0..4).map(|j| (lo - 1 + j as i64, c[j])).collect();
                        if self.exclude_outside {
                            for t in &mut taps {
                                if t.0 < 0 || t.0 > last {
                                    t.1 = 0.0;
                                }
                            }
                            let sum: f64 = taps.iter().map(|t| t.1).sum();
                            if sum != 0.0 {
                                taps.iter_mut().for_each(|t| t.1 /= sum);
                            }
                        }
                        taps.into_iter()
                            .map(|(i, w)| (clamp(i), w as f32))
                            .collect()
                    }
                }
            })
            .collect()
    }
}

impl InterpMode {
    /// IR name.
    pub fn name(self) -> &'static str {
        match self {
            InterpMode::Nearest => "nearest_interp",
            InterpMode::Bilinear => "bilinear_interp",
            InterpMode::Bicubic => "bicubic_interp",
        }
    }
}

/// Resize attributes. The output size is, by priority: `out_size_input`, then
/// `in * scale` (from `scale_input` or the `scale` attribute) when positive, then
/// `out_h`/`out_w`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Interp {
    /// Method.
    pub mode: InterpMode,
    /// Output height from the attribute (-1: unset).
    pub out_h: i64,
    /// Output width from the attribute (-1: unset).
    pub out_w: i64,
    /// Scale factors (h, w) from the attribute (empty: unset).
    pub scale: Vec<f32>,
    /// Corner pixels of input and output are aligned.
    pub align_corners: bool,
    /// Bilinear source index rule when not aligning corners: 0 half-pixel, 1 asymmetric.
    pub align_mode: i32,
    /// Data layout.
    pub layout: Layout,
    /// Output size from inputs (OutSize: one tensor; SizeTensor: two scalars).
    pub out_size_input: ListInput,
    /// A scale tensor input follows the size inputs.
    pub scale_input: bool,
    /// ONNX's rules (`None`: Paddle's, by `align_corners` and `align_mode`; a bicubic
    /// resize always takes ONNX's, by default half-pixel).
    #[serde(default)]
    pub onnx: Option<OnnxCoords>,
}

impl Interp {
    /// Output size and the scale factors in effect (-1 when none) for input size `(h, w)`.
    fn resolve(
        &self,
        inputs: &[InferInput<'_>],
        hw: Option<[usize; 2]>,
    ) -> Result<(Option<[usize; 2]>, [f32; 2])> {
        let op = self.mode.name();
        let mut scale = [-1f32; 2];
        let size_list = list_from_inputs(op, self.out_size_input, 1, inputs)?;
        if let ListVal::Known(v) = &size_list {
            if v.len() != 2 || v.iter().any(|&d| d <= 0) {
                return Err(shape_err(
                    op,
                    format!("output size {v:?} must be two positive numbers"),
                ));
            }
            return Ok((Some([v[0] as usize, v[1] as usize]), scale));
        }
        if self.scale_input {
            let i = 1 + self.out_size_input.count();
            let s = inputs.get(i).ok_or(Error::Arity {
                op,
                expected: format!("{}", i + 1),
                got: inputs.len(),
            })?;
            match s.value {
                Some(v) => {
                    let f = v.to_f64_vec();
                    scale = match f.len() {
                        1 => [f[0] as f32; 2],
                        2 => [f[0] as f32, f[1] as f32],
                        n => return Err(shape_err(op, format!("scale tensor has {n} values"))),
                    };
                }
                None => return Ok((None, scale)),
            }
        } else if !self.scale.is_empty() {
            scale = if self.scale.len() == 1 {
                [self.scale[0]; 2]
            } else {
                [self.scale[0], self.scale[1]]
            };
        }
        let mut out = if self.out_h > 0 && self.out_w > 0 {
            Some([self.out_h as usize, self.out_w as usize])
        } else {
            None
        };
        if self.coords().is_some() && out.is_some() {
            // ONNX: the size given wins; the scale (if any) still maps coordinates.
        } else if scale[0] > 0.0 && scale[1] > 0.0 {
            out = hw.map(|[h, w]| {
                [
                    (h as f32 * scale[0]) as usize,
                    (w as f32 * scale[1]) as usize,
                ]
            });
        }
        if let ListVal::Unknown(_) = size_list {
            return Ok((None, scale));
        }
        if out.is_none() && hw.is_some() {
            return Err(attr_err(op, "out_h/out_w/scale", "no output size given"));
        }
        Ok((out, scale))
    }
}

impl Interp {
    /// The ONNX rules in force, if any.
    pub fn coords(&self) -> Option<OnnxCoords> {
        match (self.onnx, self.mode) {
            (Some(c), _) => Some(c),
            (None, InterpMode::Bicubic) => Some(OnnxCoords::default()),
            (None, _) => None,
        }
    }

    /// Under ONNX rules: the taps of every output row and column for an `ih × iw` input
    /// resized to `oh × ow` with the scales in effect (`≤ 0`: the size ratio).
    fn onnx_taps(
        &self,
        c: &OnnxCoords,
        [ih, iw]: [usize; 2],
        [oh, ow]: [usize; 2],
        scale: [f32; 2],
    ) -> (Vec<Taps>, Vec<Taps>) {
        let s = |given: f32, o: usize, i: usize| {
            if given > 0.0 {
                given as f64
            } else {
                o as f64 / i as f64
            }
        };
        (
            c.taps(self.mode, ih, oh, s(scale[0], oh, ih)),
            c.taps(self.mode, iw, ow, s(scale[1], ow, iw)),
        )
    }
}

fn hw_axes(layout: Layout) -> (usize, usize, usize) {
    match layout {
        Layout::Nchw => (1, 2, 3),
        Layout::Nhwc => (3, 1, 2),
    }
}

impl OpDef for Interp {
    const KINDS: &'static [&'static str] = &["nearest_interp", "bilinear_interp", "bicubic_interp"];
    fn kind(&self) -> &'static str {
        self.mode.name()
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval(self, inputs)?)
    }
}

fn infer(i: &Interp, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    let op = i.mode.name();
    super::arity(
        op,
        inputs,
        1 + i.out_size_input.count() + i.scale_input as usize,
    )?;
    check_float(op, inputs[0].ty, 0)?;
    let x = &inputs[0].ty.shape;
    if x.rank() != 4 {
        return Err(shape_err(op, format!("input {x} must be 4-D")));
    }
    let (_, hi, wi) = hw_axes(i.layout);
    let hw = match (x.dims()[hi].known(), x.dims()[wi].known()) {
        (Some(h), Some(w)) => Some([h, w]),
        _ => None,
    };
    if hw.is_some_and(|[h, w]| h == 0 || w == 0) {
        return Err(shape_err(op, format!("cannot resize an empty image {x}")));
    }
    let (out, _) = i.resolve(inputs, hw)?;
    if out.is_some_and(|[h, w]| h == 0 || w == 0) {
        return Err(shape_err(op, format!("output size {out:?} has a zero dim")));
    }
    let mut d = x.0.clone();
    match out {
        Some([h, w]) => {
            d[hi] = Dim::Known(h);
            d[wi] = Dim::Known(w);
        }
        None => {
            d[hi] = Dim::Unknown;
            d[wi] = Dim::Unknown;
        }
    }
    Ok(vec![TypeInfo {
        dtype: inputs[0].ty.dtype,
        shape: Shape(d),
    }])
}

fn ratio(in_size: usize, out_size: usize, scale: f32, align_corners: bool) -> f32 {
    if out_size <= 1 {
        return 0.0;
    }
    if align_corners {
        (in_size as f32 - 1.0) / (out_size as f32 - 1.0)
    } else if scale > 0.0 {
        (1.0f64 / scale as f64) as f32
    } else {
        in_size as f32 / out_size as f32
    }
}

/// A bilinear tap along one axis: the low and high source indices and their weights.
pub type BilinearTap = (usize, usize, f32, f32);

/// The taps of each of `out` output positions along an axis of `len` inputs, at source
/// ratio `r`.
fn bilinear_taps(i: &Interp, r: f32, out: usize, len: usize) -> Vec<BilinearTap> {
    let half_pixel = i.align_mode == 0 && !i.align_corners;
    (0..out)
        .map(|k| {
            let lo = if half_pixel {
                (r * (k as f32 + 0.5) - 0.5) as i64
            } else {
                (r * k as f32) as i64
            };
            let lo = lo.max(0) as usize;
            let hi = (lo + 1).min(len - 1);
            let src = if half_pixel {
                (r * (k as f32 + 0.5) - 0.5).max(0.0)
            } else {
                r * k as f32
            };
            let d_lo = src - lo as f32;
            (lo, hi, 1.0 - d_lo, d_lo)
        })
        .collect()
}

impl Interp {
    /// For bilinear resizing of an `[.., ih, iw]` input (its inputs' types and values as
    /// in [`Op::infer`](crate::Op::infer)): the output size and the taps of every output
    /// row and column — what the reference op computes with, for kernels to reuse.
    ///
    /// # Errors
    /// As the op's type inference.
    pub fn bilinear_plan(
        &self,
        inputs: &[InferInput<'_>],
        ih: usize,
        iw: usize,
    ) -> Result<([usize; 2], Vec<BilinearTap>, Vec<BilinearTap>)> {
        let (out, scale) = self.resolve(inputs, Some([ih, iw]))?;
        let [oh, ow] = out.ok_or_else(|| {
            shape_err(
                self.mode.name(),
                "the output size is not known before the run",
            )
        })?;
        if let Some(c) = self.coords() {
            let (ty, tx) = self.onnx_taps(&c, [ih, iw], [oh, ow], scale);
            let two = |t: Vec<Taps>| -> Result<Vec<BilinearTap>> {
                t.into_iter()
                    .map(|t| match t[..] {
                        [(a, wa), (b, wb)] => Ok((a, b, wa, wb)),
                        _ => Err(shape_err(
                            self.mode.name(),
                            "not a two-tap (bilinear) resize",
                        )),
                    })
                    .collect()
            };
            return Ok(([oh, ow], two(ty)?, two(tx)?));
        }
        let rh = ratio(ih, oh, scale[0], self.align_corners);
        let rw = ratio(iw, ow, scale[1], self.align_corners);
        Ok((
            [oh, ow],
            bilinear_taps(self, rh, oh, ih),
            bilinear_taps(self, rw, ow, iw),
        ))
    }
}

fn eval(i: &Interp, inputs: &[&Tensor]) -> Result<Tensor> {
    let op = i.mode.name();
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let ins = super::concrete_inputs(&tys, inputs);
    infer(i, &ins)?;
    let x = float_in(op, inputs[0], 0)?;
    let x4 = x
        .view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| shape_err(op, e.to_string()))?;
    let x4 = match i.layout {
        Layout::Nchw => x4,
        Layout::Nhwc => x4.permuted_axes([0, 3, 1, 2]),
    };
    let (n, c, ih, iw) = x4.dim();
    let (out, scale) = i.resolve(&ins, Some([ih, iw]))?;
    let [oh, ow] = out.expect("concrete inputs give a size");
    let mut y = Array4::<f32>::zeros((n, c, oh, ow));
    if let Some(co) = i.coords() {
        let (ty, tx) = i.onnx_taps(&co, [ih, iw], [oh, ow], scale);
        for (oy, ry) in ty.iter().enumerate() {
            for (ox, rx) in tx.iter().enumerate() {
                for b in 0..n {
                    for ch in 0..c {
                        let mut v = 0f32;
                        for &(sy, wy) in ry {
                            for &(sx, wx) in rx {
                                v += wy * wx * x4[[b, ch, sy, sx]];
                            }
                        }
                        y[[b, ch, oy, ox]] = v;
                    }
                }
            }
        }
        return Ok(finish(i, y, inputs[0]));
    }
    let rh = ratio(ih, oh, scale[0], i.align_corners);
    let rw = ratio(iw, ow, scale[1], i.align_corners);
    match i.mode {
        InterpMode::Nearest => {
            let src = |k: usize, r: f32, len: usize| -> usize {
                let v = if i.align_corners {
                    (r * k as f32 + 0.5) as usize
                } else {
                    (r * k as f32) as usize
                };
                v.min(len - 1)
            };
            for oy in 0..oh {
                let sy = src(oy, rh, ih);
                for ox in 0..ow {
                    let sx = src(ox, rw, iw);
                    for b in 0..n {
                        for ch in 0..c {
                            y[[b, ch, oy, ox]] = x4[[b, ch, sy, sx]];
                        }
                    }
                }
            }
        }
        InterpMode::Bicubic => unreachable!("a bicubic resize takes ONNX's rules (coords)"),
        InterpMode::Bilinear => {
            let (ty, tx) = (bilinear_taps(i, rh, oh, ih), bilinear_taps(i, rw, ow, iw));
            for (oy, &(y0, y1, wy0, wy1)) in ty.iter().enumerate() {
                for (ox, &(x0, x1, wx0, wx1)) in tx.iter().enumerate() {
                    for b in 0..n {
                        for ch in 0..c {
                            let v = wy0 * (wx0 * x4[[b, ch, y0, x0]] + wx1 * x4[[b, ch, y0, x1]])
                                + wy1 * (wx0 * x4[[b, ch, y1, x0]] + wx1 * x4[[b, ch, y1, x1]]);
                            y[[b, ch, oy, ox]] = v;
                        }
                    }
                }
            }
        }
    }
    Ok(finish(i, y, inputs[0]))
}

/// The NCHW result in the op's layout and the input's float type.
fn finish(i: &Interp, y: Array4<f32>, x: &Tensor) -> Tensor {
    let y = match i.layout {
        Layout::Nchw => y.into_dyn(),
        Layout::Nhwc => y
            .permuted_axes([0, 2, 3, 1])
            .as_standard_layout()
            .to_owned()
            .into_dyn(),
    };
    float_out(y, x.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp(mode: InterpMode, align_corners: bool, align_mode: i32) -> Interp {
        Interp {
            mode,
            out_h: -1,
            out_w: -1,
            scale: vec![2.0, 2.0],
            align_corners,
            align_mode,
            layout: Layout::Nchw,
            out_size_input: ListInput::Attr,
            scale_input: false,
            onnx: None,
        }
    }

    fn onnx(mode: InterpMode, transform: CoordTransform, nearest: NearestRound) -> Interp {
        Interp {
            onnx: Some(OnnxCoords {
                transform,
                nearest,
                ..OnnxCoords::default()
            }),
            ..interp(mode, false, 0)
        }
    }

    #[test]
    fn onnx_nearest_rounds_half_pixel_coordinates() {
        // Sources of outputs 0..3 at scale 2: −0.25, 0.25, 0.75, 1.25.
        let x = Tensor::from_f32s(&[1, 1, 1, 2], vec![1., 2.]).unwrap();
        let i = onnx(
            InterpMode::Nearest,
            CoordTransform::HalfPixel,
            NearestRound::RoundPreferFloor,
        );
        let y = eval(&i, &[&x]).unwrap().to_f64_vec();
        assert_eq!(&y[..4], &[1., 1., 2., 2.]);
        // Asymmetric (k / 2: 0, 0.5, 1, 1.5): a half rounds down, or up with ceil rounding.
        let i = onnx(
            InterpMode::Nearest,
            CoordTransform::Asymmetric,
            NearestRound::RoundPreferFloor,
        );
        assert_eq!(
            &eval(&i, &[&x]).unwrap().to_f64_vec()[..4],
            &[1., 1., 2., 2.]
        );
        let i = onnx(
            InterpMode::Nearest,
            CoordTransform::Asymmetric,
            NearestRound::RoundPreferCeil,
        );
        assert_eq!(
            &eval(&i, &[&x]).unwrap().to_f64_vec()[..4],
            &[1., 2., 2., 2.]
        );
    }

    #[test]
    fn onnx_cubic_reproduces_a_ramp_inside_and_the_scale_given_maps_coordinates() {
        // Cubic convolution is exact on a linear ramp away from the edges.
        let x = Tensor::from_f32s(&[1, 1, 1, 4], vec![0., 1., 2., 3.]).unwrap();
        let i = onnx(
            InterpMode::Bicubic,
            CoordTransform::Asymmetric,
            NearestRound::Floor,
        );
        let y = eval(&i, &[&x]).unwrap().to_f64_vec();
        assert_eq!(y.len(), 2 * 8);
        for (k, want) in [(2, 1.0), (3, 1.5), (4, 2.0)] {
            assert!((y[k] - want).abs() < 1e-6, "{k}: {y:?}");
        }
        // Downscale by 0.6 (2×4 → 1×2), half-pixel: sources (k + 0.5) / 0.6 − 0.5, so
        // row 1/3 and columns 1/3 and 2: ONNX's 2.6666 and 4.3333, not the size ratio's.
        let x = Tensor::from_f32s(&[1, 1, 2, 4], (1..=8).map(|v| v as f32).collect()).unwrap();
        let i = Interp {
            scale: vec![0.6, 0.6],
            ..onnx(
                InterpMode::Bilinear,
                CoordTransform::HalfPixel,
                NearestRound::Floor,
            )
        };
        let y = eval(&i, &[&x]).unwrap().to_f64_vec();
        assert!(
            (y[0] - 8.0 / 3.0).abs() < 1e-5 && (y[1] - 13.0 / 3.0).abs() < 1e-5,
            "{y:?}"
        );
    }

    #[test]
    fn nearest_doubles_pixels() {
        let x = Tensor::from_f32s(&[1, 1, 1, 2], vec![1., 2.]).unwrap();
        let y = eval(&interp(InterpMode::Nearest, false, 1), &[&x]).unwrap();
        assert_eq!(y.shape(), &[1, 1, 2, 4]);
        assert_eq!(y.to_f64_vec(), vec![1., 1., 2., 2., 1., 1., 2., 2.]);
    }

    #[test]
    fn bilinear_half_pixel_and_align_corners() {
        let x = Tensor::from_f32s(&[1, 1, 1, 2], vec![0., 1.]).unwrap();
        let hp = eval(&interp(InterpMode::Bilinear, false, 0), &[&x])
            .unwrap()
            .to_f64_vec();
        assert_eq!(&hp[..4], &[0., 0.25, 0.75, 1.]);
        let ac = eval(&interp(InterpMode::Bilinear, true, 0), &[&x])
            .unwrap()
            .to_f64_vec();
        let third = 1.0f32 / 3.0;
        assert!(
            (ac[1] - third as f64).abs() < 1e-6 && (ac[2] - 2.0 * third as f64).abs() < 1e-6,
            "{ac:?}"
        );
        let asym = eval(&interp(InterpMode::Bilinear, false, 1), &[&x])
            .unwrap()
            .to_f64_vec();
        assert_eq!(&asym[..4], &[0., 0.5, 1., 1.]);
    }
}
