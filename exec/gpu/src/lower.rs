//! Lowering one node of a concrete graph to device work: CUDA C kernels generated for its
//! exact shapes and attributes, or a GEMM plus an epilogue kernel. [`lower`] answering
//! `None` is what "no device kernel" means: the node runs on the host.
//!
//! Every kernel runs one thread per output element (or per row, for reductions), with
//! shapes and attributes as literals; arithmetic is f32, as on the GPU. The kernels are
//! checked against the reference ops on random cases through the emulator
//! (`tests/tests/gpu_exec.rs`).

use kayak_gpu::{Gemm, LaunchDims, Param};
use kayak_ir::ops::{Binary, Prelu};
use kayak_ir::ops::{
    BinaryOp, FusedConv, InterpMode, Layout, Pool, PoolKind, PreluMode, ReduceKind, UnaryOp,
};
use kayak_ir::{DType, Graph, Op, Tensor, ValueId};

/// Device helper functions every module carries.
pub const HELPERS: &str = r#"
__device__ __forceinline__ float kayak_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }
"#;

/// A kernel argument before addresses are known.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A value of the graph (a weight, or a tensor on the device).
    Value(ValueId),
    /// An index table, held on the device with the weights.
    Table(Vec<i32>),
    /// A table of floats (interpolation weights), held with the weights.
    FTable(Vec<f32>),
    /// Scratch floats shared by the node's kernels, by id.
    ScratchOf(usize, usize),
    /// An `int`.
    I32(i32),
    /// A `float`.
    F32(f32),
}

/// One piece of a node's device work.
#[derive(Debug, Clone, PartialEq)]
pub enum DevOp {
    /// Nothing to run: the output aliases the input (a view).
    View,
    /// A kernel launch.
    Kernel {
        /// Its parameters.
        params: Vec<Param>,
        /// Its body.
        body: String,
        /// Grid and block.
        dims: LaunchDims,
        /// Its arguments.
        args: Vec<Operand>,
    },
    /// A GEMM; the addresses in `gemm` are byte offsets added to its operands'.
    Gemm {
        /// Shapes, strides, flags.
        gemm: Gemm,
        /// `A`.
        a: Operand,
        /// `B`.
        b: Operand,
        /// `C`.
        c: Operand,
    },
}

/// A C float literal.
fn lit(x: f32) -> String {
    if x.is_nan() {
        "(0.0f/0.0f)".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "(1.0f/0.0f)".into()
        } else {
            "(-1.0f/0.0f)".into()
        }
    } else {
        format!("({:?}f)", x)
    }
}

/// The activation as a C expression of `v`; `None` for ops no kernel computes.
pub fn act_expr(u: &UnaryOp, v: &str) -> Option<String> {
    Some(match *u {
        UnaryOp::Relu => format!("fmaxf({v}, 0.0f)"),
        UnaryOp::Relu6 { threshold } => format!("fminf(fmaxf({v}, 0.0f), {})", lit(threshold)),
        UnaryOp::LeakyRelu { alpha } => format!("({v} > 0.0f ? {v} : {} * {v})", lit(alpha)),
        UnaryOp::HardSwish {
            threshold,
            scale,
            offset,
        } => format!(
            "({v} * fminf(fmaxf({v} + {}, 0.0f), {}) / {})",
            lit(offset),
            lit(threshold),
            lit(scale)
        ),
        UnaryOp::HardSigmoid { slope, offset } => format!(
            "fminf(fmaxf({} * {v} + {}, 0.0f), 1.0f)",
            lit(slope),
            lit(offset)
        ),
        UnaryOp::Sigmoid => format!("kayak_sigmoid({v})"),
        UnaryOp::Swish { beta } => format!("({v} * kayak_sigmoid({} * {v}))", lit(beta)),
        UnaryOp::Gelu { approximate: false } => {
            format!("(0.5f * {v} * (1.0f + erff({v} * 0.70710678118654752f)))")
        }
        UnaryOp::Gelu { approximate: true } => format!(
            "(0.5f * {v} * (1.0f + tanhf(0.79788456080286536f * ({v} + 0.044715f * {v} * {v} * {v}))))"
        ),
        UnaryOp::Tanh => format!("tanhf({v})"),
        UnaryOp::Exp => format!("expf({v})"),
        UnaryOp::Log => format!("logf({v})"),
        UnaryOp::Sqrt => format!("sqrtf({v})"),
        UnaryOp::Rsqrt => format!("rsqrtf({v})"),
        UnaryOp::Abs => format!("fabsf({v})"),
        UnaryOp::Square => format!("({v} * {v})"),
        UnaryOp::Reciprocal => format!("(1.0f / {v})"),
        UnaryOp::Floor => format!("floorf({v})"),
        UnaryOp::Ceil => format!("ceilf({v})"),
        UnaryOp::Erf => format!("erff({v})"),
        UnaryOp::PowScalar { factor } => format!("powf({v}, {})", lit(factor)),
        UnaryOp::Clip { min, max } => format!("fminf(fmaxf({v}, {}), {})", lit(min), lit(max)),
        UnaryOp::Scale {
            scale,
            bias,
            bias_after_scale,
        } => {
            if bias_after_scale {
                format!("({} * {v} + {})", lit(scale), lit(bias))
            } else {
                format!("({} * ({v} + {}))", lit(scale), lit(bias))
            }
        }
    })
}

