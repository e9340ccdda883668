//! Ops along an axis on the CPU: softmax.

use super::super::{all_f32, CpuKernel, Ins, Outs, Ty};
use crate::Result;
use kayak_ir::{Op, Tensor};
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
