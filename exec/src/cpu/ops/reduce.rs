//! Ops along an axis on the CPU: softmax, cumsum.

use super::super::{all_f32, CpuKernel, Ins, Outs, Ty};
use crate::{Error, Result};
use kayak_ir::{DType, Op, Tensor};
use kayak_kernels::ops as kops;

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    _: &[Option<&Tensor>],
    _: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    Some(match op {
        Op::Softmax(s) => {
            if !all_f32(ins) || ins.len() != 1 {
                return None;
            }
            let x = ins[0].1;
            let r = x.len() as i64;
            let a = if s.axis < 0 { s.axis + r } else { s.axis };
            if a < 0 || a >= r.max(1) {
                return None;
            }
            let a = a as usize;
            Box::new(SoftmaxK {
                outer: x[..a].iter().product(),
                len: x.get(a).copied().unwrap_or(1),
                inner: x[(a + 1).min(x.len())..].iter().product(),
            })
        }
        Op::Cumsum(c) => {
            let (dtype, x) = *ins.first()?;
            if ins.len() != 1 || !matches!(dtype, DType::F32 | DType::F64 | DType::I32 | DType::I64)
            {
                return None;
            }
            let (outer, len, inner) = if c.flatten {
                (1, x.iter().product(), 1)
            } else {
                let a = kayak_ir::norm_axis(c.axis, x.len())?;
                (x[..a].iter().product(), x[a], x[a + 1..].iter().product())
            };
            Box::new(CumsumK {
                dims: (outer, len, inner),
                exclusive: c.exclusive,
                reverse: c.reverse,
                dtype,
            })
        }
        _ => return None,
    })
}

/// Softmax over the middle of `[outer, len, inner]`.
#[derive(Debug)]
struct SoftmaxK {
    outer: usize,
    len: usize,
    inner: usize,
}

impl CpuKernel for SoftmaxK {
    fn name(&self) -> &'static str {
        "softmax"
    }
    fn in_place_inputs(&self) -> &'static [usize] {
        &[0]
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let x = ins.src(0)?;
        kops::softmax(
            ins.pool(),
            self.outer,
            self.len,
            self.inner,
            x,
            outs.f32(0)?,
        );
        Ok(())
    }
}

/// Running sums over the middle axis of `[outer, len, inner]`.
#[derive(Debug)]
struct CumsumK {
    dims: (usize, usize, usize),
    exclusive: bool,
    reverse: bool,
    dtype: DType,
}

impl CumsumK {
    /// The scan, accumulating in `S` (f64 for floats, as the reference does; wrapping for
    /// integers).
    fn scan<T: Copy, S: Copy>(
        &self,
        x: &[T],
        o: &mut [T],
        zero: S,
        add: impl Fn(S, T) -> S,
        out: impl Fn(S) -> T,
    ) -> Result<()> {
        let (outer, len, inner) = self.dims;
        if x.len() != outer * len * inner || o.len() != x.len() {
            return Err(Error::Kernel("cumsum operands of another size".into()));
        }
        for b in 0..outer {
            for i in 0..inner {
                let mut acc = zero;
                for step in 0..len {
                    let j = if self.reverse { len - 1 - step } else { step };
                    let at = (b * len + j) * inner + i;
                    if self.exclusive {
                        o[at] = out(acc);
                        acc = add(acc, x[at]);
                    } else {
                        acc = add(acc, x[at]);
                        o[at] = out(acc);
                    }
                }
            }
        }
        Ok(())
    }
}

impl CpuKernel for CumsumK {
    fn name(&self) -> &'static str {
        "cumsum"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        match self.dtype {
            DType::F32 => self.scan(
                ins.f32(0)?,
                outs.f32(0)?,
                0f64,
                |s, v| s + v as f64,
                |s| s as f32,
            ),
            DType::F64 => self.scan(ins.get::<f64>(0)?, outs.get(0)?, 0f64, |s, v| s + v, |s| s),
            DType::I32 => self.scan(
                ins.get::<i32>(0)?,
                outs.get(0)?,
                0i32,
                i32::wrapping_add,
                |s| s,
            ),
            _ => self.scan(
                ins.get::<i64>(0)?,
                outs.get(0)?,
                0i64,
                i64::wrapping_add,
                |s| s,
            ),
        }
    }
}
