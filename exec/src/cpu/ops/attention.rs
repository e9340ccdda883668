//! Multi-head attention on the CPU: packed or separate Q, K, V, a mask broadcast from its
//! shape.

use super::super::{all_f32, CpuKernel, Ins, Outs, Ty};
use crate::Result;
use kayak_ir::{Op, Tensor};
use kayak_kernels::ops::{self as kops, AttnGeom};

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    _: &[Option<&Tensor>],
    _: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    let Op::Attention(a) = op else { return None };
    if !all_f32(ins) {
        return None;
    }
    let q = ins[0].1;
    if q.len() != 3 {
        return None;
    }
    let hd = a.heads * a.head_dim;
    let (b, s) = (q[0], q[1]);
    let (t, row, off, mask_at) = if a.packed {
        (s, 3 * hd, [0, hd, 2 * hd], 1)
    } else {
        (ins.get(1)?.1.get(1).copied()?, hd, [0, 0, 0], 3)
    };
    if ins.len() != mask_at + usize::from(a.has_mask) {
        return None;
    }
    let mut mask_strides = [0usize; 4];
    if a.has_mask {
        let m = ins.get(mask_at)?.1;
        if m.len() > 4 {
            return None;
        }
        let mut dims = [1usize; 4];
        dims[4 - m.len()..].copy_from_slice(m);
        let full = [b, a.heads, s, t];
        let mut run = 1;
        for k in (0..4).rev() {
            mask_strides[k] = if dims[k] == full[k] && dims[k] != 1 {
                run
            } else if dims[k] == 1 {
                0
            } else {
                return None;
            };
            run *= dims[k];
        }
    }
    Some(Box::new(AttentionK {
        geom: AttnGeom {
            b,
            s,
            t,
            heads: a.heads,
            d: a.head_dim,
            scale: a.scale,
            row,
            off,
            mask_strides,
        },
        mask: a.has_mask,
        packed: a.packed,
    }))
}

/// Multi-head attention.
#[derive(Debug)]
struct AttentionK {
    geom: AttnGeom,
    /// A mask input follows.
    mask: bool,
    /// Q, K, V in one input.
    packed: bool,
}

impl CpuKernel for AttentionK {
    fn name(&self) -> &'static str {
        "attention"
    }
    fn scratch(&self, threads: usize) -> usize {
        kops::attention_scratch(&self.geom, threads)
    }
    fn flops(&self) -> usize {
        let g = &self.geom;
        4 * g.b * g.heads * g.s * g.t * g.d
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let q = ins.f32(0)?;
        let (k, v, m) = if self.packed {
            (q, q, self.mask.then(|| ins.f32(1)).transpose()?)
        } else {
            (
                ins.f32(1)?,
                ins.f32(2)?,
                self.mask.then(|| ins.f32(3)).transpose()?,
            )
        };
        let (o, scratch) = (outs.f32(0)?, outs.scratch()?);
        kops::attention(ins.pool(), &self.geom, q, k, v, m, o, scratch);
        Ok(())
    }
}