fn bin_expr(op: BinaryOp, a: &str, b: &str) -> Option<String> {
    Some(match op {
        BinaryOp::Add => format!("({a} + {b})"),
        BinaryOp::Sub => format!("({a} - {b})"),
        BinaryOp::Mul => format!("({a} * {b})"),
        BinaryOp::Div => format!("({a} / {b})"),
        BinaryOp::Max => format!("fmaxf({a}, {b})"),
        BinaryOp::Min => format!("fminf({a}, {b})"),
        BinaryOp::Pow => format!("powf({a}, {b})"),
        BinaryOp::Mod | BinaryOp::FloorDiv => return None,
    })
}

/// The most scratch an im2col convolution may take; bigger ones run the direct kernel.
const IM2COL_LIMIT: usize = 64 << 20;

const THREAD: &str = "int i = blockIdx.x * blockDim.x + threadIdx.x;";

fn shape(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    g.values[v].ty.shape.to_known()
}

fn is_f32(g: &Graph, v: ValueId) -> bool {
    g.values[v].ty.dtype == DType::F32
}

fn kernel(params: Vec<Param>, body: String, n: usize, args: Vec<Operand>) -> DevOp {
    DevOp::Kernel {
        params,
        body,
        dims: LaunchDims::linear(n),
        args,
    }
}

/// The device work of node `k` of `g` (whose types are concrete), or `None` if it has no
/// device lowering (it then runs on the host).
pub fn lower(g: &Graph, k: usize) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    // Every tensor the device touches is f32 with a known shape. Views and data movement
    // also take parameters as constant tensors (shapes, starts, sizes) the host reads.
    let params_on_host = node.op.is_view()
        || matches!(
            node.op,
            Op::Transpose(_) | Op::Slice(_) | Op::StridedSlice(_) | Op::Split(_) | Op::Interp(_)
        );
    let touched: Vec<ValueId> = if params_on_host {
        let rest = node.inputs[1..].iter().all(|&v| g.const_value(v).is_some());
        if !rest {
            return None;
        }
        node.inputs[..1]
            .iter()
            .chain(&node.outputs)
            .copied()
            .collect()
    } else {
        node.inputs.iter().chain(&node.outputs).copied().collect()
    };
    for v in touched {
        if !is_f32(g, v) || shape(g, v).is_none() {
            return None;
        }
    }
    let out = node.outputs[0];
    let n_out: usize = shape(g, out)?.iter().product();
    if n_out == 0 || n_out >= i32::MAX as usize {
        return None;
    }
    let v = |i: usize| Operand::Value(node.inputs[i]);
    match &node.op {
        op if op.is_view() => {
            if g.const_value(node.inputs[0]).is_some() {
                // A view of a weight: copy it (the weight buffer is never aliased).
                return Some(vec![kernel(
                    vec![Param::Out, Param::In],
                    format!("{THREAD}\nif (i < {n_out}) p0[i] = p1[i];"),
                    n_out,
                    vec![Operand::Value(out), v(0)],
                )]);
            }
            Some(vec![DevOp::View])
        }
        Op::Unary(u) => {
            let e = act_expr(u, "p1[i]")?;
            Some(vec![kernel(
                vec![Param::Out, Param::In],
                format!("{THREAD}\nif (i < {n_out}) p0[i] = {e};"),
                n_out,
                vec![Operand::Value(out), v(0)],
            )])
        }
        Op::Binary(Binary { op, axis }) => binary(g, k, *op, *axis, None),
        Op::FusedBinary(f) => binary(g, k, f.op, f.axis, Some(&f.act)),
        Op::Conv2d(c) => conv(
            g,
            k,
            &FusedConv {
                conv: c.clone(),
                residual: false,
                act: None,
                post: None,
            },
        ),
        Op::FusedConv(f) => conv(g, k, f),
        Op::MatMul(m) => matmul(g, k, m, false, None),
        Op::FusedMatMul(f) if f.packed_n.is_none() => {
            matmul(g, k, &f.mm, f.has_bias, f.act.as_ref())
        }
        Op::Pool2d(p) => pool(g, k, p),
        Op::Mul(m) => flat_product(g, k, m.x_num_col_dims, m.y_num_col_dims, false, false),
        Op::Fc(f) => flat_product(g, k, f.in_num_col_dims, 1, f.has_bias, f.relu),
        Op::Softmax(s) => softmax(g, k, s.axis),
        Op::LayerNorm(l) => layer_norm(g, k, l, false),
        Op::SkipLayerNorm(s) => layer_norm(g, k, &s.ln, true),
        Op::SeBlock(s) => se_block(g, k, &s.act1, &s.act2),
        Op::Attention(a) => attention(g, k, a),
        Op::Conv2dTranspose(c) => conv_transpose(g, k, c),
        Op::BatchNorm(b) => batch_norm(g, k, b),
        Op::Reduce(r) => reduce(g, k, r),
        Op::Prelu(Prelu { mode, layout }) => prelu(g, k, *mode, *layout),
        Op::Transpose(_)
        | Op::Slice(_)
        | Op::StridedSlice(_)
        | Op::Split(_)
        | Op::Concat(_)
        | Op::Stack(_) => gather(g, k),
        Op::Interp(i) if i.mode == InterpMode::Nearest => gather(g, k),
        Op::Interp(i) => bilinear(g, k, i),
        _ => None,
    }
}

