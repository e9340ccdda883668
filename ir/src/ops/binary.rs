//! Elementwise binary ops with Paddle's `axis` broadcast, comparisons, logical ops, where.

use super::{arity, arity_t, one, InferInput, OpDef};
use crate::error::shape_err;
use crate::sample::{Hint, Leaf, Sampler, ValKind};
use crate::{DType, Dim, Error, Result, Shape, Tensor, TypeInfo};
use ndarray::{ArrayD, IxDyn, Zip};

/// `x op y`, elementwise, with Paddle's `axis` broadcast.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binary {
    /// The arithmetic.
    pub op: BinaryOp,
    /// Paddle's broadcast axis (`-1`: numpy's trailing alignment).
    pub axis: i64,
}

impl Binary {
    /// `op` with Paddle's broadcast at `axis`.
    pub fn new(op: BinaryOp, axis: i64) -> Binary {
        Binary { op, axis }
    }
}

impl OpDef for Binary {
    const KINDS: &'static [&'static str] = &[
        "add",
        "sub",
        "mul_elementwise",
        "div",
        "pow",
        "max",
        "min",
        "mod",
        "floor_div",
    ];
    fn kind(&self) -> &'static str {
        self.op.name()
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_binary(self.op.name(), self.axis, inputs, None)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_binary(self.op, self.axis, inputs)?)
    }
    fn sample(kind: &str, s: &mut Sampler<'_>) -> Option<Binary> {
        sample_binary(kind, s)
    }
}

/// `x cmp y` (bool output), elementwise, with Paddle's `axis` broadcast.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compare {
    /// The comparison.
    pub op: CmpOp,
    /// Paddle's broadcast axis.
    pub axis: i64,
}

impl OpDef for Compare {
    const KINDS: &'static [&'static str] = &[
        "equal",
        "not_equal",
        "less_than",
        "less_equal",
        "greater_than",
        "greater_equal",
    ];
    fn kind(&self) -> &'static str {
        self.op.name()
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_binary(self.op.name(), self.axis, inputs, Some(DType::Bool))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_compare(self.op, self.axis, inputs)?)
    }
}

impl OpDef for LogicalOp {
    const KINDS: &'static [&'static str] = &["logical_and", "logical_or", "logical_xor"];
    fn kind(&self) -> &'static str {
        self.name()
    }
    fn param_free(kind: &str) -> Option<LogicalOp> {
        [LogicalOp::And, LogicalOp::Or, LogicalOp::Xor]
            .into_iter()
            .find(|l| l.name() == kind)
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_binary(self.name(), -1, inputs, Some(DType::Bool))
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_logical(*self, inputs)?)
    }
}

/// Logical not of a bool tensor.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogicalNot;

impl OpDef for LogicalNot {
    const KINDS: &'static [&'static str] = &["logical_not"];
    fn param_free(kind: &str) -> Option<LogicalNot> {
        (kind == "logical_not").then_some(LogicalNot)
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        arity("logical_not", inputs, 1)?;
        Ok(vec![TypeInfo {
            dtype: DType::Bool,
            shape: inputs[0].ty.shape.clone(),
        }])
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        arity_t("logical_not", inputs, 1)?;
        let a = as_bool("logical_not", inputs[0], 0)?;
        one(Tensor::Bool(a.mapv(|v| !v)))
    }
}

/// `cond ? x : y`, all three broadcast numpy-style.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Where;

impl OpDef for Where {
    const KINDS: &'static [&'static str] = &["where"];
    fn param_free(kind: &str) -> Option<Where> {
        (kind == "where").then_some(Where)
    }
    fn infer(&self, inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
        infer_where(inputs)
    }
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        one(eval_where(inputs)?)
    }
}

/// Elementwise arithmetic.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `x + y`
    Add,
    /// `x - y`
    Sub,
    /// `x * y`
    Mul,
    /// `x / y` (integers: truncated toward zero)
    Div,
    /// `x ^ y`
    Pow,
    /// `max(x, y)`
    Max,
    /// `min(x, y)`
    Min,
    /// Remainder with the sign of `y` (Python's `%`).
    Mod,
    /// `floor(x / y)`
    FloorDiv,
}

