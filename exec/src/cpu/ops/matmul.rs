//! Matrix products on the CPU: `matmul` and `fused_matmul` (bias, activation, a weight
//! packed at load time), batched with broadcast batch dims.

use super::super::{all_f32, CpuKernel, Ins, Outs, Ty};
use super::elementwise::act_of;
use crate::Result;
use kayak_ir::ops::UnaryOp;
use kayak_ir::{Op, Tensor};
use kayak_kernels::gemm::{self, Epilogue, Gemm, Mat};
use kayak_kernels::Act;

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    _: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    let k = match op {
        Op::MatMul(m) => matmul(m, false, None, None, ins, outs[0])?,
        Op::FusedMatMul(f) => matmul(&f.mm, f.has_bias, f.act.as_ref(), f.packed, ins, outs[0])?,
        _ => return None,
    };
    Some(Box::new(k))
}

/// A batched product `out[b] = act(alpha · op(x[b]) · op(y[b]) + bias)`.
#[derive(Debug, Clone)]
struct MatMulK {
    /// One product's shape.
    g: Gemm,
    /// Number of products.
    batch: usize,
    /// Output batch dims (padded to 4).
    bdims: [usize; 4],
    /// Batch strides of x and y (0 where broadcast), elements.
    xs: [usize; 4],
    /// As `xs`, for y.
    ys: [usize; 4],
    /// Transposes.
    tx: bool,
    /// Transposes.
    ty: bool,
    /// Multiplier.
    alpha: f32,
    /// A bias input follows.
    bias: bool,
    /// Activation.
    act: Act,
    /// y is a constant packed by the load-time lowering (`crate::prepack`): every product
    /// reads the same packed `k × n` weight.
    packed: bool,
}

impl MatMulK {
    /// Offsets of product `t` into x, y and out.
    fn offsets(&self, t: usize) -> (usize, usize, usize) {
        let (mut rem, mut xo, mut yo) = (t, 0, 0);
        for k in (0..4).rev() {
            let i = rem % self.bdims[k];
            rem /= self.bdims[k];
            xo += i * self.xs[k];
            yo += i * self.ys[k];
        }
        (xo, yo, t * self.g.m * self.g.n)
    }
}

fn matmul(
    m: &kayak_ir::ops::MatMul,
    has_bias: bool,
    act: Option<&UnaryOp>,
    packed: Option<kayak_ir::ops::Packed>,
    ins: &[Ty<'_>],
    out: Ty<'_>,
) -> Option<MatMulK> {
    if !all_f32(ins) || ins.len() < 2 {
        return None;
    }
    let (x, o) = (ins[0].1, out.1);
    // A packed weight (`[⌈n/16⌉, k, 16]`) stands for a `k × n` matrix, in this GEMM's
    // strips only.
    let logical;
    let y = match packed {
        Some(p) if p.cols != gemm::PACK_COLS => return None,
        Some(kayak_ir::ops::Packed { n, .. }) => {
            logical = [ins[1].1.get(1).copied()?, n];
            &logical[..]
        }
        None => ins[1].1,
    };
    if x.len() < 2 || y.len() < 2 || o.len() < 2 || o.len() > 6 {
        return None;
    }
    let (mm, k) = if m.trans_x {
        (x[x.len() - 1], x[x.len() - 2])
    } else {
        (x[x.len() - 2], x[x.len() - 1])
    };
    let n = if m.trans_y {
        y[y.len() - 2]
    } else {
        y[y.len() - 1]
    };
    let ob = &o[..o.len() - 2];
    if ob.len() > 4 {
        return None;
    }
    let mut bdims = [1usize; 4];
    bdims[4 - ob.len()..].copy_from_slice(ob);
    let strides = |t: &[usize]| -> Option<[usize; 4]> {
        let tb = &t[..t.len() - 2];
        if tb.len() > ob.len() {
            return None;
        }
        let mut s = [0usize; 4];
        let mut run = t[t.len() - 1] * t[t.len() - 2];
        for (i, &d) in tb.iter().enumerate().rev() {
            let k = 4 - tb.len() + i;
            s[k] = if d == 1 { 0 } else { run };
            if d != 1 && d != bdims[k] {
                return None;
            }
            run *= d;
        }
        Some(s)
    };
    let (xs, ys) = (strides(x)?, strides(y)?);
    Some(MatMulK {
        g: Gemm { m: mm, n, k },
        batch: ob.iter().product(),
        bdims,
        xs,
        ys,
        tx: m.trans_x,
        ty: m.trans_y,
        alpha: m.alpha,
        bias: has_bias,
        act: act.map_or(Act::Identity, act_of),
        packed: packed.is_some(),
    })
}

impl CpuKernel for MatMulK {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn flops(&self) -> usize {
        2 * self.batch * self.g.m * self.g.n * self.g.k
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let pool = ins.pool();
        let (x, y) = (ins.f32(0)?, ins.f32(1)?);
        let g = self.g;
        let ep = Epilogue {
            alpha: self.alpha,
            col_bias: self.bias.then(|| ins.f32(2)).transpose()?,
            act: self.act,
            ..Epilogue::default()
        };
        let c = outs.f32(0)?;
        if self.packed {
            if !self.tx {
                // x's products are contiguous and all read the one weight: one product of
                // all their rows.
                let g = Gemm {
                    m: self.batch * g.m,
                    ..g
                };
                gemm::sgemm_packed(pool, g, Mat::rows(x, g.k), y, c, g.n, &ep);
            } else {
                for t in 0..self.batch {
                    let (xo, _, co) = self.offsets(t);
                    let a = Mat::rows(&x[xo..], g.m).t();
                    gemm::sgemm_packed(pool, g, a, y, &mut c[co..], g.n, &ep);
                }
            }
            return Ok(());
        }
        let a = if self.tx {
            Mat::rows(x, g.m).t()
        } else {
            Mat::rows(x, g.k)
        };
        let b = if self.ty {
            Mat::rows(y, g.k).t()
        } else {
            Mat::rows(y, g.n)
        };
        gemm::sgemm_batch(pool, g, self.batch, &|t| self.offsets(t), a, b, c, g.n, &ep);
        Ok(())
    }
}