/// `out = act(x op y)` with Paddle's broadcast: same shapes index directly, a one-element
/// operand is read at 0, anything else through an index table per operand derived by
/// running the reference broadcast on index tensors.
fn binary(
    g: &Graph,
    k: usize,
    op: BinaryOp,
    axis: i64,
    act: Option<&UnaryOp>,
) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let (x, y, out) = (node.inputs[0], node.inputs[1], node.outputs[0]);
    let (xs, ys, os) = (shape(g, x)?, shape(g, y)?, shape(g, out)?);
    let n: usize = os.iter().product();
    let mut params = vec![Param::Out, Param::In, Param::In];
    let mut args = vec![Operand::Value(out), Operand::Value(x), Operand::Value(y)];
    let mut index = |s: &[usize], which: usize, p: usize| -> Option<String> {
        let len: usize = s.iter().product();
        if s == os.as_slice() {
            return Some("i".into());
        }
        if len == 1 {
            return Some("0".into());
        }
        // The table: run the broadcast on (iota, zeros) or (zeros, iota).
        let iota = Tensor::from_i64s(&(0..len as i64).collect::<Vec<_>>())
            .reshape(s)
            .ok()?;
        let other_shape = if which == 0 { &ys } else { &xs };
        let zeros = Tensor::zeros(DType::I64, other_shape);
        let ins = if which == 0 {
            [&iota, &zeros]
        } else {
            [&zeros, &iota]
        };
        let r = Op::Binary(Binary {
            op: BinaryOp::Add,
            axis,
        })
        .eval(&ins)
        .ok()?;
        if r.first()?.shape() != os.as_slice() {
            return None;
        }
        let t: Vec<i32> = r[0].to_i64_vec().iter().map(|&v| v as i32).collect();
        params.push(Param::Idx);
        args.push(Operand::Table(t));
        Some(format!("p{p}[i]"))
    };
    let xi = index(&xs, 0, 3)?;
    let yi = index(&ys, 1, if params_len_after_x(&xs, &os) { 4 } else { 3 })?;
    let mut e = bin_expr(op, &format!("p1[{xi}]"), &format!("p2[{yi}]"))?;
    if let Some(a) = act {
        e = act_expr(a, &format!("({e})"))?;
    }
    Some(vec![kernel(
        params,
        format!("{THREAD}\nif (i < {n}) p0[i] = {e};"),
        n,
        args,
    )])
}

/// Whether `x` of shape `xs` needs a table (and so takes parameter 3).
fn params_len_after_x(xs: &[usize], os: &[usize]) -> bool {
    xs != os && xs.iter().product::<usize>() != 1
}

/// A direct convolution, NCHW, one thread per output element, with the fused epilogue:
/// bias, residual, activation, post affine, in that order.
fn conv(g: &Graph, k: usize, f: &FusedConv) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let c = &f.conv;
    if c.layout != kayak_ir::ops::Layout::Nchw {
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
                format!(
                    "{THREAD}
if (i >= {col_floats}) return;
int j = i % {ohw}; int t = i / {ohw}; int r = t % {rows}; int b = t / {rows};
int ox = j % {ow}, oy = j / {ow};
int kx = r % {kw}, ky = (r / {kw}) % {kh}, ic = r / {khw};
int iy = oy * {sh} - {pt} + ky * {dh}, ix = ox * {sw} - {pl} + kx * {dw};
p0[i] = (iy >= 0 && iy < {h} && ix >= 0 && ix < {w})
    ? p1[((long long)(b * {cin} + ic) * {h} + iy) * {w} + ix] : 0.0f;",
                    khw = kh * kw,
                    sh = c.strides[0],
                    sw = c.strides[1],
                    pt = pads[0],
                    pl = pads[2],
                    dh = dil[0],
                    dw = dil[1],
                ),
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
                format!(
                    "{THREAD}\nif (i >= {n}) return;\nint oc = (i / {ohw}) % {oc};\n(void)oc;\nfloat v = p0[i];\n{}p0[i] = v;",
                    ep.code
                ),
                n,
                [vec![Operand::Value(node.outputs[0])], ep.args].concat(),
            ));
        }
        return Some(ops);
    }
    let body = format!(
        "{THREAD}
if (i >= {n}) return;
int ox = i % {ow}; int t = i / {ow}; int oy = t % {oh}; t /= {oh}; int oc = t % {oc}; int b = t / {oc};
int grp = oc / {ocg};
float acc = 0.0f;
for (int ic = 0; ic < {icg}; ic++) {{
  const float* xp = p1 + ((long long)(b * {cin} + grp * {icg} + ic)) * {hw};
  const float* wp = p2 + ((long long)(oc * {icg} + ic)) * {khw};
  for (int ky = 0; ky < {kh}; ky++) {{
    int iy = oy * {sh} - {pt} + ky * {dh};
    if (iy < 0 || iy >= {h}) continue;
    for (int kx = 0; kx < {kw}; kx++) {{
      int ix = ox * {sw} - {pl} + kx * {dw};
      if (ix < 0 || ix >= {w}) continue;
      acc += xp[iy * {w} + ix] * wp[ky * {kw} + kx];
    }}
  }}
}}
float v = acc;
{epilogue}p0[i] = v;",
        hw = h * w,
        khw = kh * kw,
        sh = c.strides[0],
        sw = c.strides[1],
        pt = pads[0],
        pl = pads[2],
        dh = dil[0],
        dw = dil[1],
    );
    Some(vec![kernel(direct_params, body, n, direct_args)])
}

