//! Pooling on the CPU: max and average windows, global, adaptive.

use super::super::{all_f32, CpuKernel, Ins, Outs, Ty};
use crate::Result;
use kayak_ir::ops::{Layout, PoolKind};
use kayak_ir::{Op, Tensor};
use kayak_kernels::ops::{self as kops, Pool2d};

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    _: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    let Op::Pool2d(p) = op else { return None };
    if p.layout != Layout::Nchw || !all_f32(ins) || ins.len() != 1 || ins[0].1.len() != 4 {
        return None;
    }
    let (x, o) = (ins[0].1, outs[0].1);
    if o.len() != 4 {
        return None;
    }
    let (h, w) = (x[2], x[3]);
    let (k, s) = if p.global {
        ([h, w], [1, 1])
    } else {
        (p.ksize, p.strides)
    };
    let (pad, _) = p.padding.resolve([h, w], k, s, [1, 1]);
    Some(Box::new(PoolK(Pool2d {
        max: p.kind == PoolKind::Max,
        planes: x[0] * x[1],
        h,
        w,
        oh: o[2],
        ow: o[3],
        k,
        s,
        pad: [pad[0], pad[2]],
        adaptive: p.adaptive && !p.global,
        exclusive: p.exclusive || p.global,
    })))
}

/// A pooling window over every plane.
#[derive(Debug)]
struct PoolK(Pool2d);

impl CpuKernel for PoolK {
    fn name(&self) -> &'static str {
        "pool"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        kops::pool2d(ins.pool(), &self.0, ins.f32(0)?, outs.f32(0)?);
        Ok(())
    }
}
