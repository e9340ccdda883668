//! Elementwise ops on the CPU: unary math and activations, binary arithmetic with Paddle's
//! broadcast (and a fused activation), comparisons, dtype casts.

use super::super::{all_f32, CpuKernel, Ins, Outs, Ty};
use crate::{Error, Result};
use kayak_ir::ops::{BinaryOp, CmpOp, UnaryOp};
use kayak_ir::{DType, Op, Tensor};
use kayak_kernels::ops::{self as kops, BinOp, Broadcast};
use kayak_kernels::Act;

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    _: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    let out = outs[0];
    Some(match op {
        Op::Unary(u) if all_f32(ins) && ins.len() == 1 && out.0 == DType::F32 => {
            Box::new(UnaryK(act_of(u)))
        }
        Op::Binary(b) => Box::new(binary(b.op, b.axis, None, ins, out)?),
        Op::FusedBinary(f) => Box::new(binary(f.op, f.axis, Some(&f.act), ins, out)?),
        Op::Compare(c) => {
            if ins.len() != 2 || ins[0].0 != ins[1].0 {
                return None;
            }
            if !matches!(ins[0].0, DType::F32 | DType::I64 | DType::I32) {
                return None;
            }
            let bc = broadcast(c.axis, ins, out)?;
            let op = match c.op {
                CmpOp::Eq => kops::CmpOp::Eq,
                CmpOp::Ne => kops::CmpOp::Ne,
                CmpOp::Lt => kops::CmpOp::Lt,
                CmpOp::Le => kops::CmpOp::Le,
                CmpOp::Gt => kops::CmpOp::Gt,
                CmpOp::Ge => kops::CmpOp::Ge,
            };
            Box::new(CompareK { op, bc })
        }
        Op::Cast(c) => {
            let ok = |d: DType| {
                matches!(
                    d,
                    DType::F32 | DType::I64 | DType::I32 | DType::Bool | DType::F64
                )
            };
            if ins.len() != 1 || !(ok(ins[0].0) && ok(c.to)) {
                return None;
            }
            Box::new(CastK {
                from: ins[0].0,
                to: c.to,
            })
        }
        _ => return None,
    })
}

/// The kernels' activation for an IR unary op.
pub(crate) fn act_of(u: &UnaryOp) -> Act {
    match *u {
        UnaryOp::Relu => Act::Relu,
        UnaryOp::Relu6 { threshold } => Act::Relu6(threshold),
        UnaryOp::LeakyRelu { alpha } => Act::LeakyRelu(alpha),
        UnaryOp::HardSwish {
            threshold,
            scale,
            offset,
        } => Act::HardSwish {
            threshold,
            scale,
            offset,
        },
        UnaryOp::HardSigmoid { slope, offset } => Act::HardSigmoid { slope, offset },
        UnaryOp::Sigmoid => Act::Sigmoid,
        UnaryOp::Swish { beta } => Act::Swish(beta),
        UnaryOp::Gelu { approximate: false } => Act::Gelu,
        UnaryOp::Gelu { approximate: true } => Act::GeluTanh,
        UnaryOp::Tanh => Act::Tanh,
        UnaryOp::Exp => Act::Exp,
        UnaryOp::Log => Act::Log,
        UnaryOp::Sqrt => Act::Sqrt,
        UnaryOp::Rsqrt => Act::Rsqrt,
        UnaryOp::Abs => Act::Abs,
        UnaryOp::Square => Act::Square,
        UnaryOp::Reciprocal => Act::Reciprocal,
        UnaryOp::Floor => Act::Floor,
        UnaryOp::Ceil => Act::Ceil,
        UnaryOp::Erf => Act::Erf,
        UnaryOp::Sin => Act::Sin,
        UnaryOp::Cos => Act::Cos,
        UnaryOp::Tan => Act::Tan,
        UnaryOp::Asin => Act::Asin,
        UnaryOp::Acos => Act::Acos,
        UnaryOp::Atan => Act::Atan,
        UnaryOp::Sinh => Act::Sinh,
        UnaryOp::Cosh => Act::Cosh,
        UnaryOp::Asinh => Act::Asinh,
        UnaryOp::Acosh => Act::Acosh,
        UnaryOp::Atanh => Act::Atanh,
        UnaryOp::Sign => Act::Sign,
        UnaryOp::Round => Act::Round,
        UnaryOp::Softplus => Act::Softplus,
        UnaryOp::Softsign => Act::Softsign,
        UnaryOp::Mish => Act::Mish,
        UnaryOp::Elu { alpha } => Act::Elu(alpha),
        UnaryOp::Selu { alpha, gamma } => Act::Selu(alpha, gamma),
        UnaryOp::Celu { alpha } => Act::Celu(alpha),
        UnaryOp::ThresholdedRelu { alpha } => Act::ThresholdedRelu(alpha),
        UnaryOp::PowScalar { factor } => Act::Pow(factor),
        UnaryOp::Clip { min, max } => Act::Clip(min, max),
        UnaryOp::Scale {
            scale,
            bias,
            bias_after_scale,
        } => Act::Scale {
            scale,
            bias,
            after: bias_after_scale,
        },
    }
}

/// A unary f32 function.
#[derive(Debug)]
struct UnaryK(Act);

impl CpuKernel for UnaryK {
    fn name(&self) -> &'static str {
        "unary"
    }
    fn in_place_inputs(&self) -> &'static [usize] {
        &[0]
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let x = ins.src(0)?;
        kops::unary(ins.pool(), self.0, x, outs.f32(0)?);
        Ok(())
    }
}