impl BinaryOp {
    /// IR name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul_elementwise",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Mod => "mod",
            BinaryOp::FloorDiv => "floor_div",
        }
    }

    /// The reference function on floats.
    pub fn apply_f64(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Mod => {
                let r = a % b;
                if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
                    r + b
                } else {
                    r
                }
            }
            BinaryOp::FloorDiv => (a / b).floor(),
        }
    }

    /// The reference function on integers; `None` on division by zero.
    pub fn apply_i64(self, a: i64, b: i64) -> Option<i64> {
        Some(match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div => a.checked_div(b)?,
            BinaryOp::Pow => {
                if b < 0 {
                    (a as f64).powf(b as f64) as i64
                } else {
                    a.wrapping_pow(b.min(u32::MAX as i64) as u32)
                }
            }
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Mod => {
                let r = a.checked_rem(b)?;
                if r != 0 && ((r < 0) != (b < 0)) {
                    r + b
                } else {
                    r
                }
            }
            BinaryOp::FloorDiv => {
                let q = a.checked_div(b)?;
                if (a % b != 0) && ((a < 0) != (b < 0)) {
                    q - 1
                } else {
                    q
                }
            }
        })
    }
}

/// Comparisons.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// IR name.
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "equal",
            CmpOp::Ne => "not_equal",
            CmpOp::Lt => "less_than",
            CmpOp::Le => "less_equal",
            CmpOp::Gt => "greater_than",
            CmpOp::Ge => "greater_equal",
        }
    }

    fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

/// Logical ops on bools.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalOp {
    /// and
    And,
    /// or
    Or,
    /// xor
    Xor,
}

impl LogicalOp {
    /// IR name.
    pub fn name(self) -> &'static str {
        match self {
            LogicalOp::And => "logical_and",
            LogicalOp::Or => "logical_or",
            LogicalOp::Xor => "logical_xor",
        }
    }
}

/// Paddle's elementwise broadcast: the lower-rank operand is aligned with the other's axes
/// starting at `axis` (`-1`: aligned to the trailing axes, as numpy does); then both are
/// broadcast numpy-style. Returns the two operand shapes padded to the output rank, and
/// the output shape.
pub fn paddle_broadcast(
    op: &'static str,
    x: &Shape,
    y: &Shape,
    axis: i64,
) -> Result<(Shape, Shape, Shape)> {
    let (rx, ry) = (x.rank(), y.rank());
    let rank = rx.max(ry);
    let pad = |s: &Shape, other_rank: usize| -> Result<Shape> {
        let r = s.rank();
        if r == rank {
            return Ok(s.clone());
        }
        let lead = if axis < 0 { rank - r } else { axis as usize };
        // Paddle drops trailing size-1 dims of the smaller operand before aligning.
        let mut dims = s.0.clone();
        if axis >= 0 {
            while dims.len() > 1
                && dims.last() == Some(&Dim::Known(1))
                && lead + dims.len() > other_rank
            {
                dims.pop();
            }
        }
        if lead + dims.len() > rank {
            return Err(shape_err(
                op,
                format!("cannot align {s} at axis {axis} with a rank-{rank} operand"),
            ));
        }
        let mut out = vec![Dim::Known(1); lead];
        out.extend(dims);
        out.resize(rank, Dim::Known(1));
        Ok(Shape(out))
    };
    let xs = if rx < ry { pad(x, ry)? } else { x.clone() };
    let ys = if ry < rx { pad(y, rx)? } else { y.clone() };
    let mut out = Vec::with_capacity(rank);
    for (a, b) in xs.0.iter().zip(&ys.0) {
        let d = match (a, b) {
            (Dim::Known(1), d) | (d, Dim::Known(1)) => d.clone(),
            (Dim::Known(p), Dim::Known(q)) if p != q => {
                return Err(shape_err(
                    op,
                    format!("cannot broadcast {x} with {y} (axis {axis})"),
                ))
            }
            (a, b) => a.unify(b).unwrap_or(Dim::Unknown),
        };
        out.push(d);
    }
    Ok((xs, ys, Shape(out)))
}

