//! Every device kernel the GPU executor generates (`kayak::gpu_exec::lower`), run on the
//! CPU emulator of a CUDA device against the reference ops: each op family in a graph of
//! parallel branches (one module per graph), with the attribute variants the shared models
//! do not all reach. Every branch must have run on the device.

use kayak::gpu::Emulator;
use kayak::gpu_exec::{concretize, device_support, GpuPlan, GpuState};
use kayak::ir::ops::*;
use kayak::ir::{DType, Graph, Op, Tensor, TypeInfo, ValueId};
use kayak_tests::*;
use std::sync::Arc;

struct B {
    g: Graph,
    n: usize,
}

impl B {
    fn new() -> B {
        B {
            g: Graph::new(),
            n: 0,
        }
    }
    fn input(&mut self, shape: &[usize]) -> ValueId {
        let name = format!("in{}", self.g.inputs.len());
        self.g
            .add_input(&name, TypeInfo::known(DType::F32, shape))
            .unwrap()
    }
    fn w(&mut self, shape: &[usize], seed: u64) -> ValueId {
        self.n += 1;
        self.g
            .add_const(&format!("w{}", self.n), Arc::new(rand_t(shape, seed)))
            .unwrap()
    }
    /// A constant in [0.5, 1.5) (variances).
    fn positive_w(&mut self, shape: &[usize], seed: u64) -> ValueId {
        let t = rand_t(shape, seed);
        let p: Vec<f32> = t
            .to_f64_vec()
            .iter()
            .map(|x| x.abs() as f32 + 0.5)
            .collect();
        self.n += 1;
        self.g
            .add_const(
                &format!("w{}", self.n),
                Arc::new(Tensor::from_f32s(shape, p).unwrap()),
            )
            .unwrap()
    }
    fn op(&mut self, op: Op, ins: &[ValueId]) -> ValueId {
        self.ops(op, ins, 1)[0]
    }
    fn ops(&mut self, op: Op, ins: &[ValueId], outs: usize) -> Vec<ValueId> {
        self.n += 1;
        let names: Vec<String> = (0..outs).map(|k| format!("v{}_{k}", self.n)).collect();
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        self.g
            .add_node(op, ins.to_vec(), &names, &format!("node {}", self.n))
            .unwrap()
    }
    fn out(&mut self, v: ValueId) {
        self.g.add_output(v);
    }
}

/// Runs `b`'s graph on the emulator with every node on the device, and compares each
/// output with the reference evaluation.
fn check(b: B, positive_inputs: bool) {
    let g = b.g;
    let inputs: Vec<Tensor> = g
        .inputs
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let s = g.values[v].ty.shape.to_known().unwrap();
            let t = rand_t(&s, 1000 + k as u64);
            if positive_inputs {
                let v: Vec<f32> = t
                    .to_f64_vec()
                    .iter()
                    .map(|x| x.abs() as f32 + 0.5)
                    .collect();
                Tensor::from_f32s(&s, v).unwrap()
            } else {
                t
            }
        })
        .collect();
    let want = g.evaluate(&inputs).unwrap();
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
    let keep = g.outputs.clone();
    let (cg, _) = concretize(&g, &keep, &shapes).unwrap();
    let support = device_support(&cg);
    for (k, ok) in support.iter().enumerate() {
        assert!(ok, "{} has no device kernel", cg.nodes[k].op.name());
    }
    let dev: Arc<dyn kayak::gpu::Device> = Arc::new(Emulator::new().unwrap());
    let plan = GpuPlan::new(dev.clone(), cg, &support).unwrap();
    assert_eq!(plan.report().host_nodes, 0);
    // On a stream of its own, as a predictor clone runs.
    let mut state = GpuState::new(dev.new_stream().unwrap());
    plan.run(&mut state, &inputs).unwrap();
    let got = state.outputs();
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a.shape(), b.shape(), "output {i}");
        let (r, at) = worst_ratio(a, b, 1e-5, 1e-4).unwrap();
        assert!(
            r <= 1.0,
            "output {i} ({}): {r:.2}x the tolerance at {at}",
            g.values[g.outputs[i]].name
        );
    }
}

