//! Data movement on the device: gathers through index tables probed from the reference
//! ops (transposes, slices, splits, concatenations, nearest resizes), and bilinear
//! resizes from the reference op's taps.

use super::template::fill;
use super::{kernel, shape, DevOp, Operand};
use kayak_gpu::Param;
use kayak_ir::ops::{BilinearTap, InferInput, Interp, Layout};
use kayak_ir::{Graph, Op};

/// A gather: `find` sets `j`, the input element output `i` copies; `pick` copies it from
/// the data input it lies in.
const GATHER: &str = include_str!("../cu/gather.cu");
/// A bilinear resize from per-row and per-column taps.
const BILINEAR: &str = include_str!("../cu/bilinear.cu");

/// Data movement (transposes, slices, splits, concatenations, nearest resizes) as a gather
/// per output: the index of the input element each output element copies, found by running
/// the reference op on index tensors (the data inputs numbered one after another).
pub(super) fn gather(g: &Graph, k: usize) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let data: Vec<usize> = match node.op {
        Op::Concat(_) | Op::Stack(_) => (0..node.inputs.len()).collect(),
        _ => vec![0],
    };
    let mut bases = Vec::new();
    let mut total = 0usize;
    let mut shapes = Vec::new();
    for (i, &v) in node.inputs.iter().enumerate() {
        if data.contains(&i) {
            if g.const_value(v).is_some() {
                return None;
            }
            shapes.push(shape(g, v)?);
            bases.push(total);
            total += shapes.last()?.iter().product::<usize>();
        }
    }
    let mut data_shapes = shapes.iter();
    let probe_ins: Vec<kayak_exec::gather::ProbeInput<'_>> = node
        .inputs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            Some(if data.contains(&i) {
                kayak_exec::gather::ProbeInput::Data(data_shapes.next()?)
            } else {
                kayak_exec::gather::ProbeInput::Param(g.const_value(v)?)
            })
        })
        .collect::<Option<_>>()?;
    let results = kayak_exec::gather::probe(&node.op, &probe_ins)?;
    if results.len() != node.outputs.len() {
        return None;
    }
    let mut ops = Vec::new();
    for ((rshape, idx), &o) in results.iter().zip(&node.outputs) {
        if rshape.as_slice() != shape(g, o)?.as_slice() {
            return None;
        }
        let n = idx.len();
        let os = shape(g, o)?;
        // Separable (transposes, slices, resizes): one small table per axis, summed;
        // otherwise (concatenations) a table as large as the output.
        let (table, find) = match kayak_exec::gather::separable(idx, &os) {
            Some(tables) => {
                let mut flat = Vec::new();
                let mut code = String::from("int rem = i; int j = 0;\n");
                for (ax, t) in tables.iter().enumerate().rev() {
                    code.push_str(&format!(
                        "j += p1[{} + rem % {}]; rem /= {};\n",
                        flat.len(),
                        os[ax],
                        os[ax]
                    ));
                    flat.extend(t.iter().map(|&v| v as i32));
                }
                (flat, code)
            }
            None => (
                idx.iter().map(|&j| j as i32).collect(),
                "int j = p1[i];\n".to_string(),
            ),
        };
        let mut params = vec![Param::Out, Param::Idx];
        let mut args = vec![Operand::Value(o), Operand::Table(table)];
        let mut pick = String::new();
        for (d, (&i, &base)) in data.iter().zip(&bases).enumerate() {
            params.push(Param::In);
            args.push(Operand::Value(node.inputs[i]));
            let p = params.len() - 1;
            let end = bases.get(d + 1).copied().unwrap_or(total);
            pick.push_str(&format!(
                "if (j >= {base} && j < {end}) {{ p0[i] = p{p}[j - {base}]; return; }}\n"
            ));
        }
        ops.push(kernel(
            params,
            fill(
                GATHER,
                &[
                    ("n", n.into()),
                    ("find", find.into()),
                    ("pick", pick.into()),
                ],
            )?,
            n,
            args,
        ));
    }
    Some(ops)
}

/// Bilinear resizing (NCHW), one thread per output element, from the reference op's own
/// taps (`Interp::bilinear_plan`): per output row and column, two source indices and two
/// weights, held with the weights.
pub(super) fn bilinear(g: &Graph, k: usize, i: &Interp) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    if i.layout != Layout::Nchw {
        return None;
    }
    let xs = shape(g, node.inputs[0])?;
    let os = shape(g, node.outputs[0])?;
    if xs.len() != 4 || os.len() != 4 {
        return None;
    }
    let ins: Vec<InferInput<'_>> = node
        .inputs
        .iter()
        .map(|&v| InferInput {
            ty: &g.values[v].ty,
            value: g.const_value(v),
        })
        .collect();
    let ([oh, ow], ty, tx) = i.bilinear_plan(&ins, xs[2], xs[3]).ok()?;
    if [oh, ow] != [os[2], os[3]] {
        return None;
    }
    let idx = |t: &[BilinearTap]| -> Vec<i32> {
        t.iter()
            .flat_map(|&(lo, hi, _, _)| [lo as i32, hi as i32])
            .collect()
    };
    let wts =
        |t: &[BilinearTap]| -> Vec<f32> { t.iter().flat_map(|&(_, _, a, b)| [a, b]).collect() };
    let n: usize = os.iter().product();
    let (ih, iw) = (xs[2], xs[3]);
    Some(vec![kernel(
        vec![
            Param::Out,
            Param::In,
            Param::Idx,
            Param::In,
            Param::Idx,
            Param::In,
        ],
        fill(
            BILINEAR,
            &[
                ("n", n.into()),
                ("ow", ow.into()),
                ("oh", oh.into()),
                ("ihw", (ih * iw).into()),
                ("iw", iw.into()),
            ],
        )?,
        n,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
            Operand::Table(idx(&ty)),
            Operand::FTable(wts(&ty)),
            Operand::Table(idx(&tx)),
            Operand::FTable(wts(&tx)),
        ],
    )])
}