/// The NCHW shapes of a convolution-like node's input, weight and output (each rank 4).
fn nchw_conv_shapes(g: &Graph, k: usize) -> Option<([usize; 4], [usize; 4], [usize; 4])> {
    let node = &g.nodes[k];
    let four = |v: ValueId| -> Option<[usize; 4]> { shape(g, v)?.try_into().ok() };
    Some((
        four(node.inputs[0])?,
        four(node.inputs[1])?,
        four(node.outputs[0])?,
    ))
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

/// A GEMM's epilogue in place on its `rows × cols` output: the bias along the columns,
/// then the activation (`act` a C expression of `v`). `None` when there is neither.
fn gemm_epilogue(
    out: ValueId,
    bias: Option<ValueId>,
    cols: usize,
    act: Option<String>,
    n: usize,
) -> Option<DevOp> {
    if bias.is_none() && act.is_none() {
        return None;
    }
    let mut params = vec![Param::Out];
    let mut args = vec![Operand::Value(out)];
    let mut body = format!("{THREAD}\nif (i >= {n}) return;\nfloat v = p0[i];\n");
    if let Some(b) = bias {
        params.push(Param::In);
        args.push(Operand::Value(b));
        body.push_str(&format!("v += p1[i % {cols}];\n"));
    }
    body.push_str(&format!("p0[i] = {};", act.unwrap_or_else(|| "v".into())));
    Some(kernel(params, body, n, args))
}

/// `alpha · op(x) · op(y)` by GEMM (one call: `y` 2-D with its batch folded into rows, or
/// equal batches), then the bias and activation in place.
fn matmul(
    g: &Graph,
    k: usize,
    m: &kayak_ir::ops::MatMul,
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
    ops.extend(gemm_epilogue(node.outputs[0], bias, cols, act, n));
    Some(ops)
}

/// Paddle's `mul` and `fc`: `x` flattened to 2-D at `xn` axes, `y` at `yn`, one GEMM, then
/// (fc) the bias and relu in place.
fn flat_product(
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
    ops.extend(gemm_epilogue(node.outputs[0], bias, n, act, m * n));
    Some(ops)
}

/// Max or average pooling, one thread per output element, windows as the reference ops
/// places them (clipped to the input; a non-exclusive average divides by the full window).
fn pool(g: &Graph, k: usize, p: &Pool) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    if p.layout != kayak_ir::ops::Layout::Nchw {
        return None;
    }
    let (xs, os) = (shape(g, node.inputs[0])?, shape(g, node.outputs[0])?);
    if xs.len() != 4 || os.len() != 4 {
        return None;
    }
    let (h, w) = (xs[2], xs[3]);
    let (o, pad) = p.out_size([h, w]).ok()?;
    if o != [os[2], os[3]] {
        return None;
    }
    let (kk, s) = if p.global {
        ([h, w], [1, 1])
    } else {
        (p.ksize, p.strides)
    };
    let n: usize = os.iter().product();
    let window = if p.adaptive || p.global {
        format!(
            "int y0 = (oy * {h}) / {oh}, y1 = ((oy + 1) * {h} + {oh} - 1) / {oh};
int x0 = (ox * {w}) / {ow}, x1 = ((ox + 1) * {w} + {ow} - 1) / {ow};
int count = (y1 - y0) * (x1 - x0);",
            oh = o[0],
            ow = o[1]
        )
    } else {
        let count = if p.exclusive {
            "(y1 - y0) * (x1 - x0)".to_string()
        } else {
            format!("{}", kk[0] * kk[1])
        };
        format!(
            "int ys = oy * {sh} - {pt}, xs = ox * {sw} - {pl};
int y1 = min(ys + {kh}, {h}), x1 = min(xs + {kw}, {w});
int y0 = max(ys, 0), x0 = max(xs, 0);
if (y1 < y0) y1 = y0; if (x1 < x0) x1 = x0;
int count = {count};",
            sh = s[0],
            sw = s[1],
            pt = pad[0],
            pl = pad[2],
            kh = kk[0],
            kw = kk[1],
        )
    };
    let reduce = match p.kind {
        PoolKind::Max => "float m = -(1.0f/0.0f);
for (int iy = y0; iy < y1; iy++) for (int ix = x0; ix < x1; ix++) m = fmaxf(m, xp[iy * W + ix]);
p0[i] = m;"
            .to_string(),
        PoolKind::Avg => "float acc = 0.0f;
for (int iy = y0; iy < y1; iy++) for (int ix = x0; ix < x1; ix++) acc += xp[iy * W + ix];
p0[i] = acc / (float)(count > 0 ? count : 1);"
            .to_string(),
    };
    let body = format!(
        "{THREAD}
if (i >= {n}) return;
const int W = {w};
int ox = i % {ow}; int t = i / {ow}; int oy = t % {oh}; int plane = t / {oh};
const float* xp = p1 + (long long)plane * {hw};
{window}
(void)count;
{reduce}",
        ow = o[1],
        oh = o[0],
        hw = h * w
    );
    Some(vec![kernel(
        vec![Param::Out, Param::In],
        body,
        n,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
        ],
    )])
}