pub(super) fn infer_binary(
    op: &'static str,
    axis: i64,
    inputs: &[InferInput<'_>],
    out_dtype: Option<DType>,
) -> Result<Vec<TypeInfo>> {
    arity(op, inputs, 2)?;
    let (x, y) = (inputs[0].ty, inputs[1].ty);
    if x.dtype != y.dtype {
        return Err(Error::DTypeMismatch {
            op,
            lhs: x.dtype,
            rhs: y.dtype,
        });
    }
    let (_, _, out) = paddle_broadcast(op, &x.shape, &y.shape, axis)?;
    Ok(vec![TypeInfo {
        dtype: out_dtype.unwrap_or(x.dtype),
        shape: out,
    }])
}

/// Broadcasts two arrays following [`paddle_broadcast`] and combines them elementwise.
fn zip_broadcast<A: Clone, B: Clone, C>(
    op: &'static str,
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    axis: i64,
    f: impl Fn(A, B) -> C,
) -> Result<ArrayD<C>> {
    let (xs, ys, out) =
        paddle_broadcast(op, &Shape::known(a.shape()), &Shape::known(b.shape()), axis)?;
    let (xs, ys, out) = (
        xs.to_known().expect("known"),
        ys.to_known().expect("known"),
        out.to_known().expect("known"),
    );
    let av = a
        .view()
        .into_shape_with_order(IxDyn(&xs))
        .map_err(|e| shape_err(op, e.to_string()))?;
    let bv = b
        .view()
        .into_shape_with_order(IxDyn(&ys))
        .map_err(|e| shape_err(op, e.to_string()))?;
    let av = av
        .broadcast(IxDyn(&out))
        .ok_or_else(|| shape_err(op, "broadcast failed"))?;
    let bv = bv
        .broadcast(IxDyn(&out))
        .ok_or_else(|| shape_err(op, "broadcast failed"))?;
    Ok(Zip::from(&av)
        .and(&bv)
        .map_collect(|p, q| f(p.clone(), q.clone())))
}

fn same_dtype<'a>(op: &'static str, inputs: &[&'a Tensor]) -> Result<(&'a Tensor, &'a Tensor)> {
    arity_t(op, inputs, 2)?;
    let (x, y) = (inputs[0], inputs[1]);
    if x.dtype() != y.dtype() {
        return Err(Error::DTypeMismatch {
            op,
            lhs: x.dtype(),
            rhs: y.dtype(),
        });
    }
    Ok((x, y))
}

pub(super) fn eval_binary(op: BinaryOp, axis: i64, inputs: &[&Tensor]) -> Result<Tensor> {
    let n = op.name();
    let (x, y) = same_dtype(n, inputs)?;
    let div0 = || Error::OutOfRange {
        op: n,
        reason: "integer division by zero".into(),
    };
    Ok(match (x, y) {
        (Tensor::F32(a), Tensor::F32(b)) => Tensor::F32(zip_broadcast(n, a, b, axis, |p, q| {
            op.apply_f64(p as f64, q as f64) as f32
        })?),
        (Tensor::F64(a), Tensor::F64(b)) => {
            Tensor::F64(zip_broadcast(n, a, b, axis, |p, q| op.apply_f64(p, q))?)
        }
        (Tensor::F16(a), Tensor::F16(b)) => Tensor::F16(zip_broadcast(n, a, b, axis, |p, q| {
            half::f16::from_f64(op.apply_f64(p.to_f64(), q.to_f64()))
        })?),
        (Tensor::BF16(a), Tensor::BF16(b)) => {
            Tensor::BF16(zip_broadcast(n, a, b, axis, |p, q| {
                half::bf16::from_f64(op.apply_f64(p.to_f64(), q.to_f64()))
            })?)
        }
        (Tensor::I32(a), Tensor::I32(b)) => {
            let r = zip_broadcast(n, a, b, axis, |p, q| op.apply_i64(p as i64, q as i64))?;
            if r.iter().any(Option::is_none) {
                return Err(div0());
            }
            Tensor::I32(r.mapv(|v| v.unwrap_or(0) as i32))
        }
        (Tensor::I64(a), Tensor::I64(b)) => {
            let r = zip_broadcast(n, a, b, axis, |p, q| op.apply_i64(p, q))?;
            if r.iter().any(Option::is_none) {
                return Err(div0());
            }
            Tensor::I64(r.mapv(|v| v.unwrap_or(0)))
        }
        (Tensor::I8(a), Tensor::I8(b)) => {
            let r = zip_broadcast(n, a, b, axis, |p, q| op.apply_i64(p as i64, q as i64))?;
            if r.iter().any(Option::is_none) {
                return Err(div0());
            }
            Tensor::I8(r.mapv(|v| v.unwrap_or(0) as i8))
        }
        (Tensor::U8(a), Tensor::U8(b)) => {
            let r = zip_broadcast(n, a, b, axis, |p, q| op.apply_i64(p as i64, q as i64))?;
            if r.iter().any(Option::is_none) {
                return Err(div0());
            }
            Tensor::U8(r.mapv(|v| v.unwrap_or(0) as u8))
        }
        (t, _) => {
            return Err(Error::DType {
                op: n,
                input: 0,
                dtype: t.dtype(),
            })
        }
    })
}

fn eval_compare(op: CmpOp, axis: i64, inputs: &[&Tensor]) -> Result<Tensor> {
    let n = op.name();
    let (x, y) = same_dtype(n, inputs)?;
    use crate::tensor::Elem;
    fn go<T: Elem>(
        n: &'static str,
        op: CmpOp,
        a: &ArrayD<T>,
        y: &Tensor,
        axis: i64,
    ) -> Result<Tensor> {
        let b = T::unwrap_ref(y).expect("same dtype checked");
        Ok(Tensor::Bool(zip_broadcast(n, a, b, axis, |p, q| {
            op.apply(p.to_f64(), q.to_f64())
        })?))
    }
    crate::with_tensor!(x, a => go(n, op, a, y, axis))
}

pub(crate) fn as_bool<'a>(
    op: &'static str,
    t: &'a Tensor,
    input: usize,
) -> Result<&'a ArrayD<bool>> {
    match t {
        Tensor::Bool(a) => Ok(a),
        t => Err(Error::DType {
            op,
            input,
            dtype: t.dtype(),
        }),
    }
}

