//! Matrix products: matmul (numpy semantics, batch broadcast), Paddle's `mul`, and `fc`.

use super::OpDef;
use super::{arity, arity_t, check_float, float_in, float_out, one, FusedMatMul, InferInput, Op};
use crate::error::{attr_err, shape_err};
use crate::sample::{infer_f32, Leaf, Rng, Sampler};
use crate::{Dim, Result, Shape, Tensor, TypeInfo};
use ndarray::{linalg::general_mat_mul, Array2, ArrayD, ArrayView2, Ix2, IxDyn};

/// `alpha * op(x) @ op(y)` where `op` optionally transposes the last two axes.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct MatMul {
    /// Transpose the last two axes of `x`.
    pub trans_x: bool,
    /// Transpose the last two axes of `y`.
    pub trans_y: bool,
    /// Output multiplier (matmul v1; 1 for matmul_v2).
    pub alpha: f32,
}

/// Paddle's `mul`: `x` flattened to 2-D at `x_num_col_dims`, `y` at `y_num_col_dims`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Mul {
    /// Leading axes of `x` that form the rows.
    pub x_num_col_dims: usize,
    /// Leading axes of `y` that form the rows.
    pub y_num_col_dims: usize,
}

/// Fully connected: `act(flatten(x) @ w + bias)`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Fc {
    /// Leading axes of `x` kept as rows.
    pub in_num_col_dims: usize,
    /// Apply relu to the output.
    pub relu: bool,
    /// A bias input follows `w`.
    pub has_bias: bool,
}

/// Output shape of numpy matmul on (already transposed) shapes; ranks ≥ 1.
fn matmul_shape(x: &Shape, y: &Shape, tx: bool, ty: bool) -> Result<Shape> {
    let op = "matmul";
    if x.rank() == 0 || y.rank() == 0 {
        return Err(shape_err(op, "operands must have rank ≥ 1"));
    }
    let mut xd = x.0.clone();
    let mut yd = y.0.clone();
    let x1 = xd.len() == 1;
    let y1 = yd.len() == 1;
    if x1 {
        xd.insert(0, Dim::Known(1));
    } else if tx {
        let n = xd.len();
        xd.swap(n - 1, n - 2);
    }
    if y1 {
        yd.push(Dim::Known(1));
    } else if ty {
        let n = yd.len();
        yd.swap(n - 1, n - 2);
    }
    let (m, k1) = (&xd[xd.len() - 2], &xd[xd.len() - 1]);
    let (k2, n) = (&yd[yd.len() - 2], &yd[yd.len() - 1]);
    if k1.unify(k2).is_none() {
        return Err(shape_err(
            op,
            format!("inner dims differ: {x} @ {y} (trans {tx}, {ty})"),
        ));
    }
    let bx = Shape(xd[..xd.len() - 2].to_vec());
    let by = Shape(yd[..yd.len() - 2].to_vec());
    let (_, _, batch) = super::binary::paddle_broadcast(op, &bx, &by, -1)?;
    let mut out = batch.0;
    if !x1 {
        out.push(m.clone());
    }
    if !y1 {
        out.push(n.clone());
    }
    Ok(Shape(out))
}

pub(super) fn infer_matmul(m: &MatMul, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("matmul", inputs, 2)?;
    check_float("matmul", inputs[0].ty, 0)?;
    check_float("matmul", inputs[1].ty, 1)?;
    let s = matmul_shape(
        &inputs[0].ty.shape,
        &inputs[1].ty.shape,
        m.trans_x,
        m.trans_y,
    )?;
    Ok(vec![TypeInfo {
        dtype: inputs[0].ty.dtype,
        shape: s,
    }])
}

