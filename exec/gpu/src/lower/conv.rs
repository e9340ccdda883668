//! Convolutions (NCHW): a pointwise or im2col convolution as one batched GEMM with its
//! epilogue in place, otherwise the direct kernel with the epilogue fused; transposed
//! convolutions by gathering.

use super::template::{fill, lit};
use super::{act_expr, kernel, nchw_conv_shapes, shape, DevOp, Operand};
use kayak_gpu::{Gemm, Param};
use kayak_ir::ops::{ConvTranspose, FusedConv, Layout};
use kayak_ir::Graph;

/// One thread per element of the patch matrix `[batch][ic·kh·kw][oh·ow]`.
const IM2COL: &str = include_str!("../cu/im2col.cu");
/// A convolution's epilogue in place on a GEMM's product.
const CONV_EPILOGUE: &str = include_str!("../cu/conv_epilogue.cu");
/// The direct convolution, its epilogue fused.
const CONV_DIRECT: &str = include_str!("../cu/conv_direct.cu");
/// The transposed convolution, gathering.
const CONV_TRANSPOSE: &str = include_str!("../cu/conv_transpose.cu");

/// The most scratch an im2col convolution may take; bigger ones run the direct kernel.
const IM2COL_LIMIT: usize = 64 << 20;

/// A direct convolution, NCHW, one thread per output element, with the fused epilogue:
/// bias, residual, activation, post affine, in that order.
pub(super) fn conv(g: &Graph, k: usize, f: &FusedConv) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let c = &f.conv;
    if c.layout != Layout::Nchw {
        return None;
    }
    let (xs, ws, os) = nchw_conv_shapes(g, k)?;
    let [_, cin, h, w] = xs;
    let [oc, icg, kh, kw] = ws;
    let [_, _, oh, ow] = os;
    let (pads, dil) = c.padding.resolve([h, w], [kh, kw], c.strides, c.dilations);
    let ocg = oc / c.groups.max(1);
    let n: usize = os.iter().product();
    // The direct kernel takes (out, x, w) and then the epilogue's operands.
    let ep = conv_epilogue(g, k, f, 3)?;
    let direct_params = [vec![Param::Out, Param::In, Param::In], ep.params.clone()].concat();
    let direct_args = [
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
            Operand::Value(node.inputs[1]),
        ],
        ep.args.clone(),
    ]
    .concat();
    let epilogue = ep.code;
    if cin != icg * c.groups || ocg * c.groups != oc {
        return None;
    }
    let pointwise = kh == 1 && kw == 1 && c.strides == [1, 1] && pads == [0; 4];
    let (ohw, rows) = (oh * ow, icg * kh * kw);
    let col_floats = xs[0] * rows * ohw;
    if c.groups == 1 && (pointwise || 4 * col_floats <= IM2COL_LIMIT) {
        // Per image, W [oc × ic·kh·kw] · X [ic·kh·kw × oh·ow] by one batched GEMM (X is
        // the input itself for a pointwise conv, else its patches gathered by im2col),
        // then the epilogue in place.
        let mut ops = Vec::new();
        let cols = if pointwise {
            Operand::Value(node.inputs[0])
        } else {
            let col = Operand::ScratchOf(0, col_floats);
            ops.push(kernel(
                vec![Param::Out, Param::In],
                fill(
                    IM2COL,
                    &[
                        ("col_floats", col_floats.into()),
                        ("ohw", ohw.into()),
                        ("rows", rows.into()),
                        ("ow", ow.into()),
                        ("kw", kw.into()),
                        ("kh", kh.into()),
                        ("khw", (kh * kw).into()),
                        ("sh", c.strides[0].into()),
                        ("sw", c.strides[1].into()),
                        ("pt", pads[0].into()),
                        ("pl", pads[2].into()),
                        ("dh", dil[0].into()),
                        ("dw", dil[1].into()),
                        ("h", h.into()),
                        ("w", w.into()),
                        ("cin", cin.into()),
                    ],
                )?,
                col_floats,
                vec![col.clone(), Operand::Value(node.inputs[0])],
            ));
            col
        };
        ops.push(DevOp::Gemm {
            gemm: Gemm {
                m: oc,
                n: ohw,
                k: rows,
                trans_a: false,
                trans_b: false,
                a: 0,
                lda: rows,
                b: 0,
                ldb: ohw,
                c: 0,
                ldc: ohw,
                alpha: 1.0,
                beta: 0.0,
                batch: xs[0],
                stride_a: 0,
                stride_b: rows * ohw,
                stride_c: oc * ohw,
            },
            a: Operand::Value(node.inputs[1]),
            b: cols,
            c: Operand::Value(node.outputs[0]),
        });
        if !epilogue.is_empty() {
            // The epilogue in place on the product, its operands from parameter 1 on.
            let ep = conv_epilogue(g, k, f, 1)?;
            ops.push(kernel(
                [vec![Param::Out], ep.params].concat(),
                fill(
                    CONV_EPILOGUE,
                    &[
                        ("n", n.into()),
                        ("ohw", ohw.into()),
                        ("oc", oc.into()),
                        ("epilogue", ep.code.into()),
                    ],
                )?,
                n,
                [vec![Operand::Value(node.outputs[0])], ep.args].concat(),
            ));
        }
        return Some(ops);
    }
    let body = fill(
        CONV_DIRECT,
        &[
            ("n", n.into()),
            ("ow", ow.into()),
            ("oh", oh.into()),
            ("oc", oc.into()),
            ("ocg", ocg.into()),
            ("icg", icg.into()),
            ("cin", cin.into()),
            ("hw", (h * w).into()),
            ("khw", (kh * kw).into()),
            ("kh", kh.into()),
            ("kw", kw.into()),
            ("sh", c.strides[0].into()),
            ("sw", c.strides[1].into()),
            ("pt", pads[0].into()),
            ("pl", pads[2].into()),
            ("dh", dil[0].into()),
            ("dw", dil[1].into()),
            ("h", h.into()),
            ("w", w.into()),
            ("epilogue", epilogue.into()),
        ],
    )?;
    Some(vec![kernel(direct_params, body, n, direct_args)])
}