fn eval_logical(op: LogicalOp, inputs: &[&Tensor]) -> Result<Tensor> {
    let n = op.name();
    arity_t(n, inputs, 2)?;
    let a = as_bool(n, inputs[0], 0)?;
    let b = as_bool(n, inputs[1], 1)?;
    Ok(Tensor::Bool(zip_broadcast(n, a, b, -1, |p, q| match op {
        LogicalOp::And => p && q,
        LogicalOp::Or => p || q,
        LogicalOp::Xor => p ^ q,
    })?))
}

fn infer_where(inputs: &[InferInput<'_>]) -> Result<Vec<TypeInfo>> {
    arity("where", inputs, 3)?;
    let (c, x, y) = (inputs[0].ty, inputs[1].ty, inputs[2].ty);
    if c.dtype != DType::Bool {
        return Err(Error::DType {
            op: "where",
            input: 0,
            dtype: c.dtype,
        });
    }
    if x.dtype != y.dtype {
        return Err(Error::DTypeMismatch {
            op: "where",
            lhs: x.dtype,
            rhs: y.dtype,
        });
    }
    let (_, _, xy) = paddle_broadcast("where", &x.shape, &y.shape, -1)?;
    let (_, _, out) = paddle_broadcast("where", &c.shape, &xy, -1)?;
    Ok(vec![TypeInfo {
        dtype: x.dtype,
        shape: out,
    }])
}

fn eval_where(inputs: &[&Tensor]) -> Result<Tensor> {
    arity_t("where", inputs, 3)?;
    let c = as_bool("where", inputs[0], 0)?;
    let out = infer_where(&super::concrete_inputs(
        &inputs.iter().map(|t| t.type_info()).collect::<Vec<_>>(),
        inputs,
    ))?;
    let dims = out[0].shape.to_known().expect("concrete");
    let cb = c
        .broadcast(IxDyn(&dims))
        .ok_or_else(|| shape_err("where", "broadcast failed"))?;
    let (x, y) = (inputs[1], inputs[2]);
    if x.dtype() != y.dtype() {
        return Err(Error::DTypeMismatch {
            op: "where",
            lhs: x.dtype(),
            rhs: y.dtype(),
        });
    }
    use crate::tensor::Elem;
    fn go<T: Elem>(
        cb: &ndarray::ArrayViewD<'_, bool>,
        a: &ArrayD<T>,
        y: &Tensor,
        dims: &[usize],
    ) -> Result<Tensor> {
        let b = T::unwrap_ref(y).expect("same dtype");
        let av = a
            .broadcast(IxDyn(dims))
            .ok_or_else(|| shape_err("where", "broadcast failed"))?;
        let bv = b
            .broadcast(IxDyn(dims))
            .ok_or_else(|| shape_err("where", "broadcast failed"))?;
        Ok(T::wrap(
            Zip::from(cb)
                .and(&av)
                .and(&bv)
                .map_collect(|&c, &p, &q| if c { p } else { q }),
        ))
    }
    crate::with_tensor!(x, a => go(&cb, a, y, &dims))
}

/// A binary op of `kind` and its free operands: `y` often `x`'s shape, or a trailing part,
/// a single element, or a slice of `x`'s axes from a Paddle `axis`; divisors and powers'
/// bases positive.
fn sample_binary(kind: &str, s: &mut Sampler<'_>) -> Option<Binary> {
    let b = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Max,
        BinaryOp::Min,
    ]
    .into_iter()
    .find(|b| b.name() == kind)?;
    if s.arity() != 2 {
        return None;
    }
    let mut axis = match s.given() {
        Some(super::Op::Binary(g)) if g.op == b => Some(g.axis),
        Some(_) => return None,
        None => None,
    };
    let (xk, yk) = match b {
        BinaryOp::Div => (ValKind::Normal, ValKind::Positive),
        BinaryOp::Pow => (ValKind::Positive, ValKind::Normal),
        _ => (ValKind::Normal, ValKind::Normal),
    };
    let size = s.size;
    let x = match s.known(0) {
        Some(x) => x.to_vec(),
        None if s.hint(0) == Hint::Scalar => vec![1],
        None => match s.known(1).map(<[usize]>::to_vec) {
            Some(y) if s.rng.below(4) > 0 || axis.is_some_and(|a| a != -1) => y,
            _ => {
                let rank = 1 + s.rng.below(4);
                s.rng.shape(size, rank)
            }
        },
    };
    s.set(
        0,
        Leaf {
            shape: x.clone(),
            kind: xk,
        },
    );
    if s.free(1) {
        let y = if s.hint(1) == Hint::Scalar {
            vec![1]
        } else {
            let r = &mut *s.rng;
            match (axis, r.below(10)) {
                (Some(a), _) if a >= 0 => {
                    let a = a as usize;
                    if a > x.len() {
                        return None;
                    }
                    let k = 1 + r.below((x.len() - a).max(1));
                    x[a..(a + k).min(x.len())].to_vec()
                }
                (_, 0..=3) => x.clone(),
                (_, 4 | 5) => vec![*x.last()?],
                (_, 6 | 7) => vec![1],
                (None, 8) if x.len() >= 2 => {
                    axis = Some(1);
                    vec![x[1]]
                }
                (None, _) if x.len() >= 2 => {
                    let a = r.below(x.len());
                    axis = Some(a as i64);
                    x[a..].to_vec()
                }
                _ => x.clone(),
            }
        };
        s.set(1, Leaf { shape: y, kind: yk });
    }
    let axis = axis.unwrap_or(if s.rng.below(8) == 0 && x.len() >= 2 {
        0
    } else {
        -1
    });
    Some(Binary::new(b, axis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_broadcast_aligns_the_smaller_operand() {
        let x = Shape::known(&[2, 3, 4, 5]);
        let (_, ys, out) = paddle_broadcast("t", &x, &Shape::known(&[3]), 1).unwrap();
        assert_eq!(ys, Shape::known(&[1, 3, 1, 1]));
        assert_eq!(out, x);
        let (_, ys, _) = paddle_broadcast("t", &x, &Shape::known(&[3, 1]), 1).unwrap();
        assert_eq!(ys, Shape::known(&[1, 3, 1, 1]));
        let (_, ys, _) = paddle_broadcast("t", &x, &Shape::known(&[4, 5]), -1).unwrap();
        assert_eq!(ys, Shape::known(&[1, 1, 4, 5]));
        assert!(paddle_broadcast("t", &x, &Shape::known(&[4]), 1).is_err());
    }

    #[test]
    fn python_style_mod_and_floordiv() {
        assert_eq!(BinaryOp::Mod.apply_i64(-7, 3), Some(2));
        assert_eq!(BinaryOp::Mod.apply_i64(7, -3), Some(-2));
        assert_eq!(BinaryOp::FloorDiv.apply_i64(-7, 2), Some(-4));
        assert_eq!(BinaryOp::Div.apply_i64(-7, 2), Some(-3));
        assert_eq!(BinaryOp::Div.apply_i64(1, 0), None);
        assert_eq!(BinaryOp::Mod.apply_f64(-7.5, 2.0), 0.5);
    }
}