/// Softmax along `axis`: one thread per (outer, inner) position.
fn softmax(g: &Graph, k: usize, axis: i64) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let r = xs.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&a) {
        return None;
    }
    let a = a as usize;
    let outer: usize = xs[..a].iter().product();
    let len = xs[a];
    let inner: usize = xs[a + 1..].iter().product();
    let rows = outer * inner;
    let body = format!(
        "{THREAD}
if (i >= {rows}) return;
size_t base = (long long)(i / {inner}) * {len} * {inner} + (i % {inner});
const float* x = p1 + base; float* y = p0 + base;
float m = -(1.0f/0.0f);
for (int j = 0; j < {len}; j++) m = fmaxf(m, x[j * {inner}]);
float s = 0.0f;
for (int j = 0; j < {len}; j++) {{ float e = expf(x[j * {inner}] - m); y[j * {inner}] = e; s += e; }}
float inv = 1.0f / s;
for (int j = 0; j < {len}; j++) y[j * {inner}] *= inv;"
    );
    Some(vec![kernel(
        vec![Param::Out, Param::In],
        body,
        rows,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
        ],
    )])
}

/// Layer normalization over the trailing axes (with a residual add first when `skip`):
/// one thread per row, two passes for the variance.
fn layer_norm(g: &Graph, k: usize, l: &kayak_ir::ops::LayerNorm, skip: bool) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    if l.begin_norm_axis >= xs.len() {
        return None;
    }
    let inner: usize = xs[l.begin_norm_axis..].iter().product();
    let outer: usize = xs[..l.begin_norm_axis].iter().product();
    let mut params = vec![Param::Out, Param::In];
    let mut args = vec![
        Operand::Value(node.outputs[0]),
        Operand::Value(node.inputs[0]),
    ];
    let mut next = 1;
    let load = if skip {
        if shape(g, node.inputs[1])? != xs {
            return None;
        }
        params.push(Param::In);
        args.push(Operand::Value(node.inputs[1]));
        next = 2;
        "(x[j] + r[j])"
    } else {
        "x[j]"
    };
    let mut affine = String::new();
    for (on, op) in [(l.has_scale, "*"), (l.has_bias, "+")] {
        if on {
            params.push(Param::In);
            args.push(Operand::Value(node.inputs[next]));
            if shape(g, node.inputs[next])?.iter().product::<usize>() != inner {
                return None;
            }
            affine.push_str(&format!(" v = v {op} p{}[j];", params.len() - 1));
            next += 1;
        }
    }
    let rdef = if skip {
        format!("const float* r = p2 + (long long)i * {inner};")
    } else {
        String::new()
    };
    let body = format!(
        "{THREAD}
if (i >= {outer}) return;
const float* x = p1 + (long long)i * {inner}; {rdef}
float* y = p0 + (long long)i * {inner};
float mean = 0.0f;
for (int j = 0; j < {inner}; j++) mean += {load};
mean /= {inner}.0f;
float var = 0.0f;
for (int j = 0; j < {inner}; j++) {{ float d = {load} - mean; var += d * d; }}
var /= {inner}.0f;
float inv = rsqrtf(var + {eps});
for (int j = 0; j < {inner}; j++) {{ float v = ({load} - mean) * inv;{affine} y[j] = v; }}",
        eps = lit(l.epsilon)
    );
    Some(vec![kernel(params, body, outer, args)])
}

/// Squeeze-and-excitation: per-channel means, the two projections with their activations,
/// then the gate applied — four kernels sharing three scratch vectors.
fn se_block(g: &Graph, k: usize, act1: &UnaryOp, act2: &UnaryOp) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let w1 = shape(g, node.inputs[1])?;
    if xs.len() != 4 || w1.len() != 4 {
        return None;
    }
    let (nb, c, hw) = (xs[0], xs[1], xs[2] * xs[3]);
    let c1 = w1[0];
    let (a1, a2) = (act_expr(act1, "v")?, act_expr(act2, "v")?);
    let (mean, hid, gate) = (
        Operand::ScratchOf(0, nb * c),
        Operand::ScratchOf(1, nb * c1),
        Operand::ScratchOf(2, nb * c),
    );
    let out = Operand::Value(node.outputs[0]);
    let x = Operand::Value(node.inputs[0]);
    let inp = |i: usize| Operand::Value(node.inputs[i]);
    let total = nb * c * hw;
    Some(vec![
        kernel(
            vec![Param::Out, Param::In],
            format!(
                "{THREAD}\nif (i >= {nc}) return;\nconst float* x = p1 + (long long)i * {hw};\nfloat s = 0.0f;\nfor (int j = 0; j < {hw}; j++) s += x[j];\np0[i] = s / {hw}.0f;",
                nc = nb * c
            ),
            nb * c,
            vec![mean.clone(), x.clone()],
        ),
        projection([hid.clone(), mean, inp(1), inp(2)], (nb, c1, c), &a1),
        projection([gate.clone(), hid, inp(3), inp(4)], (nb, c, c1), &a2),
        kernel(
            vec![Param::Out, Param::In, Param::In],
            format!("{THREAD}\nif (i >= {total}) return;\np0[i] = p1[i] * p2[i / {hw}];"),
            total,
            vec![out, x, gate],
        ),
    ])
}