#[test]
fn every_activation_on_the_device() {
    for positive in [false, true] {
        let mut b = B::new();
        let x = b.input(&[2, 3, 5, 7]);
        let mut acts = vec![
            UnaryOp::Relu,
            UnaryOp::Relu6 { threshold: 6.0 },
            UnaryOp::LeakyRelu { alpha: 0.1 },
            UnaryOp::HardSwish {
                threshold: 6.0,
                scale: 6.0,
                offset: 3.0,
            },
            UnaryOp::HardSigmoid {
                slope: 0.2,
                offset: 0.5,
            },
            UnaryOp::Sigmoid,
            UnaryOp::Swish { beta: 1.5 },
            UnaryOp::Gelu { approximate: false },
            UnaryOp::Gelu { approximate: true },
            UnaryOp::Tanh,
            UnaryOp::Exp,
            UnaryOp::Abs,
            UnaryOp::Square,
            UnaryOp::Floor,
            UnaryOp::Ceil,
            UnaryOp::Erf,
            UnaryOp::Sin,
            UnaryOp::Cos,
            UnaryOp::Tan,
            UnaryOp::Asin,
            UnaryOp::Acos,
            UnaryOp::Atan,
            UnaryOp::Sinh,
            UnaryOp::Cosh,
            UnaryOp::Asinh,
            UnaryOp::Atanh,
            UnaryOp::Sign,
            UnaryOp::Round,
            UnaryOp::Softplus,
            UnaryOp::Softsign,
            UnaryOp::Mish,
            UnaryOp::Elu { alpha: 0.7 },
            UnaryOp::Selu {
                alpha: 1.673_263_2,
                gamma: 1.050_701,
            },
            UnaryOp::Celu { alpha: 1.5 },
            UnaryOp::ThresholdedRelu { alpha: 0.25 },
            UnaryOp::Clip {
                min: -0.25,
                max: 0.5,
            },
            UnaryOp::Scale {
                scale: 2.0,
                bias: 0.5,
                bias_after_scale: true,
            },
            UnaryOp::Scale {
                scale: 2.0,
                bias: 0.5,
                bias_after_scale: false,
            },
        ];
        if positive {
            acts = vec![
                UnaryOp::Log,
                UnaryOp::Sqrt,
                UnaryOp::Rsqrt,
                UnaryOp::Reciprocal,
                UnaryOp::PowScalar { factor: 1.5 },
                UnaryOp::Acosh,
            ];
        }
        for a in acts {
            let y = b.op(Op::Unary(a), &[x]);
            b.out(y);
        }
        check(b, positive);
    }
}

#[test]
fn broadcast_binary_ops_and_fused_activations() {
    let mut b = B::new();
    let x = b.input(&[2, 3, 4, 5]);
    let same = b.input(&[2, 3, 4, 5]);
    let chan = b.w(&[3], 1);
    let last = b.input(&[5]);
    let one = b.w(&[1], 2);
    let numpy = b.input(&[1, 3, 1, 1]);
    for (op, y, axis) in [
        (BinaryOp::Add, same, -1),
        (BinaryOp::Sub, chan, 1),
        (BinaryOp::Mul, last, -1),
        (BinaryOp::Div, one, -1),
        (BinaryOp::Max, numpy, -1),
        (BinaryOp::Min, same, -1),
    ] {
        let v = b.op(Op::Binary(Binary { op, axis }), &[x, y]);
        b.out(v);
    }
    // The scalar on the left, and an activation after.
    let v = b.op(
        Op::Binary(Binary {
            op: BinaryOp::Sub,
            axis: -1,
        }),
        &[one, x],
    );
    b.out(v);
    let v = b.op(
        Op::FusedBinary(FusedBinary {
            op: BinaryOp::Add,
            axis: 1,
            act: UnaryOp::Relu,
        }),
        &[x, chan],
    );
    b.out(v);
    check(b, false);
}

