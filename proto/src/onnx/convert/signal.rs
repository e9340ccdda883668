//! Signal windows as constants: `HannWindow`, `HammingWindow`, `BlackmanWindow` (cosine
//! sums over `[0, size)`, periodic or symmetric), folded at import.

use super::index::Emit;
use super::*;

/// The cosine-sum window `a₀ − a₁·cos(2πn/N) + a₂·cos(4πn/N)`, `N` = size (periodic) or
/// size − 1 (symmetric).
pub(super) fn window(c: &NodeCtx<'_>, a: [f64; 3]) -> Result<Vec<Converted>> {
    let size = c
        .const_scalar(0, "size")?
        .ok_or_else(|| c.bad("size", "missing"))?;
    if !(0.0..=(1u64 << 31) as f64).contains(&size) || size.fract() != 0.0 {
        return Err(c.bad("size", format!("{size}")));
    }
    let to = super::super::tensor::dtype(c.int_or("output_datatype", 1)? as i32)
        .map_err(|t| c.unsupported(format!("`{}` as {t}", c.node.op_type)))?;
    let periodic = c.int_or("periodic", 1)? != 0;
    let n = if periodic {
        size
    } else {
        (size - 1.0).max(1.0)
    };
    let mut e = Emit::new(c);
    let (s0, s1, st) = (
        e.scalar(0.0, DType::F32),
        e.scalar(size, DType::F32),
        e.scalar(1.0, DType::F32),
    );
    let idx = e.op(Op::Range(Range {}), vec![s0, s1, st]);
    let term = |e: &mut Emit<'_, '_>, k: f64, coef: f64| {
        let ang = e.op(
            scale((2.0 * k * std::f64::consts::PI / n) as f32, 0.0),
            vec![idx.clone()],
        );
        let cos = e.op(Op::Unary(UnaryOp::Cos), vec![ang]);
        e.op(scale(coef as f32, 0.0), vec![cos])
    };
    let t1 = term(&mut e, 1.0, -a[1]);
    let mut w = e.op(scale(1.0, a[0] as f32), vec![t1]);
    if a[2] != 0.0 {
        let t2 = term(&mut e, 2.0, a[2]);
        w = e.op(bin(BinaryOp::Add), vec![w, t2]);
    }
    Ok(e.last(Op::Cast(Cast { to }), vec![w], c.output(0)))
}