/// `out[b, j] = act(bias[j] + Σ_q w[j, q] · x[b, q])` for `b < rows`, `j < n`, `q < k`
/// (operands: out, x, w, bias): an
/// SE block's projections, one thread per output.
fn projection(operands: [Operand; 4], (rows, n, k): (usize, usize, usize), act: &str) -> DevOp {
    kernel(
        vec![Param::Out, Param::In, Param::In, Param::In],
        format!(
            "{THREAD}\nif (i >= {total}) return;\nint b = i / {n}, j = i % {n};\nfloat v = p3[j];\nfor (int q = 0; q < {k}; q++) v += p2[j * {k} + q] * p1[b * {k} + q];\np0[i] = {act};",
            total = rows * n
        ),
        rows * n,
        operands.to_vec(),
    )
}

/// Data movement (transposes, slices, splits, concatenations, nearest resizes) as a gather
/// per output: the index of the input element each output element copies, found by running
/// the reference op on index tensors (the data inputs numbered one after another).
fn gather(g: &Graph, k: usize) -> Option<Vec<DevOp>> {
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
            format!("{THREAD}\nif (i >= {n}) return;\n{find}{pick}"),
            n,
            args,
        ));
    }
    Some(ops)
}

/// Multi-head attention, one thread per (batch, head, query position): one pass over the
/// keys with an online softmax (running maximum and denominator, the value accumulator
/// rescaled as the maximum grows), the mask broadcast from its own shape.
fn attention(g: &Graph, k: usize, a: &kayak_ir::ops::Attention) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let (h, d) = (a.heads, a.head_dim);
    let hd = h * d;
    if d == 0 || d > 256 {
        return None;
    }
    let qs = shape(g, node.inputs[0])?;
    if qs.len() != 3 {
        return None;
    }
    let (b, s) = (qs[0], qs[1]);
    let (t, row_q, row_kv, koff, voff, nin) = if a.packed {
        if qs[2] != 3 * hd {
            return None;
        }
        (s, 3 * hd, 3 * hd, hd, 2 * hd, 1)
    } else {
        let ks = shape(g, node.inputs[1])?;
        if qs[2] != hd || ks.len() != 3 || ks[2] != hd || shape(g, node.inputs[2])? != ks {
            return None;
        }
        (ks[1], hd, hd, 0, 0, 3)
    };
    let mut params = vec![Param::Out, Param::In];
    let mut args = vec![
        Operand::Value(node.outputs[0]),
        Operand::Value(node.inputs[0]),
    ];
    let (kp, vp) = if a.packed {
        ("p1", "p1")
    } else {
        params.extend([Param::In, Param::In]);
        args.extend([
            Operand::Value(node.inputs[1]),
            Operand::Value(node.inputs[2]),
        ]);
        ("p2", "p3")
    };
    let mask = if a.has_mask {
        let m = *node.inputs.get(nin)?;
        let ms = shape(g, m)?;
        if ms.len() > 4 {
            return None;
        }
        let mut padded = vec![1usize; 4 - ms.len()];
        padded.extend_from_slice(&ms);
        let full = [b, h, s, t];
        let mut strides = [0usize; 4];
        let mut run = 1;
        for ax in (0..4).rev() {
            if padded[ax] != 1 && padded[ax] != full[ax] {
                return None;
            }
            strides[ax] = if padded[ax] == 1 { 0 } else { run };
            run *= padded[ax];
        }
        params.push(Param::In);
        args.push(Operand::Value(m));
        format!(
            " + p{}[bi * {} + hi * {} + si * {} + ti * {}]",
            params.len() - 1,
            strides[0],
            strides[1],
            strides[2],
            strides[3]
        )
    } else {
        String::new()
    };
    let rows = b * h * s;
    let body = format!(
        "{THREAD}
if (i >= {rows}) return;
int si = i % {s}; int hi = (i / {s}) % {h}; int bi = i / ({s} * {h});
const float* q = p1 + ((long long)(bi * {s} + si)) * {row_q} + hi * {d};
float acc[{d}];
for (int di = 0; di < {d}; di++) acc[di] = 0.0f;
float m = -(1.0f/0.0f), den = 0.0f;
for (int ti = 0; ti < {t}; ti++) {{
  const float* kr = {kp} + ((long long)(bi * {t} + ti)) * {row_kv} + {koff} + hi * {d};
  const float* vr = {vp} + ((long long)(bi * {t} + ti)) * {row_kv} + {voff} + hi * {d};
  float dot = 0.0f;
  for (int di = 0; di < {d}; di++) dot += q[di] * kr[di];
  float l = {scale} * dot{mask};
  float mn = fmaxf(m, l);
  float c = expf(m - mn), e = expf(l - mn);
  den = den * c + e;
  for (int di = 0; di < {d}; di++) acc[di] = acc[di] * c + e * vr[di];
  m = mn;
}}
float* o = p0 + ((long long)(bi * {s} + si)) * {hd} + hi * {d};
for (int di = 0; di < {d}; di++) o[di] = acc[di] / den;",
        scale = lit(a.scale),
    );
    Some(vec![kernel(params, body, rows, args)])
}