/// Batched matmul on f32 arrays with numpy broadcast.
pub(crate) fn batched_matmul(
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
    tx: bool,
    ty: bool,
    alpha: f32,
) -> Result<ArrayD<f32>> {
    let out_shape = matmul_shape(&Shape::known(x.shape()), &Shape::known(y.shape()), tx, ty)?
        .to_known()
        .expect("known");
    // Promote 1-D operands to 2-D.
    let xv = if x.ndim() == 1 {
        x.view().insert_axis(ndarray::Axis(0))
    } else {
        x.view()
    };
    let yv = if y.ndim() == 1 {
        y.view().insert_axis(ndarray::Axis(1))
    } else {
        y.view()
    };
    let (xr, yr) = (xv.ndim(), yv.ndim());
    let xm = if tx && x.ndim() > 1 {
        xv.clone().reversed_axes_last2()
    } else {
        xv.clone()
    };
    let ym = if ty && y.ndim() > 1 {
        yv.clone().reversed_axes_last2()
    } else {
        yv.clone()
    };
    let m = xm.shape()[xr - 2];
    let n = ym.shape()[yr - 1];
    let bx = &xm.shape()[..xr - 2];
    let by = &ym.shape()[..yr - 2];
    let (_, _, batch) =
        super::binary::paddle_broadcast("matmul", &Shape::known(bx), &Shape::known(by), -1)?;
    let batch = batch.to_known().expect("known");
    let nb: usize = batch.iter().product();
    let pad = |s: &[usize]| -> Vec<usize> {
        let mut v = vec![1; batch.len() - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (bxp, byp) = (pad(bx), pad(by));
    let mut out = Vec::with_capacity(nb * m * n);
    let mut idx = vec![0usize; batch.len()];
    for _ in 0..nb {
        let xs = pick_batch(&idx, &bxp, &xm);
        let ys = pick_batch(&idx, &byp, &ym);
        let mut o = Array2::<f32>::zeros((m, n));
        general_mat_mul(alpha, &xs, &ys, 0.0, &mut o);
        out.extend(o.iter().copied());
        // Advance the batch index.
        for a in (0..batch.len()).rev() {
            idx[a] += 1;
            if idx[a] < batch[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| shape_err("matmul", e.to_string()))
}

/// The 2-D matrix of `full` at batch index `idx` (broadcast: size-1 batch axes index 0).
fn pick_batch<'a>(
    idx: &[usize],
    bp: &[usize],
    full: &ndarray::ArrayViewD<'a, f32>,
) -> ArrayView2<'a, f32> {
    let mut v = full.clone();
    let skip = bp.len() - (full.ndim() - 2);
    for (a, &i) in idx.iter().enumerate().skip(skip) {
        let ii = if bp[a] == 1 { 0 } else { i };
        v.index_axis_inplace(ndarray::Axis(0), ii);
    }
    v.into_dimensionality::<Ix2>().expect("2-D")
}

trait ReverseLast2 {
    fn reversed_axes_last2(self) -> Self;
}

impl<'a> ReverseLast2 for ndarray::ArrayViewD<'a, f32> {
    fn reversed_axes_last2(mut self) -> Self {
        let n = self.ndim();
        self.swap_axes(n - 1, n - 2);
        self
    }
}

fn eval_matmul(m: &MatMul, inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("matmul", inputs, 2)?;
    let x = float_in("matmul", inputs[0], 0)?;
    let y = float_in("matmul", inputs[1], 1)?;
    let out = batched_matmul(&x, &y, m.trans_x, m.trans_y, m.alpha)?;
    Ok(float_out(out, inputs[0].dtype()))
}

fn flatten2(s: &Shape, at: usize) -> (Dim, Dim) {
    let rows = Shape(s.0[..at].to_vec()).numel();
    let cols = Shape(s.0[at..].to_vec()).numel();
    (rows, cols)
}

fn infer_mul(m: &Mul, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("mul", inputs, 2)?;
    check_float("mul", inputs[0].ty, 0)?;
    let (xs, ys) = (&inputs[0].ty.shape, &inputs[1].ty.shape);
    if m.x_num_col_dims == 0 || m.x_num_col_dims > xs.rank().max(1) || m.x_num_col_dims > xs.rank()
    {
        return Err(attr_err(
            "mul",
            "x_num_col_dims",
            format!("{} out of range for {xs}", m.x_num_col_dims),
        ));
    }
    if m.y_num_col_dims == 0 || m.y_num_col_dims > ys.rank() {
        return Err(attr_err(
            "mul",
            "y_num_col_dims",
            format!("{} out of range for {ys}", m.y_num_col_dims),
        ));
    }
    let (_, k1) = flatten2(xs, m.x_num_col_dims);
    let (k2, _) = flatten2(ys, m.y_num_col_dims);
    if k1.unify(&k2).is_none() {
        return Err(shape_err(
            "mul",
            format!("inner sizes differ: {xs} vs {ys}"),
        ));
    }
    let mut out = xs.0[..m.x_num_col_dims].to_vec();
    out.extend_from_slice(&ys.0[m.y_num_col_dims..]);
    Ok(vec![TypeInfo {
        dtype: inputs[0].ty.dtype,
        shape: Shape(out),
    }])
}

fn as_2d(a: &ArrayD<f32>, at: usize) -> Result<Array2<f32>> {
    let rows: usize = a.shape()[..at].iter().product();
    let cols: usize = a.shape()[at..].iter().product();
    a.to_shape((rows, cols))
        .map(|v| v.into_owned())
        .map_err(|e| shape_err("mul", e.to_string()))
}

fn eval_mul(m: &Mul, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out = infer_mul(m, &super::concrete_inputs(&tys, inputs))?;
    let x = as_2d(&*float_in("mul", inputs[0], 0)?, m.x_num_col_dims)?;
    let y = as_2d(&*float_in("mul", inputs[1], 1)?, m.y_num_col_dims)?;
    let r = x.dot(&y);
    let dims = out[0].shape.to_known().expect("concrete");
    let r = r
        .into_shape_with_order(IxDyn(&dims))
        .map_err(|e| shape_err("mul", e.to_string()))?;
    Ok(float_out(r, inputs[0].dtype()))
}

fn infer_fc(f: &Fc, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("fc", inputs, 2 + f.has_bias as usize)?;
    check_float("fc", inputs[0].ty, 0)?;
    let (xs, ws) = (&inputs[0].ty.shape, &inputs[1].ty.shape);
    if ws.rank() != 2 {
        return Err(shape_err("fc", format!("weight {ws} must be 2-D")));
    }
    if f.in_num_col_dims == 0 || f.in_num_col_dims > xs.rank() {
        return Err(attr_err(
            "fc",
            "in_num_col_dims",
            format!("{} out of range for {xs}", f.in_num_col_dims),
        ));
    }
    let (_, k) = flatten2(xs, f.in_num_col_dims);
    if k.unify(&ws.0[0]).is_none() {
        return Err(shape_err(
            "fc",
            format!("input {xs} does not match weight {ws}"),
        ));
    }
    let mut out = xs.0[..f.in_num_col_dims].to_vec();
    out.push(ws.0[1].clone());
    Ok(vec![TypeInfo {
        dtype: inputs[0].ty.dtype,
        shape: Shape(out),
    }])
}

fn eval_fc(f: &Fc, inputs: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TypeInfo> = inputs.iter().map(|t| t.type_info()).collect();
    let out = infer_fc(f, &super::concrete_inputs(&tys, inputs))?;
    let x = as_2d(&*float_in("fc", inputs[0], 0)?, f.in_num_col_dims)?;
    let w = as_2d(&*float_in("fc", inputs[1], 1)?, 1)?;
    let mut r = x.dot(&w);
    if f.has_bias {
        let b = float_in("fc", inputs[2], 2)?;
        if b.len() != r.ncols() {
            return Err(shape_err(
                "fc",
                format!("bias has {} elements for {} outputs", b.len(), r.ncols()),
            ));
        }
        let b: Vec<f32> = b.iter().copied().collect();
        for mut row in r.rows_mut() {
            for (v, bv) in row.iter_mut().zip(&b) {
                *v += bv;
            }
        }
    }
    if f.relu {
        r.mapv_inplace(|v| v.max(0.0));
    }
    let dims = out[0].shape.to_known().expect("concrete");
    let r = r
        .into_shape_with_order(IxDyn(&dims))
        .map_err(|e| shape_err("fc", e.to_string()))?;
    Ok(float_out(r, inputs[0].dtype()))
}

impl OpDef for MatMul {
    const KINDS: &'static [&'static str] = &["matmul"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_matmul(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_matmul(self, inputs)?)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<MatMul> {
        match sample_matmul(kind, s)? {
            Op::MatMul(m) => Some(m),
            _ => None,
        }
    }
}

impl OpDef for Mul {
    const KINDS: &'static [&'static str] = &["mul"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_mul(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_mul(self, inputs)?)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Mul> {
        let x = s.first_input(|r| 2 + r.below(2));
        let m = s.attrs(kind, |r| {
            Some(Mul {
                x_num_col_dims: 1 + r.below(x.len().saturating_sub(1).max(1)),
                y_num_col_dims: 1,
            })
        })?;
        let k: usize = x.get(m.x_num_col_dims..)?.iter().product();
        if s.arity() == 2 && s.free(1) {
            let n = s.rng.dim(s.size);
            s.set(1, Leaf::normal(vec![k, n]));
        }
        Some(m)
    }
}

impl OpDef for Fc {
    const KINDS: &'static [&'static str] = &["fc"];
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_fc(self, inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_fc(self, inputs)?)
    }
}

