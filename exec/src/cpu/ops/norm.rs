//! Normalizations on the CPU: layer norm (and skip layer norm: of the sum of two inputs),
//! inference batch norm.

use super::super::{all_f32, CpuKernel, Ins, Outs, Ty};
use crate::Result;
use kayak_ir::ops::Layout;
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
        Op::LayerNorm(l) => Box::new(layer_norm(l, false, ins)?),
        Op::SkipLayerNorm(s) => Box::new(layer_norm(&s.ln, true, ins)?),
        Op::BatchNorm(b) => {
            let x = ins[0].1;
            if b.layout != Layout::Nchw || !all_f32(ins) || x.len() < 2 || ins.len() != 5 {
                return None;
            }
            let c = x[1];
            if ins[1..].iter().any(|t| t.1.iter().product::<usize>() != c) {
                return None;
            }
            Box::new(BatchNormK {
                dims: (x[0], c, x[2..].iter().product()),
                eps: b.epsilon,
            })
        }
        _ => return None,
    })
}

/// Layer norm over rows of `cols` (`skip`: of the sum of the first two inputs).
#[derive(Debug)]
struct LayerNormK {
    /// Normalized length.
    cols: usize,
    /// Residual input present.
    skip: bool,
    /// Scale input present.
    scale: bool,
    /// Bias input present.
    bias: bool,
    eps: f32,
}

fn layer_norm(l: &kayak_ir::ops::LayerNorm, skip: bool, ins: &[Ty<'_>]) -> Option<LayerNormK> {
    if !all_f32(ins) {
        return None;
    }
    let x = ins[0].1;
    if l.begin_norm_axis > x.len() {
        return None;
    }
    let cols: usize = x[l.begin_norm_axis..].iter().product();
    let first_param = 1 + skip as usize;
    if (skip && ins.get(1)?.1 != x)
        || ins.len() != first_param + usize::from(l.has_scale) + usize::from(l.has_bias)
    {
        return None;
    }
    if ins[first_param..]
        .iter()
        .any(|t| t.1.iter().product::<usize>() != cols)
    {
        return None;
    }
    Some(LayerNormK {
        cols,
        skip,
        scale: l.has_scale,
        bias: l.has_bias,
        eps: l.epsilon,
    })
}

impl CpuKernel for LayerNormK {
    fn name(&self) -> &'static str {
        "layer_norm"
    }
    fn in_place_inputs(&self) -> &'static [usize] {
        if self.skip {
            &[0, 1]
        } else {
            &[0]
        }
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let p0 = 1 + self.skip as usize;
        let s = self.scale.then(|| ins.f32(p0)).transpose()?;
        let b = self
            .bias
            .then(|| ins.f32(p0 + self.scale as usize))
            .transpose()?;
        let first = ins.src(0)?;
        let second = self.skip.then(|| ins.src(1)).transpose()?;
        let o = outs.f32(0)?;
        kops::skip_layer_norm(ins.pool(), self.cols, first, second, s, b, self.eps, o);
        Ok(())
    }
}

/// Inference batch norm over `[outer, c, inner]`.
#[derive(Debug)]
struct BatchNormK {
    /// (outer, channels, inner).
    dims: (usize, usize, usize),
    eps: f32,
}

impl CpuKernel for BatchNormK {
    fn name(&self) -> &'static str {
        "batch_norm"
    }
    fn in_place_inputs(&self) -> &'static [usize] {
        &[0]
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let p = (ins.f32(1)?, ins.f32(2)?, ins.f32(3)?, ins.f32(4)?);
        let x = ins.src(0)?;
        kops::batch_norm(ins.pool(), self.dims, x, p, self.eps, outs.f32(0)?);
        Ok(())
    }
}