/// A transposed convolution (NCHW), one thread per output element gathering the input
/// pixels that the scatter form would add into it: `oy = iy·stride + ky·dilation − pad`.
fn conv_transpose(g: &Graph, k: usize, c: &kayak_ir::ops::ConvTranspose) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    if c.layout != kayak_ir::ops::Layout::Nchw {
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
    let mut bias = String::new();
    if c.has_bias {
        params.push(Param::In);
        args.push(Operand::Value(*node.inputs.get(2)?));
        bias = "acc += p3[oc];".into();
    }
    let body = format!(
        "{THREAD}
if (i >= {n}) return;
int ox = i % {ow}; int t = i / {ow}; int oy = t % {oh}; t /= {oh}; int oc = t % {oc}; int b = t / {oc};
int grp = oc / {ocg}, o = oc % {ocg};
float acc = 0.0f;
for (int ky = 0; ky < {kh}; ky++) {{
  int ty = oy + {pt} - ky * {dh};
  if (ty < 0 || ty % {sh} != 0) continue;
  int iy = ty / {sh};
  if (iy >= {h}) continue;
  for (int kx = 0; kx < {kw}; kx++) {{
    int tx = ox + {pl} - kx * {dw};
    if (tx < 0 || tx % {sw} != 0) continue;
    int ix = tx / {sw};
    if (ix >= {w}) continue;
    for (int ic = 0; ic < {icg}; ic++) {{
      int cg = grp * {icg} + ic;
      acc += p1[((long long)(b * {ci} + cg) * {h} + iy) * {w} + ix]
           * p2[((long long)(cg * {ocg} + o) * {kh} + ky) * {kw} + kx];
    }}
  }}
}}
{bias}
p0[i] = acc;",
        pt = pads[0],
        pl = pads[2],
        dh = dil[0],
        dw = dil[1],
        sh = c.strides[0],
        sw = c.strides[1],
    );
    Some(vec![kernel(params, body, n, args)])
}

/// The channel axis of a rank-`rank` tensor and the elements after it.
fn channel_axis(layout: Layout, shape: &[usize]) -> (usize, usize) {
    let ca = match layout {
        Layout::Nchw => 1.min(shape.len().saturating_sub(1)),
        Layout::Nhwc => shape.len().saturating_sub(1),
    };
    (ca, shape[ca + 1..].iter().product())
}

/// Inference batch normalization: `(x − mean) / sqrt(var + ε) · scale + bias` per channel.
fn batch_norm(g: &Graph, k: usize, b: &kayak_ir::ops::BatchNorm) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    if xs.is_empty() {
        return None;
    }
    let (ca, inner) = channel_axis(b.layout, &xs);
    let c = xs[ca];
    for i in 1..5 {
        if shape(g, *node.inputs.get(i)?)?.iter().product::<usize>() != c {
            return None;
        }
    }
    let n: usize = xs.iter().product();
    let args = std::iter::once(node.outputs[0])
        .chain(node.inputs[..5].iter().copied())
        .map(Operand::Value)
        .collect();
    Some(vec![kernel(
        vec![Param::Out, Param::In, Param::In, Param::In, Param::In, Param::In],
        format!(
            "{THREAD}\nif (i >= {n}) return;\nint ch = (i / {inner}) % {c};\np0[i] = (p1[i] - p4[ch]) * rsqrtf(p5[ch] + {eps}) * p2[ch] + p3[ch];",
            eps = lit(b.epsilon)
        ),
        n,
        args,
    )])
}