/// A `matmul` (`x`, `y`) or a `fused_matmul` (`x`, `y[, bias]`, with a random activation):
/// transposes and an alpha now and then, batch dims on `x` (and sometimes `y`), the free
/// operand fitted to the other's contraction dim.
pub(super) fn sample_matmul(kind: &str, s: &mut Sampler<'_>) -> Option<Op> {
    let n = s.arity();
    let fused = kind == "fused_matmul";
    if (fused && !(2..=3).contains(&n)) || (!fused && n != 2) {
        return None;
    }
    let sample_mm = |r: &mut Rng| MatMul {
        trans_x: r.below(4) == 0,
        trans_y: r.coin(),
        alpha: if r.below(4) > 0 {
            1.0
        } else {
            r.pick(&[0.5, 2.0, 0.125])
        },
    };
    let (mm, has_bias, act) = match s.given() {
        Some(Op::MatMul(m)) if !fused => (m.clone(), false, None),
        Some(Op::FusedMatMul(f)) if fused => (f.mm.clone(), f.has_bias, f.act),
        Some(_) => return None,
        None => {
            let mm = sample_mm(s.rng);
            let act = (fused && s.rng.coin()).then(|| super::unary::sample_activation(s.rng));
            (mm, fused && n == 3, act)
        }
    };
    let size = s.size;
    let order = |a: usize, b: usize, t: bool| if t { [b, a] } else { [a, b] };
    let (x, y) = match (
        s.known(0).map(<[usize]>::to_vec),
        s.known(1).map(<[usize]>::to_vec),
    ) {
        (Some(x), Some(y)) => (x, y),
        (Some(x), None) => {
            if x.len() < 2 {
                return None;
            }
            let [a, b] = [x[x.len() - 2], x[x.len() - 1]];
            let k = if mm.trans_x { a } else { b };
            let nn = s.rng.dim(size);
            let mut y: Vec<usize> = if x.len() > 2 && s.rng.coin() {
                x[..x.len() - 2].to_vec()
            } else {
                vec![]
            };
            y.extend(order(k, nn, mm.trans_y));
            s.set(1, Leaf::normal(y.clone()));
            (x, y)
        }
        (None, Some(y)) => {
            if y.len() < 2 {
                return None;
            }
            let [a, b] = [y[y.len() - 2], y[y.len() - 1]];
            let k = if mm.trans_y { b } else { a };
            let m = s.rng.dim(size);
            let mut x: Vec<usize> = if y.len() > 2 {
                y[..y.len() - 2].to_vec()
            } else if s.rng.coin() {
                vec![s.rng.dim(size)]
            } else {
                vec![]
            };
            x.extend(order(m, k, mm.trans_x));
            s.set(0, Leaf::normal(x.clone()));
            (x, y)
        }
        (None, None) => {
            let r = &mut *s.rng;
            let (m, k, nn) = (r.dim(size), r.dim(size), r.dim(size));
            let batch: Vec<usize> = (0..r.below(3)).map(|_| r.dim(size)).collect();
            let mut x = batch.clone();
            x.extend(order(m, k, mm.trans_x));
            let mut y = if r.coin() { batch } else { vec![] };
            y.extend(order(k, nn, mm.trans_y));
            s.set(0, Leaf::normal(x.clone()));
            s.set(1, Leaf::normal(y.clone()));
            (x, y)
        }
    };
    let yout = infer_f32(&Op::MatMul(mm.clone()), &[&x, &y])?;
    if fused && n == 3 {
        s.set(2, Leaf::normal(vec![*yout.last()?]));
    }
    Some(if fused {
        Op::FusedMatMul(FusedMatMul {
            mm,
            has_bias,
            act,
            packed: None,
        })
    } else {
        Op::MatMul(mm)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
    }

    #[test]
    fn matmul_shapes_follow_numpy() {
        let s = |a: &[usize], b: &[usize], tx, ty| {
            matmul_shape(&Shape::known(a), &Shape::known(b), tx, ty).map(|s| s.to_known().unwrap())
        };
        assert_eq!(s(&[2, 3], &[3, 4], false, false).unwrap(), vec![2, 4]);
        assert_eq!(
            s(&[5, 1, 2, 3], &[7, 3, 4], false, false).unwrap(),
            vec![5, 7, 2, 4]
        );
        assert_eq!(s(&[3], &[3, 4], false, false).unwrap(), vec![4]);
        assert_eq!(s(&[2, 3], &[3], false, false).unwrap(), vec![2]);
        assert_eq!(s(&[3, 2], &[4, 3], true, true).unwrap(), vec![2, 4]);
        assert!(s(&[2, 3], &[4, 3], false, false).is_err());
    }

    #[test]
    fn batched_matmul_with_broadcast_and_transpose() {
        // x: [2, 2, 2] batch, y: [2, 2] shared; trans_y.
        let x = t(&[2, 2, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
        let y = t(&[2, 2], &[1., 0., 1., 1.]); // y^T = [[1,1],[0,1]]
        let r = batched_matmul(&x, &y, false, true, 2.0).unwrap();
        // [1,2]@[[1,1],[0,1]] = [1,3]; x2 → [2,6]
        assert_eq!(
            r.iter().copied().collect::<Vec<_>>(),
            vec![2., 6., 6., 14., 10., 22., 14., 30.]
        );
    }
}