/// Kernel code that takes `v` (output element `i`, channel `oc`) through an epilogue, and
/// the parameters it reads, numbered from `first`.
struct EpilogueCode {
    params: Vec<Param>,
    args: Vec<Operand>,
    code: String,
}

/// A fused convolution's epilogue: bias, residual, activation, post affine, in that order.
fn conv_epilogue(g: &Graph, k: usize, f: &FusedConv, first: usize) -> Option<EpilogueCode> {
    let node = &g.nodes[k];
    let mut e = EpilogueCode {
        params: Vec::new(),
        args: Vec::new(),
        code: String::new(),
    };
    let mut next = 2;
    if f.conv.has_bias {
        e.params.push(Param::In);
        e.args.push(Operand::Value(*node.inputs.get(next)?));
        e.code
            .push_str(&format!("v += p{}[oc];\n", first + e.params.len() - 1));
        next += 1;
    }
    if f.residual {
        let r = *node.inputs.get(next)?;
        if shape(g, r)? != shape(g, node.outputs[0])? {
            return None;
        }
        e.params.push(Param::In);
        e.args.push(Operand::Value(r));
        e.code
            .push_str(&format!("v += p{}[i];\n", first + e.params.len() - 1));
    }
    if let Some(a) = &f.act {
        e.code.push_str(&format!("v = {};\n", act_expr(a, "v")?));
    }
    if let Some((s, t)) = f.post {
        e.code
            .push_str(&format!("v = {} * v + {};\n", lit(s), lit(t)));
    }
    Some(e)
}

/// A transposed convolution (NCHW), one thread per output element gathering the input
/// pixels that the scatter form would add into it: `oy = iy·stride + ky·dilation − pad`.
pub(super) fn conv_transpose(g: &Graph, k: usize, c: &ConvTranspose) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    if c.layout != Layout::Nchw {
        return None;
    }
    let (xs, ws, os) = nchw_conv_shapes(g, k)?;
    if c.groups == 0 {
        return None;
    }
    let (ci, h, w) = (xs[1], xs[2], xs[3]);
    let (ocg, kh, kw) = (ws[1], ws[2], ws[3]);
    let icg = ci / c.groups;
    let oc = ocg * c.groups;
    if ws[0] != ci || icg * c.groups != ci || os[1] != oc {
        return None;
    }
    let (oh, ow) = (os[2], os[3]);
    let (pads, dil) = c.padding.resolve([h, w], [kh, kw], c.strides, c.dilations);
    let n: usize = os.iter().product();
    let mut params = vec![Param::Out, Param::In, Param::In];
    let mut args = vec![
        Operand::Value(node.outputs[0]),
        Operand::Value(node.inputs[0]),
        Operand::Value(node.inputs[1]),
    ];
    let mut bias = "";
    if c.has_bias {
        params.push(Param::In);
        args.push(Operand::Value(*node.inputs.get(2)?));
        bias = "acc += p3[oc];";
    }
    let body = fill(
        CONV_TRANSPOSE,
        &[
            ("n", n.into()),
            ("ow", ow.into()),
            ("oh", oh.into()),
            ("oc", oc.into()),
            ("ocg", ocg.into()),
            ("kh", kh.into()),
            ("kw", kw.into()),
            ("pt", pads[0].into()),
            ("pl", pads[2].into()),
            ("dh", dil[0].into()),
            ("dw", dil[1].into()),
            ("sh", c.strides[0].into()),
            ("sw", c.strides[1].into()),
            ("h", h.into()),
            ("w", w.into()),
            ("icg", icg.into()),
            ("ci", ci.into()),
            ("bias", bias.into()),
        ],
    )?;
    Some(vec![kernel(params, body, n, args)])
}