/// Sum, mean, max, min or product over a set of axes: one thread per output element,
/// looping over the reduced positions.
fn reduce(g: &Graph, k: usize, r: &kayak_ir::ops::Reduce) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let red = r.reduced_axes(xs.len()).ok()?;
    let n: usize = shape(g, node.outputs[0])?.iter().product();
    let mut strides = vec![1usize; xs.len()];
    for a in (0..xs.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * xs[a + 1];
    }
    let kept: Vec<usize> = (0..xs.len()).filter(|&a| !red[a]).collect();
    let gone: Vec<usize> = (0..xs.len()).filter(|&a| red[a]).collect();
    if kept.iter().map(|&a| xs[a]).product::<usize>() != n {
        return None;
    }
    let count: usize = gone.iter().map(|&a| xs[a]).product();
    let mut base = String::from("int rem = i; long long base = 0;\n");
    for &a in kept.iter().rev() {
        base.push_str(&format!(
            "base += (long long)(rem % {d}) * {st}; rem /= {d};\n",
            d = xs[a],
            st = strides[a]
        ));
    }
    let mut offset = String::from("int rr = r; long long off = base;\n");
    for &a in gone.iter().rev() {
        offset.push_str(&format!(
            "off += (long long)(rr % {d}) * {st}; rr /= {d};\n",
            d = xs[a],
            st = strides[a]
        ));
    }
    let (init, step, fin) = match r.kind {
        ReduceKind::Sum => ("0.0f", "acc += v;", "acc".to_string()),
        ReduceKind::Mean => ("0.0f", "acc += v;", format!("acc / {count}.0f")),
        ReduceKind::Max => ("-(1.0f/0.0f)", "acc = fmaxf(acc, v);", "acc".to_string()),
        ReduceKind::Min => ("(1.0f/0.0f)", "acc = fminf(acc, v);", "acc".to_string()),
        ReduceKind::Prod => ("1.0f", "acc *= v;", "acc".to_string()),
    };
    Some(vec![kernel(
        vec![Param::Out, Param::In],
        format!(
            "{THREAD}\nif (i >= {n}) return;\n{base}float acc = {init};\nfor (int r = 0; r < {count}; r++) {{\n{offset}float v = p1[off];\n{step}\n}}\np0[i] = {fin};"
        ),
        n,
        vec![Operand::Value(node.outputs[0]), Operand::Value(node.inputs[0])],
    )])
}

/// `x > 0 ? x : α·x`, α one for all, per channel, or per element (batch axis excluded).
fn prelu(g: &Graph, k: usize, mode: PreluMode, layout: Layout) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    let xs = shape(g, node.inputs[0])?;
    let alphas: usize = shape(g, node.inputs[1])?.iter().product();
    let n: usize = xs.iter().product();
    let a = match mode {
        PreluMode::All => "0".to_string(),
        PreluMode::Channel => {
            if xs.is_empty() {
                return None;
            }
            let (ca, inner) = channel_axis(layout, &xs);
            if alphas != xs[ca] {
                return None;
            }
            format!("(i / {inner}) % {}", xs[ca])
        }
        PreluMode::Element => {
            let per: usize = xs.iter().skip(1).product();
            if alphas != per {
                return None;
            }
            format!("i % {per}")
        }
    };
    Some(vec![kernel(
        vec![Param::Out, Param::In, Param::In],
        format!("{THREAD}\nif (i >= {n}) return;\nfloat v = p1[i];\np0[i] = v > 0.0f ? v : p2[{a}] * v;"),
        n,
        vec![
            Operand::Value(node.outputs[0]),
            Operand::Value(node.inputs[0]),
            Operand::Value(node.inputs[1]),
        ],
    )])
}

/// Bilinear resizing (NCHW), one thread per output element, from the reference op's own
/// taps (`Interp::bilinear_plan`): per output row and column, two source indices and two
/// weights, held with the weights.
fn bilinear(g: &Graph, k: usize, i: &kayak_ir::ops::Interp) -> Option<Vec<DevOp>> {
    let node = &g.nodes[k];
    if i.layout != Layout::Nchw {
        return None;
    }
    let xs = shape(g, node.inputs[0])?;
    let os = shape(g, node.outputs[0])?;
    if xs.len() != 4 || os.len() != 4 {
        return None;
    }
    let ins: Vec<kayak_ir::ops::InferInput<'_>> = node
        .inputs
        .iter()
        .map(|&v| kayak_ir::ops::InferInput {
            ty: &g.values[v].ty,
            value: g.const_value(v),
        })
        .collect();
    let ([oh, ow], ty, tx) = i.bilinear_plan(&ins, xs[2], xs[3]).ok()?;
    if [oh, ow] != [os[2], os[3]] {
        return None;
    }
    let idx = |t: &[kayak_ir::ops::BilinearTap]| -> Vec<i32> {
        t.iter()
            .flat_map(|&(lo, hi, _, _)| [lo as i32, hi as i32])
            .collect()
    };
    let wts = |t: &[kayak_ir::ops::BilinearTap]| -> Vec<f32> {
        t.iter().flat_map(|&(_, _, a, b)| [a, b]).collect()
    };
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
        format!(
            "{THREAD}
if (i >= {n}) return;
int ox = i % {ow}; int t = i / {ow}; int oy = t % {oh}; int plane = t / {oh};
const float* x = p1 + (long long)plane * {ihw};
int y0 = p2[2 * oy], y1 = p2[2 * oy + 1], x0 = p4[2 * ox], x1 = p4[2 * ox + 1];
float wy0 = p3[2 * oy], wy1 = p3[2 * oy + 1], wx0 = p5[2 * ox], wx1 = p5[2 * ox + 1];
p0[i] = wy0 * (wx0 * x[y0 * {iw} + x0] + wx1 * x[y0 * {iw} + x1])
      + wy1 * (wx0 * x[y1 * {iw} + x0] + wx1 * x[y1 * {iw} + x1]);",
            ihw = ih * iw
        ),
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