fn conv(k: usize, stride: usize, pad: Padding, dil: usize, groups: usize, bias: bool) -> Conv {
    let _ = k;
    Conv {
        strides: [stride, stride],
        padding: pad,
        dilations: [dil, dil],
        groups,
        layout: Layout::Nchw,
        has_bias: bias,
    }
}

#[test]
fn convolutions_with_every_epilogue() {
    let mut b = B::new();
    let x = b.input(&[2, 4, 9, 11]);
    // Plain 3×3, stride 2, SAME padding, no bias.
    let w = b.w(&[6, 4, 3, 3], 1);
    let v = b.op(Op::Conv2d(conv(3, 2, Padding::Same, 1, 1, false)), &[x, w]);
    b.out(v);
    // Grouped, dilated, asymmetric padding, with bias.
    let w = b.w(&[6, 2, 3, 3], 2);
    let bias = b.w(&[6], 3);
    let v = b.op(
        Op::Conv2d(conv(3, 1, Padding::Explicit([2, 1, 0, 2]), 2, 2, true)),
        &[x, w, bias],
    );
    b.out(v);
    // Depthwise 5×5 with bias, residual, hard swish and a post affine.
    let w = b.w(&[4, 1, 5, 5], 4);
    let bias = b.w(&[4], 5);
    let v = b.op(
        Op::FusedConv(FusedConv {
            conv: conv(5, 1, Padding::Explicit([2; 4]), 1, 4, true),
            residual: true,
            act: Some(UnaryOp::HardSwish {
                threshold: 6.0,
                scale: 6.0,
                offset: 3.0,
            }),
            post: Some((0.5, -0.25)),
        }),
        &[x, w, bias, x],
    );
    b.out(v);
    // Pointwise, no padding, relu6.
    let w = b.w(&[8, 4, 1, 1], 6);
    let v = b.op(
        Op::FusedConv(FusedConv {
            conv: conv(1, 1, Padding::Valid, 1, 1, false),
            residual: false,
            act: Some(UnaryOp::Relu6 { threshold: 6.0 }),
            post: None,
        }),
        &[x, w],
    );
    b.out(v);
    check(b, false);
}

fn mm(tx: bool, ty: bool, alpha: f32) -> MatMul {
    MatMul {
        trans_x: tx,
        trans_y: ty,
        alpha,
    }
}

#[test]
fn matrix_products_by_gemm_with_their_epilogues() {
    let mut b = B::new();
    let x = b.input(&[2, 3, 4]);
    let w = b.w(&[4, 5], 1);
    let bias = b.w(&[5], 2);
    // A 2-D weight: one GEMM over the stacked rows, bias and gelu after.
    let v = b.op(
        Op::FusedMatMul(FusedMatMul {
            mm: mm(false, false, 1.0),
            has_bias: true,
            act: Some(UnaryOp::Gelu { approximate: false }),
            packed: None,
        }),
        &[x, w, bias],
    );
    b.out(v);
    // Batched, both operands inputs, transposed y, alpha.
    let y = b.input(&[2, 5, 4]);
    let v = b.op(Op::MatMul(mm(false, true, 0.5)), &[x, y]);
    b.out(v);
    // Transposed x against a 2-D weight (batched with a shared B).
    let xt = b.input(&[2, 4, 3]);
    let v = b.op(Op::MatMul(mm(true, false, 1.0)), &[xt, w]);
    b.out(v);
    // One x against a batch of y.
    let x2 = b.input(&[3, 4]);
    let yb = b.input(&[2, 4, 5]);
    let v = b.op(Op::MatMul(mm(false, false, 2.0)), &[x2, yb]);
    b.out(v);
    check(b, false);
}

