//! Loss ops as the ops every format shares: `NegativeLogLikelihoodLoss` (a gather of each
//! target's score, class weights, an ignored index masked out, the reduction) and
//! `SoftmaxCrossEntropyLoss` (a log-softmax over the classes, then the same).

use super::*;

/// `NegativeLogLikelihoodLoss(input [N, C, d…], target [N, d…], weight [C]?)`.
pub(super) fn nll_loss(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    nll(c, c.req(0)?, Vec::new())
}

/// `SoftmaxCrossEntropyLoss(scores [N, C, d…], labels [N, d…], weights [C]?)`; output 1,
/// when present, is the log-probabilities.
pub(super) fn softmax_cross_entropy(c: &NodeCtx<'_>) -> Result<Vec<Converted>> {
    let lp = match c.output(1) {
        o if o.is_empty() => c.tmp(),
        o => o,
    };
    let v = log_softmax_over(c, c.req(0)?, &[1], lp.clone());
    nll(c, lp, v)
}

/// The loss of the log-probabilities `lp` (whose classes are axis 1), after the ops in `v`.
fn nll(c: &NodeCtx<'_>, lp: String, mut v: Vec<Converted>) -> Result<Vec<Converted>> {
    if c.need_rank(0)? < 2 {
        return Err(c.bad("input", "the scores need a class axis (rank 2 or more)"));
    }
    let reduction = c.str_or("reduction", "mean")?;
    if !matches!(reduction.as_str(), "none" | "sum" | "mean") {
        return Err(c.bad("reduction", format!("`{reduction}` (none, sum or mean)")));
    }
    let target = c.req(1)?;
    let ty = |n: &str| {
        c.scope.type_of(n).map(|t| t.dtype).ok_or_else(|| {
            c.unsupported(format!("`{}` on a value of unknown type", c.node.op_type))
        })
    };
    let (fdt, tdt) = (ty(&c.req(0)?)?, ty(&target)?);
    let mut add = |op: Op, ins: Vec<String>| {
        let out = c.tmp();
        v.push(conv_op(op, ins, out.clone()));
        out
    };
    // [N, 1, d…]: the target of each position, as an index along the class axis.
    let mut t = add(Op::Unsqueeze(Unsqueeze { axes: vec![1] }), vec![target]);
    let mut mask = None;
    if let Some(ii) = c.int("ignore_index")? {
        let iic = add(scalar(ii as f64, tdt), vec![]);
        let m = add(
            Op::Compare(Compare {
                op: CmpOp::Ne,
                axis: -1,
            }),
            vec![t.clone(), iic],
        );
        let zero = add(scalar(0.0, tdt), vec![]);
        // An ignored position reads class 0 (any valid index): its weight is zero.
        t = add(Op::Where(Where), vec![m.clone(), t, zero]);
        mask = Some(m);
    }
    let picked = add(
        Op::GatherElements(GatherElements { axis: 1 }),
        vec![lp, t.clone()],
    );
    // The class weight of each position: a gather by the flattened targets, reshaped back.
    let mut w = None;
    if let Some(weight) = c.input(2) {
        let reshape = |shape_input| {
            Op::Reshape(Reshape {
                shape: vec![-1],
                shape_input,
            })
        };
        let flat = add(reshape(ListInput::Attr), vec![t.clone()]);
        let wf = add(Op::Gather(Gather { axis: 0 }), vec![weight, flat]);
        let shape = add(Op::Shape(ShapeOf { i64: true }), vec![t]);
        w = Some(add(reshape(ListInput::Tensor), vec![wf, shape]));
    }
    if let Some(m) = mask {
        w = Some(match w {
            Some(w) => {
                let zero = add(scalar(0.0, fdt), vec![]);
                add(Op::Where(Where), vec![m, w, zero])
            }
            None => add(Op::Cast(Cast { to: fdt }), vec![m]),
        });
    }
    let weighted = match &w {
        Some(w) => add(bin(BinaryOp::Mul), vec![picked, w.clone()]),
        None => picked,
    };
    let neg = add(scale(-1.0, 0.0), vec![weighted]);
    let squeeze = Op::Squeeze(Squeeze { axes: vec![1] });
    let out = c.output(0);
    match (reduction.as_str(), w) {
        ("none", _) => v.push(conv_op(squeeze, vec![neg], out)),
        ("sum", _) => v.push(conv_op(
            reduce_over(ReduceKind::Sum, vec![], false),
            vec![neg],
            out,
        )),
        (_, None) => v.push(conv_op(
            reduce_over(ReduceKind::Mean, vec![], false),
            vec![neg],
            out,
        )),
        // The weighted mean: Σ loss / Σ weight of the positions not ignored.
        (_, Some(w)) => {
            let (s, ws) = (c.tmp(), c.tmp());
            v.push(conv_op(
                reduce_over(ReduceKind::Sum, vec![], false),
                vec![neg],
                s.clone(),
            ));
            v.push(conv_op(
                reduce_over(ReduceKind::Sum, vec![], false),
                vec![w],
                ws.clone(),
            ));
            v.push(conv_op(bin(BinaryOp::Div), vec![s, ws], out));
        }
    }
    Ok(v)
}
