//! Data movement on the CPU: slices, strided slices, splits, nearest resizes and
//! transposes as separable gathers (derived at plan time by running the op on an index
//! tensor, or from the permuted strides), and concatenation.

use super::super::{CpuKernel, Ins, Outs, Ty};
use crate::{Error, Result};
use kayak_ir::ops::{InterpMode, Layout};
use kayak_ir::{Op, Tensor};
use kayak_kernels::ops::{self as kops, Gather, MAX_RANK};

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    values: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    let out = outs[0];
    Some(match op {
        Op::Slice(_) | Op::StridedSlice(_) | Op::Split(_) => {
            Box::new(GatherK(probe_gather(op, ins, values, outs)?))
        }
        Op::Interp(i) if i.mode == InterpMode::Nearest => {
            // Resizing never mixes images or channels: probe one NCHW plane and extend.
            let (x, o) = (ins[0].1, out.1);
            if i.layout == Layout::Nchw && x.len() == 4 && o.len() == 4 {
                let plane_in = [1, 1, x[2], x[3]];
                let plane_out = [1, 1, o[2], o[3]];
                let mut g =
                    probe_gather(op, &[(ins[0].0, &plane_in)], values, &[(out.0, &plane_out)])?;
                let g = g.pop()?;
                let mut dims = g.dims;
                let mut tables = g.tables;
                let (a0, a1) = (MAX_RANK - 4, MAX_RANK - 3);
                dims[a0] = o[0];
                dims[a1] = o[1];
                tables[a0] = (0..o[0]).map(|n| n * x[1] * x[2] * x[3]).collect();
                tables[a1] = (0..o[1]).map(|c| c * x[2] * x[3]).collect();
                Box::new(GatherK(vec![Gather { dims, tables }]))
            } else {
                Box::new(GatherK(probe_gather(op, ins, values, outs)?))
            }
        }
        Op::Transpose(t) => {
            let x = ins[0].1;
            let r = x.len();
            if r > MAX_RANK || t.perm.len() != r || ins.len() != 1 {
                return None;
            }
            let mut xstr = vec![1usize; r];
            for k in (0..r.saturating_sub(1)).rev() {
                xstr[k] = xstr[k + 1] * x[k + 1];
            }
            // A gather whose tables are the permuted input strides.
            let mut dims = [1usize; MAX_RANK];
            let mut tables = vec![vec![0usize]; MAX_RANK];
            for (i, &p) in t.perm.iter().enumerate() {
                dims[MAX_RANK - r + i] = x[p];
                tables[MAX_RANK - r + i] = (0..x[p]).map(|j| j * xstr[p]).collect();
            }
            Box::new(GatherK(vec![Gather { dims, tables }]))
        }
        Op::Concat(c) => {
            let r = out.1.len() as i64;
            let a = if c.axis < 0 { c.axis + r } else { c.axis };
            if a < 0 || a >= r || ins.iter().any(|t| t.0 != out.0 || t.1.len() != out.1.len()) {
                return None;
            }
            let a = a as usize;
            let outer: usize = out.1[..a].iter().product();
            let inner: usize = out.1[a + 1..].iter().product();
            let size = out.0.size_of();
            Box::new(ConcatK {
                outer,
                lens: ins.iter().map(|t| t.1[a] * inner * size).collect(),
            })
        }
        _ => return None,
    })
}

/// Derives one separable gather per output of a data-movement op by running the reference
/// op on an index tensor (`x[i] = i`): each output element then names the input element
/// it copies. The tables are read off the axes and checked against every element, so a
/// mapping that is not separable is rejected (`None`). Only for ops whose every output
/// element is exactly one input element (slices, resizes by nearest neighbour, splits).
fn probe_gather(
    op: &Op,
    ins: &[Ty<'_>],
    values: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Vec<Gather>> {
    let x = ins.first()?.1;
    let n: usize = x.iter().product();
    if n == 0 || n >= 1 << 24 || x.len() > MAX_RANK || values.first()?.is_some() {
        return None;
    }
    if outs.iter().any(|o| o.1.len() > MAX_RANK || o.0 != ins[0].0) {
        return None;
    }
    let mut probe_ins = vec![crate::gather::ProbeInput::Data(x)];
    for v in &values[1..] {
        probe_ins.push(crate::gather::ProbeInput::Param(v.as_ref()?));
    }
    let results = crate::gather::probe(op, &probe_ins)?;
    if results.len() != outs.len() {
        return None;
    }
    let mut gathers = Vec::with_capacity(outs.len());
    for ((shape, idx), o) in results.iter().zip(outs) {
        if shape.as_slice() != o.1 {
            return None;
        }
        let r = o.1.len();
        let mut dims = [1usize; MAX_RANK];
        dims[MAX_RANK - r..].copy_from_slice(o.1);
        if idx.is_empty() {
            gathers.push(Gather {
                dims,
                tables: dims.iter().map(|&d| vec![0; d]).collect(),
            });
            continue;
        }
        // Offsets per axis, relative to the first element's along every axis but the last
        // (which keeps it); the kernel's tables are unsigned.
        let tables: Vec<Vec<usize>> = crate::gather::separable(idx, &dims)?
            .into_iter()
            .map(|t| t.into_iter().map(|v| usize::try_from(v).ok()).collect())
            .collect::<Option<_>>()?;
        gathers.push(Gather { dims, tables });
    }
    Some(gathers)
}

/// Pure data movement: one separable gather per output.
#[derive(Debug)]
struct GatherK(Vec<Gather>);

impl CpuKernel for GatherK {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let pool = ins.pool();
        let size = ins.dtype(0)?.size_of();
        for (j, g) in self.0.iter().enumerate() {
            match size {
                8 => kops::gather(pool, g, ins.get::<i64>(0)?, outs.get::<i64>(j)?),
                4 => kops::gather(pool, g, ins.get::<i32>(0)?, outs.get::<i32>(j)?),
                2 => kops::gather(pool, g, ins.get::<u16>(0)?, outs.get::<u16>(j)?),
                1 => kops::gather(pool, g, ins.get::<u8>(0)?, outs.get::<u8>(j)?),
                s => return Err(Error::Kernel(format!("a gather of {s}-byte elements"))),
            }
        }
        Ok(())
    }
}

/// Concatenation: `[outer, len_i]` blocks (in bytes) into `[outer, total]`.
#[derive(Debug)]
struct ConcatK {
    /// Product of the axes before the concat axis.
    outer: usize,
    /// Each input's row length in bytes (its concat dim times the inner size).
    lens: Vec<usize>,
}

impl CpuKernel for ConcatK {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let total: usize = self.lens.iter().sum();
        let dst = outs.bytes(0)?;
        let mut at = 0;
        for (k, &len) in self.lens.iter().enumerate() {
            kops::concat_part(ins.bytes(k)?, self.outer, len, at, total, dst);
            at += len;
        }
        Ok(())
    }
}