/// The strides of Paddle's `axis` broadcast of two operands to the output.
fn broadcast(axis: i64, ins: &[Ty<'_>], out: Ty<'_>) -> Option<Broadcast> {
    let (a, b) = (ins[0].1, ins[1].1);
    let (sa, sb, _) = kayak_ir::ops::paddle_broadcast(
        "binary",
        &kayak_ir::Shape::known(a),
        &kayak_ir::Shape::known(b),
        axis,
    )
    .ok()?;
    let sa = sa.to_known()?;
    let sb = sb.to_known()?;
    Broadcast::new(out.1, &sa, &sb)
}

/// f32 `act(x op y)` with broadcasting.
#[derive(Debug)]
struct BinaryK {
    op: BinOp,
    bc: Broadcast,
    /// Activation after.
    act: Act,
}

fn binary(
    b: BinaryOp,
    axis: i64,
    act: Option<&UnaryOp>,
    ins: &[Ty<'_>],
    out: Ty<'_>,
) -> Option<BinaryK> {
    if ins.len() != 2 || !all_f32(ins) || out.0 != DType::F32 {
        return None;
    }
    let op = match b {
        BinaryOp::Add => BinOp::Add,
        BinaryOp::Sub => BinOp::Sub,
        BinaryOp::Mul => BinOp::Mul,
        BinaryOp::Div => BinOp::Div,
        BinaryOp::Max => BinOp::Max,
        BinaryOp::Min => BinOp::Min,
        BinaryOp::Pow => BinOp::Pow,
        _ => return None,
    };
    Some(BinaryK {
        op,
        bc: broadcast(axis, ins, out)?,
        act: act.map_or(Act::Identity, act_of),
    })
}

impl CpuKernel for BinaryK {
    fn name(&self) -> &'static str {
        "binary"
    }
    fn in_place_inputs(&self) -> &'static [usize] {
        &[0, 1]
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let (x, y) = (ins.src(0)?, ins.src(1)?);
        kops::binary(ins.pool(), self.op, self.act, &self.bc, x, y, outs.f32(0)?);
        Ok(())
    }
}

/// A comparison with broadcasting (bool output).
#[derive(Debug)]
struct CompareK {
    op: kops::CmpOp,
    bc: Broadcast,
}

impl CpuKernel for CompareK {
    fn name(&self) -> &'static str {
        "compare"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        // Writes 0 or 1 only (a bool output).
        let o = outs.get::<u8>(0)?;
        match ins.dtype(0)? {
            DType::F32 => kops::compare(self.op, &self.bc, ins.f32(0)?, ins.f32(1)?, o),
            DType::I64 => kops::compare(self.op, &self.bc, ins.get::<i64>(0)?, ins.get(1)?, o),
            _ => kops::compare(self.op, &self.bc, ins.get::<i32>(0)?, ins.get(1)?, o),
        }
        Ok(())
    }
}

/// A dtype conversion.
#[derive(Debug)]
struct CastK {
    from: DType,
    to: DType,
}

impl CpuKernel for CastK {
    fn name(&self) -> &'static str {
        "cast"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        macro_rules! conv {
            ($src:ty, $dst:ty, $f:expr) => {{
                let (s, d) = (ins.get::<$src>(0)?, outs.get::<$dst>(0)?);
                for (d, s) in d.iter_mut().zip(s) {
                    *d = $f(*s);
                }
            }};
        }
        // Bools are bytes holding 0 or 1; every cast to bool writes 0 or 1.
        match (self.from, self.to) {
            (a, b) if a == b => outs.bytes(0)?.copy_from_slice(ins.bytes(0)?),
            (DType::F32, DType::I64) => conv!(f32, i64, |v: f32| v as i64),
            (DType::F32, DType::I32) => conv!(f32, i32, |v: f32| v as i32),
            (DType::F32, DType::Bool) => conv!(f32, u8, |v: f32| (v != 0.0) as u8),
            (DType::F32, DType::F64) => conv!(f32, f64, |v: f32| v as f64),
            (DType::I64, DType::F32) => conv!(i64, f32, |v: i64| v as f32),
            (DType::I64, DType::I32) => conv!(i64, i32, |v: i64| v as i32),
            (DType::I64, DType::Bool) => conv!(i64, u8, |v: i64| (v != 0) as u8),
            (DType::I64, DType::F64) => conv!(i64, f64, |v: i64| v as f64),
            (DType::I32, DType::F32) => conv!(i32, f32, |v: i32| v as f32),
            (DType::I32, DType::I64) => conv!(i32, i64, |v: i32| v as i64),
            (DType::I32, DType::Bool) => conv!(i32, u8, |v: i32| (v != 0) as u8),
            (DType::I32, DType::F64) => conv!(i32, f64, |v: i32| v as f64),
            (DType::Bool, DType::F32) => conv!(u8, f32, |v: u8| (v != 0) as u8 as f32),
            (DType::Bool, DType::I64) => conv!(u8, i64, |v: u8| (v != 0) as i64),
            (DType::Bool, DType::I32) => conv!(u8, i32, |v: u8| (v != 0) as i32),
            (DType::Bool, DType::F64) => conv!(u8, f64, |v: u8| (v != 0) as u8 as f64),
            (DType::F64, DType::F32) => conv!(f64, f32, |v: f64| v as f32),
            (DType::F64, DType::I64) => conv!(f64, i64, |v: f64| v as i64),
            (DType::F64, DType::I32) => conv!(f64, i32, |v: f64| v as i32),
            (DType::F64, DType::Bool) => conv!(f64, u8, |v: f64| (v != 0.0) as u8),
            (from, to) => {
                return Err(Error::Kernel(format!(
                    "a cast from {from} to {to} was bound"
                )))
            }
        }
        Ok(())
    }
}