#[test]
fn pooling_in_every_mode() {
    let mut b = B::new();
    let x = b.input(&[2, 3, 9, 10]);
    let base = |kind, k, s| Pool::window(kind, [k, k], [s, s]);
    let pools = [
        Pool {
            padding: Padding::Explicit([1; 4]),
            ..base(PoolKind::Max, 3, 2)
        },
        Pool {
            padding: Padding::Explicit([1, 0, 1, 0]),
            ceil_mode: true,
            exclusive: false,
            ..base(PoolKind::Avg, 3, 2)
        },
        Pool {
            padding: Padding::Explicit([1; 4]),
            exclusive: true,
            ..base(PoolKind::Avg, 2, 2)
        },
        Pool {
            global: true,
            ..base(PoolKind::Avg, 1, 1)
        },
        Pool {
            global: true,
            ..base(PoolKind::Max, 1, 1)
        },
        Pool {
            adaptive: true,
            ..base(PoolKind::Avg, 4, 1)
        },
        Pool {
            padding: Padding::Same,
            ..base(PoolKind::Max, 3, 2)
        },
    ];
    for p in pools {
        let v = b.op(Op::Pool2d(p), &[x]);
        b.out(v);
    }
    check(b, false);
}

#[test]
fn softmax_layer_norms_and_se_blocks() {
    let mut b = B::new();
    let x = b.input(&[2, 3, 4, 5]);
    for axis in [-1, 1, 0] {
        let v = b.op(Op::Softmax(Softmax { axis }), &[x]);
        b.out(v);
    }
    let ln = |axis, s, bi| LayerNorm {
        begin_norm_axis: axis,
        epsilon: 1e-5,
        has_scale: s,
        has_bias: bi,
    };
    let (s20, b20) = (b.w(&[20], 1), b.w(&[20], 2));
    let v = b.op(Op::LayerNorm(ln(2, true, true)), &[x, s20, b20]);
    b.out(v);
    let v = b.op(Op::LayerNorm(ln(3, false, false)), &[x]);
    b.out(v);
    let s5 = b.w(&[5], 3);
    let v = b.op(Op::LayerNorm(ln(3, true, false)), &[x, s5]);
    b.out(v);
    let y = b.input(&[2, 3, 4, 5]);
    let v = b.op(
        Op::SkipLayerNorm(SkipLayerNorm {
            ln: ln(3, true, true),
        }),
        &[x, y, s5, s5],
    );
    b.out(v);
    let (w1, b1, w2, b2) = (
        b.w(&[2, 3, 1, 1], 4),
        b.w(&[2], 5),
        b.w(&[3, 2, 1, 1], 6),
        b.w(&[3], 7),
    );
    let v = b.op(
        Op::SeBlock(SeBlock {
            act1: UnaryOp::Relu,
            act2: UnaryOp::HardSigmoid {
                slope: 0.2,
                offset: 0.5,
            },
        }),
        &[x, w1, b1, w2, b2],
    );
    b.out(v);
    check(b, false);
}

#[test]
fn data_movement_as_gathers() {
    let mut b = B::new();
    let x = b.input(&[2, 3, 4, 5]);
    let v = b.op(
        Op::Transpose(Transpose {
            perm: vec![0, 2, 3, 1],
        }),
        &[x],
    );
    b.out(v);
    let v = b.op(
        Op::Slice(Slice {
            axes: vec![1, 3],
            starts: vec![1, -4],
            ends: vec![3, 100],
            decrease_axis: vec![],
            starts_input: ListInput::Attr,
            ends_input: ListInput::Attr,
        }),
        &[x],
    );
    b.out(v);
    let y = b.input(&[2, 2, 4, 5]);
    let z = b.input(&[2, 1, 4, 5]);
    let v = b.op(Op::Concat(Concat { axis: 1 }), &[x, y, z]);
    b.out(v);
    for v in b.ops(
        Op::Split(Split {
            axis: 3,
            sections: vec![2, -1],
            num: 0,
        }),
        &[x],
        2,
    ) {
        b.out(v);
    }
    let v = b.op(
        Op::Interp(Interp {
            mode: InterpMode::Nearest,
            out_h: -1,
            out_w: -1,
            scale: vec![2.0, 2.0],
            align_corners: false,
            align_mode: 1,
            layout: Layout::Nchw,
            out_size_input: ListInput::Attr,
            scale_input: false,
            onnx: None,
        }),
        &[x],
    );
    b.out(v);
    // A view between two device ops aliases its input.
    let r = b.op(
        Op::Reshape(Reshape {
            shape: vec![2, 60],
            shape_input: ListInput::Attr,
        }),
        &[x],
    );
    let v = b.op(Op::Unary(UnaryOp::Relu), &[r]);
    b.out(v);
    check(b, false);
}

