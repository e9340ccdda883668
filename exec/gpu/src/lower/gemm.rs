//! Products by GEMM: matmul (batched or with the batch folded into rows) and Paddle's
//! `mul` and `fc` (operands flattened to 2-D), each with its bias and activation in place
//! after the product.

use super::template::fill;
use super::{act_expr, kernel, shape, DevOp, Operand};
use kayak_gpu::{Gemm, Param};
use kayak_ir::ops::{MatMul, UnaryOp};
use kayak_ir::{Graph, ValueId};

/// A GEMM's epilogue in place: the bias (a statement, or nothing), then the activation.
const GEMM_EPILOGUE: &str = include_str!("../cu/gemm_epilogue.cu");

/// A GEMM's epilogue in place on its `rows × cols` output: the bias along the columns,
/// then the activation (`act` a C expression of `v`). No kernel (`Some(None)`) when there
/// is neither; `None` when the template and its values do not match.
fn gemm_epilogue(
    out: ValueId,
    bias: Option<ValueId>,
    cols: usize,
    act: Option<String>,
    n: usize,
) -> Option<Option<DevOp>> {
    if bias.is_none() && act.is_none() {
        return Some(None);
    }
    let mut params = vec![Param::Out];
    let mut args = vec![Operand::Value(out)];
    let mut bias_code = String::new();
    if let Some(b) = bias {
        params.push(Param::In);
        args.push(Operand::Value(b));
        bias_code = format!("v += p1[i % {cols}];\n");
    }
    let body = fill(
        GEMM_EPILOGUE,
        &[
            ("n", n.into()),
            ("bias", bias_code.into()),
            ("act", act.unwrap_or_else(|| "v".into()).into()),
        ],
    )?;
    Some(Some(kernel(params, body, n, args)))
}

/// `alpha · op(x) · op(y)` by GEMM (one call: `y` 2-D with its batch folded into rows, or
/// equal batches), then the bias and activation in place.
pub(super) fn matmul(
    g: &Graph,
    k: usize,
    m: &MatMul,
    has_bias: bool,
    act: Option<&UnaryOp>,
) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let (xs, ys, os) = (
        shape(g, node.inputs[0])?,
        shape(g, node.inputs[1])?,
        shape(g, node.outputs[0])?,
    );
    if xs.len() < 2 || ys.len() < 2 || os.len() < 2 {
        return None;
    }
    let (xr, xc) = (xs[xs.len() - 2], xs[xs.len() - 1]);
    let (yr, yc) = (ys[ys.len() - 2], ys[ys.len() - 1]);
    let (rows, kk) = if m.trans_x { (xc, xr) } else { (xr, xc) };
    let (k2, cols) = if m.trans_y { (yc, yr) } else { (yr, yc) };
    if kk != k2 || os[os.len() - 1] != cols || os[os.len() - 2] != rows {
        return None;
    }
    let xb: usize = xs[..xs.len() - 2].iter().product();
    let yb: usize = ys[..ys.len() - 2].iter().product();
    let ob: usize = os[..os.len() - 2].iter().product();
    let mut gm = Gemm {
        m: rows,
        n: cols,
        k: kk,
        trans_a: m.trans_x,
        trans_b: m.trans_y,
        a: 0,
        lda: xc,
        b: 0,
        ldb: yc,
        c: 0,
        ldc: cols,
        alpha: m.alpha,
        beta: 0.0,
        batch: ob,
        stride_a: xr * xc,
        stride_b: yr * yc,
        stride_c: rows * cols,
    };
    if ys.len() == 2 && !m.trans_x {
        // One product with every batch item's rows stacked.
        gm.m = rows * xb;
        gm.batch = 1;
        if ob != xb {
            return None;
        }
    } else if yb == 1 && xb == ob {
        gm.stride_b = 0;
    } else if xb == 1 && yb == ob {
        gm.stride_a = 0;
    } else if !(xb == ob && yb == ob && xs[..xs.len() - 2] == ys[..ys.len() - 2]) {
        return None;
    }
    let mut ops = vec![DevOp::Gemm {
        gemm: gm,
        a: Operand::Value(node.inputs[0]),
        b: Operand::Value(node.inputs[1]),
        c: Operand::Value(node.outputs[0]),
    }];
    let n: usize = os.iter().product();
    let bias = if has_bias {
        let b = *node.inputs.get(2)?;
        if shape(g, b)?.iter().product::<usize>() != cols {
            return None;
        }
        Some(b)
    } else {
        None
    };
    let act = match act {
        Some(a) => Some(act_expr(a, "v")?),
        None => None,
    };
    ops.extend(gemm_epilogue(node.outputs[0], bias, cols, act, n)?);
    Some(ops)
}

/// Paddle's `mul` and `fc`: `x` flattened to 2-D at `xn` axes, `y` at `yn`, one GEMM, then
/// (fc) the bias and relu in place.
pub(super) fn flat_product(
    g: &Graph,
    k: usize,
    xn: usize,
    yn: usize,
    has_bias: bool,
    relu: bool,
) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let (xs, ys) = (shape(g, node.inputs[0])?, shape(g, node.inputs[1])?);
    if xn == 0 || yn == 0 || xn > xs.len() || yn > ys.len() {
        return None;
    }
    let m: usize = xs[..xn].iter().product();
    let kk: usize = xs[xn..].iter().product();
    let n: usize = ys[yn..].iter().product();
    if ys[..yn].iter().product::<usize>() != kk
        || shape(g, node.outputs[0])?.iter().product::<usize>() != m * n
    {
        return None;
    }
    let mut ops = vec![DevOp::Gemm {
        gemm: Gemm {
            m,
            n,
            k: kk,
            trans_a: false,
            trans_b: false,
            a: 0,
            lda: kk,
            b: 0,
            ldb: n,
            c: 0,
            ldc: n,
            alpha: 1.0,
            beta: 0.0,
            batch: 1,
            stride_a: 0,
            stride_b: 0,
            stride_c: 0,
        },
        a: Operand::Value(node.inputs[0]),
        b: Operand::Value(node.inputs[1]),
        c: Operand::Value(node.outputs[0]),
    }];
    let bias = if has_bias {
        let b = *node.inputs.get(2)?;
        if shape(g, b)?.iter().product::<usize>() != n {
            return None;
        }
        Some(b)
    } else {
        None
    };
    let act = relu.then(|| act_expr(&UnaryOp::Relu, "v")).flatten();
    ops.extend(gemm_epilogue(node.outputs[0], bias, n, act, m * n)?);
    Some(ops)
}