#[test]
fn attention_packed_and_not_with_broadcast_masks() {
    let mut b = B::new();
    let (bs, s, h, d) = (2, 5, 3, 4);
    let q = b.input(&[bs, s, h * d]);
    let k = b.input(&[bs, 7, h * d]);
    let v = b.input(&[bs, 7, h * d]);
    let key_mask = b.input(&[bs, 1, 1, 7]);
    let att = |packed, has_mask| Attention {
        heads: h,
        head_dim: d,
        scale: 0.5,
        has_mask,
        packed,
    };
    let o = b.op(Op::Attention(att(false, true)), &[q, k, v, key_mask]);
    b.out(o);
    let o = b.op(Op::Attention(att(false, false)), &[q, k, v]);
    b.out(o);
    let qkv = b.input(&[bs, s, 3 * h * d]);
    let full_mask = b.input(&[bs, h, s, s]);
    let o = b.op(Op::Attention(att(true, true)), &[qkv, full_mask]);
    b.out(o);
    check(b, false);
}

#[test]
fn transposed_convolutions() {
    let mut b = B::new();
    let x = b.input(&[2, 4, 5, 6]);
    let tc = |stride, pad, dil, groups, out_pad, bias| ConvTranspose {
        strides: [stride, stride],
        padding: Padding::Explicit(pad),
        dilations: [dil, dil],
        groups,
        output_padding: out_pad,
        output_size: None,
        layout: Layout::Nchw,
        has_bias: bias,
    };
    let w = b.w(&[4, 3, 2, 2], 1);
    let bias = b.w(&[3], 2);
    let v = b.op(
        Op::Conv2dTranspose(tc(2, [0; 4], 1, 1, [0, 0], true)),
        &[x, w, bias],
    );
    b.out(v);
    let w = b.w(&[4, 2, 3, 3], 3);
    let v = b.op(
        Op::Conv2dTranspose(tc(2, [1, 1, 1, 1], 1, 2, [1, 1], false)),
        &[x, w],
    );
    b.out(v);
    let w = b.w(&[4, 1, 3, 3], 4);
    let v = b.op(
        Op::Conv2dTranspose(tc(1, [2, 1, 0, 2], 2, 1, [0, 0], false)),
        &[x, w],
    );
    b.out(v);
    check(b, false);
}

#[test]
fn batch_norm_reductions_and_prelu() {
    let mut b = B::new();
    let x = b.input(&[2, 3, 4, 5]);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let c = if layout == Layout::Nchw { 3 } else { 5 };
        let (s, bi, m) = (b.w(&[c], 1), b.w(&[c], 2), b.w(&[c], 3));
        let var = b.positive_w(&[c], 5);
        let y = b.op(
            Op::BatchNorm(BatchNorm {
                epsilon: 1e-5,
                layout,
            }),
            &[x, s, bi, m, var],
        );
        b.out(y);
    }
    for (kind, axes, keep) in [
        (ReduceKind::Sum, vec![1], false),
        (ReduceKind::Mean, vec![2, 3], true),
        (ReduceKind::Max, vec![-1], false),
        (ReduceKind::Min, vec![0, 2], false),
        (ReduceKind::Prod, vec![3], true),
        (ReduceKind::Mean, vec![], false),
    ] {
        let y = b.op(
            Op::Reduce(Reduce {
                kind,
                axes,
                keep_dim: keep,
                reduce_all: false,
            }),
            &[x],
        );
        b.out(y);
    }
    let a1 = b.w(&[1], 6);
    let a3 = b.w(&[3], 7);
    let a60 = b.w(&[3, 4, 5], 8);
    for (mode, a) in [
        (PreluMode::All, a1),
        (PreluMode::Channel, a3),
        (PreluMode::Element, a60),
    ] {
        let y = b.op(
            Op::Prelu(Prelu {
                mode,
                layout: Layout::Nchw,
            }),
            &[x, a],
        );
        b.out(y);
    }
    check(b, false);
}
