//! One line per fusion: each built-in rule family fires on a small graph, and the optimized
//! graph computes what the original does (reference semantics on random inputs).

mod common;
use common::*;
use kayak_ir::ops::*;
use kayak_ir::{Graph, Op};

fn conv_bn_act(act: Option<UnaryOp>) -> Graph {
    let mut b = B::new();
    let x = b.input(&[1, 4, 6, 6]);
    let w = b.w(rand(&[8, 4, 3, 3], 1));
    let c = b.op(conv(1), &[x, w]);
    let (s, t, m, v) = (
        b.w(rand(&[8], 2)),
        b.w(rand(&[8], 3)),
        b.w(rand(&[8], 4)),
        b.w(pos(&[8], 5)),
    );
    let mut y = b.op(bn(), &[c, s, t, m, v]);
    if let Some(a) = act {
        y = b.op(un(a), &[y]);
    }
    b.out(&[y])
}

fn conv_bias_affine_hswish_affine() -> Graph {
    // PP-LCNetV3's block: conv + bias, learnable affine, hard_swish, learnable affine.
    let mut b = B::new();
    let x = b.input(&[1, 4, 5, 5]);
    let w = b.w(rand(&[6, 4, 3, 3], 1));
    let c = b.op(conv(1), &[x, w]);
    let bias = b.w(rand(&[6], 2));
    let y = b.op(add(1), &[c, bias]);
    let (s1, t1, s2, t2) = (
        b.w(rand(&[1], 3)),
        b.w(rand(&[1], 4)),
        b.w(rand(&[1], 5)),
        b.w(rand(&[1], 6)),
    );
    let y = b.op(mul(-1), &[s1, y]);
    let y = b.op(add(-1), &[y, t1]);
    let y = b.op(
        un(UnaryOp::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        }),
        &[y],
    );
    let y = b.op(mul(-1), &[s2, y]);
    let y = b.op(add(-1), &[y, t2]);
    b.out(&[y])
}

fn residual_relu() -> Graph {
    let mut b = B::new();
    let x = b.input(&[1, 4, 5, 5]);
    let w = b.w(rand(&[4, 4, 3, 3], 1));
    let c = b.op(conv(1), &[x, w]);
    let y = b.op(add(-1), &[c, x]);
    let y = b.op(un(UnaryOp::Relu), &[y]);
    b.out(&[y])
}

fn se_block() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 8, 5, 5]);
    let p = b.op(Op::Pool2d(Pool::adaptive(PoolKind::Avg, [1, 1])), &[x]);
    let (w1, b1, w2, b2) = (
        b.w(rand(&[2, 8, 1, 1], 1)),
        b.w(rand(&[2], 2)),
        b.w(rand(&[8, 2, 1, 1], 3)),
        b.w(rand(&[8], 4)),
    );
    let h = b.op(conv1x1(), &[p, w1]);
    let h = b.op(add(1), &[h, b1]);
    let h = b.op(un(UnaryOp::Relu), &[h]);
    let g = b.op(conv1x1(), &[h, w2]);
    let g = b.op(add(1), &[g, b2]);
    let g = b.op(
        un(UnaryOp::HardSigmoid {
            slope: 0.2,
            offset: 0.5,
        }),
        &[g],
    );
    let y = b.op(mul(-1), &[x, g]);
    b.out(&[y])
}

fn fc_gelu() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 3, 8]);
    let w = b.w(rand(&[8, 5], 1));
    let bias = b.w(rand(&[5], 2));
    let m = b.op(
        Op::MatMul(MatMul {
            trans_x: false,
            trans_y: false,
            alpha: 1.0,
        }),
        &[x, w],
    );
    let y = b.op(add(-1), &[m, bias]);
    let y = b.op(un(UnaryOp::Gelu { approximate: false }), &[y]);
    b.out(&[y])
}

fn skip_ln() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 3, 8]);
    let y = b.input(&[2, 3, 8]);
    let s = b.op(add(-1), &[x, y]);
    let (g, t) = (b.w(rand(&[8], 1)), b.w(rand(&[8], 2)));
    let l = b.op(
        Op::LayerNorm(LayerNorm {
            begin_norm_axis: 2,
            epsilon: 1e-5,
            has_scale: true,
            has_bias: true,
        }),
        &[s, g, t],
    );
    b.out(&[l])
}

/// `conv(x) * sigmoid(conv(x))` (SiLU written out, `sigmoid` on either side).
fn conv_silu(sigmoid_first: bool) -> Graph {
    let mut b = B::new();
    let x = b.input(&[1, 3, 6, 6]);
    let w = b.w(rand(&[4, 3, 3, 3], 11));
    let c = b.op(conv(1), &[x, w]);
    let s = b.op(un(UnaryOp::Sigmoid), &[c]);
    let y = if sigmoid_first {
        b.op(mul(-1), &[s, c])
    } else {
        b.op(mul(-1), &[c, s])
    };
    b.out(&[y])
}

fn hard_swish_pattern() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 7]);
    let h = b.op(
        un(UnaryOp::HardSigmoid {
            slope: 1.0 / 6.0,
            offset: 0.5,
        }),
        &[x],
    );
    let y = b.op(mul(-1), &[x, h]);
    b.out(&[y])
}

fn weights_only_subgraph() -> Graph {
    // A reshape of a weight and a shape chain on a fixed input fold to constants.
    let mut b = B::new();
    let x = b.input(&[1, 4, 2, 2]);
    let bias = b.w(rand(&[4], 1));
    let r = b.op(
        Op::Reshape(Reshape {
            shape: vec![1, 4, 1, 1],
            shape_input: ListInput::Attr,
        }),
        &[bias],
    );
    let y = b.op(add(-1), &[x, r]);
    let s = b.op(Op::Shape(ShapeOf { i64: false }), &[y]);
    let r2 = b.op(
        Op::Reshape(Reshape {
            shape: vec![],
            shape_input: ListInput::Tensor,
        }),
        &[y, s],
    );
    b.out(&[r2])
}

fn shared_conv_output() -> Graph {
    // A large conv output read twice: fusing each reader's activation into the conv would
    // compute the conv twice, which the cost model rightly rejects (DAG-aware extraction).
    let mut b = B::new();
    let x = b.input(&[1, 16, 24, 24]);
    let w = b.w(rand(&[16, 16, 3, 3], 1));
    let c = b.op(conv(1), &[x, w]);
    let r = b.op(un(UnaryOp::Relu), &[c]);
    let s = b.op(un(UnaryOp::Sigmoid), &[c]);
    b.out(&[r, s])
}

fusion_test!(conv_bn_folds, conv_bn_act(None) => ["fused_conv"]);
fusion_test!(conv_bn_relu_fuses, conv_bn_act(Some(UnaryOp::Relu)) => ["fused_conv"]);
fusion_test!(conv_bn_relu6_fuses, conv_bn_act(Some(UnaryOp::Relu6 { threshold: 6.0 })) => ["fused_conv"]);
fusion_test!(conv_bn_leaky_relu_fuses, conv_bn_act(Some(UnaryOp::LeakyRelu { alpha: 0.1 })) => ["fused_conv"]);
fusion_test!(conv_bn_hard_swish_fuses, conv_bn_act(Some(UnaryOp::HardSwish { threshold: 6.0, scale: 6.0, offset: 3.0 })) => ["fused_conv"]);
fusion_test!(conv_bn_hard_sigmoid_fuses, conv_bn_act(Some(UnaryOp::HardSigmoid { slope: 0.2, offset: 0.5 })) => ["fused_conv"]);
fusion_test!(conv_bn_swish_fuses, conv_bn_act(Some(UnaryOp::Swish { beta: 1.0 })) => ["fused_conv"]);
fusion_test!(conv_bn_sigmoid_fuses, conv_bn_act(Some(UnaryOp::Sigmoid)) => ["fused_conv"]);
fusion_test!(conv_bn_gelu_fuses, conv_bn_act(Some(UnaryOp::Gelu { approximate: true })) => ["fused_conv"]);
fusion_test!(conv_silu_is_one_op, conv_silu(false) => ["fused_conv"]);
fusion_test!(conv_silu_sigmoid_first_is_one_op, conv_silu(true) => ["fused_conv"]);
fusion_test!(lcnet_block_is_one_op, conv_bias_affine_hswish_affine() => ["fused_conv"]);
fusion_test!(conv_residual_relu_fuses, residual_relu() => ["fused_conv"]);
fusion_test!(se_block_is_one_op, se_block() => ["se_block"]);
fusion_test!(fc_bias_gelu_fuses, fc_gelu() => ["fused_matmul"]);
fusion_test!(skip_layer_norm_fuses, skip_ln() => ["skip_layer_norm"]);
fusion_test!(hard_swish_recognized, hard_swish_pattern() => ["hard_swish"]);
fusion_test!(constant_subgraphs_fold, weights_only_subgraph() => ["add", "reshape"]);
fusion_test!(shared_output_is_not_recomputed, shared_conv_output() => ["conv2d", "sigmoid", "relu"]);

fn conv_transpose_bias_bn() -> Graph {
    let mut b = B::new();
    let x = b.input(&[1, 4, 3, 3]);
    let w = b.w(rand(&[4, 3, 2, 2], 1));
    let ct = Op::Conv2dTranspose(ConvTranspose {
        strides: [2, 2],
        padding: Padding::Explicit([0; 4]),
        dilations: [1, 1],
        groups: 2,
        output_padding: [0, 0],
        output_size: None,
        layout: Layout::Nchw,
        has_bias: false,
    });
    let y = b.op(ct, &[x, w]);
    let bias = b.w(rand(&[6], 2));
    let y = b.op(add(1), &[y, bias]);
    let (s, t, m, v) = (
        b.w(rand(&[6], 3)),
        b.w(rand(&[6], 4)),
        b.w(rand(&[6], 5)),
        b.w(pos(&[6], 6)),
    );
    let y = b.op(bn(), &[y, s, t, m, v]);
    b.out(&[y])
}

fn fc_bn() -> Graph {
    let mut b = B::new();
    let x = b.input(&[3, 8]);
    let w = b.w(rand(&[8, 5], 1));
    let bias = b.w(rand(&[5], 2));
    let m = b.op(
        Op::MatMul(MatMul {
            trans_x: false,
            trans_y: false,
            alpha: 1.0,
        }),
        &[x, w],
    );
    let y = b.op(add(-1), &[m, bias]);
    let (s, t, mu, v) = (
        b.w(rand(&[5], 3)),
        b.w(rand(&[5], 4)),
        b.w(rand(&[5], 5)),
        b.w(pos(&[5], 6)),
    );
    let y = b.op(bn(), &[y, s, t, mu, v]);
    b.out(&[y])
}

fn view_chains() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 3, 4]);
    let t = b.op(
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1],
        }),
        &[x],
    );
    let t = b.op(
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1],
        }),
        &[t],
    );
    let u = b.op(Op::Unsqueeze(Unsqueeze { axes: vec![1] }), &[t]);
    let s = b.op(Op::Squeeze(Squeeze { axes: vec![1] }), &[u]);
    let r = b.op(
        Op::Reshape(Reshape {
            shape: vec![6, 4],
            shape_input: ListInput::Attr,
        }),
        &[s],
    );
    let r = b.op(
        Op::Reshape(Reshape {
            shape: vec![4, 6],
            shape_input: ListInput::Attr,
        }),
        &[r],
    );
    let y = b.op(un(UnaryOp::Sigmoid), &[r]);
    b.out(&[y])
}

fn add_relu_graph() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 3]);
    let y = b.input(&[2, 3]);
    let s = b.op(add(-1), &[x, y]);
    let r = b.op(un(UnaryOp::Relu), &[s]);
    b.out(&[r])
}

fn scaled_qk() -> Graph {
    let mut b = B::new();
    let q = b.input(&[2, 4, 8]);
    let k = b.input(&[2, 5, 8]);
    let qs = b.op(
        un(UnaryOp::Scale {
            scale: 0.25,
            bias: 0.0,
            bias_after_scale: true,
        }),
        &[q],
    );
    let s = b.op(
        Op::MatMul(MatMul {
            trans_x: false,
            trans_y: true,
            alpha: 1.0,
        }),
        &[qs, k],
    );
    b.out(&[s])
}

fusion_test!(conv_transpose_bias_and_bn_fold, conv_transpose_bias_bn() => ["conv2d_transpose"]);
fusion_test!(fc_batch_norm_folds, fc_bn() => ["fused_matmul"]);
fusion_test!(view_chains_collapse, view_chains() => ["reshape", "sigmoid"]);
fusion_test!(add_relu_fuses, add_relu_graph() => ["fused_binary"]);
fusion_test!(scale_moves_into_matmul_alpha, scaled_qk() => ["matmul"]);

fn layer_norm_primitives(square: bool) -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 3, 8]);
    let mean = || {
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![-1],
            keep_dim: true,
            reduce_all: false,
        })
    };
    let m = b.op(mean(), &[x]);
    let d = b.op(
        Op::Binary(Binary {
            op: BinaryOp::Sub,
            axis: -1,
        }),
        &[x, m],
    );
    let sq = if square {
        b.op(un(UnaryOp::Square), &[d])
    } else {
        b.op(mul(-1), &[d, d])
    };
    let v = b.op(mean(), &[sq]);
    let eps = b.w(std::sync::Arc::new(
        kayak_ir::Tensor::from_f32s(&[1], vec![1e-5]).unwrap(),
    ));
    let v = b.op(add(-1), &[v, eps]);
    let sd = b.op(un(UnaryOp::Sqrt), &[v]);
    let n = b.op(
        Op::Binary(Binary {
            op: BinaryOp::Div,
            axis: -1,
        }),
        &[d, sd],
    );
    let (g, t) = (b.w(rand(&[8], 1)), b.w(rand(&[8], 2)));
    let y = b.op(mul(-1), &[n, g]);
    let y = b.op(add(-1), &[y, t]);
    b.out(&[y])
}

fusion_test!(layer_norm_recognized, layer_norm_primitives(false) => ["layer_norm"]);
fusion_test!(layer_norm_recognized_with_square, layer_norm_primitives(true) => ["layer_norm"]);

fn scalar(b: &mut B, v: f32) -> kayak_ir::ValueId {
    b.w(std::sync::Arc::new(
        kayak_ir::Tensor::from_f32s(&[1], vec![v]).unwrap(),
    ))
}

fn gelu_erf_graph() -> Graph {
    // Paddle's decomposition: x * 0.5 * (1 + erf(x * 0.70710678))
    let mut b = B::new();
    let x = b.input(&[2, 9]);
    let half = scalar(&mut b, 0.5);
    let r = scalar(&mut b, std::f32::consts::FRAC_1_SQRT_2);
    let one = scalar(&mut b, 1.0);
    let xs = b.op(mul(-1), &[x, r]);
    let e = b.op(un(UnaryOp::Erf), &[xs]);
    let e1 = b.op(add(-1), &[e, one]);
    let xh = b.op(mul(-1), &[x, half]);
    let y = b.op(mul(-1), &[xh, e1]);
    b.out(&[y])
}

fn gelu_tanh_graph() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 9]);
    let cube = b.op(un(UnaryOp::PowScalar { factor: 3.0 }), &[x]);
    let k = scalar(&mut b, 0.044715);
    let kc = b.op(mul(-1), &[cube, k]);
    let inner = b.op(add(-1), &[x, kc]);
    let c = scalar(&mut b, (2.0f64 / std::f64::consts::PI).sqrt() as f32);
    let ci = b.op(mul(-1), &[inner, c]);
    let t = b.op(un(UnaryOp::Tanh), &[ci]);
    let one = scalar(&mut b, 1.0);
    let t1 = b.op(add(-1), &[t, one]);
    let xt = b.op(mul(-1), &[x, t1]);
    let half = scalar(&mut b, 0.5);
    let y = b.op(mul(-1), &[xt, half]);
    b.out(&[y])
}

fusion_test!(gelu_recognized_from_erf, gelu_erf_graph() => ["gelu"]);
fusion_test!(gelu_recognized_from_tanh, gelu_tanh_graph() => ["gelu"]);

fn attention_block() -> Graph {
    // BERT-style self-attention with Q/K/V projections of one input: H = 2 heads, D = 4.
    let mut b = B::new();
    let x = b.input(&[2, 3, 8]);
    let mask = b.input(&[2, 1, 1, 3]);
    let mm = Op::MatMul(MatMul {
        trans_x: false,
        trans_y: false,
        alpha: 1.0,
    });
    let proj = |b: &mut B, seed: u64| {
        let w = b.w(rand(&[8, 8], seed));
        let bias = b.w(rand(&[8], seed + 10));
        let m = b.op(mm.clone(), &[x, w]);
        let y = b.op(add(-1), &[m, bias]);
        let r = b.op(
            Op::Reshape(Reshape {
                shape: vec![0, 0, 2, 4],
                shape_input: ListInput::Attr,
            }),
            &[y],
        );
        b.op(
            Op::Transpose(Transpose {
                perm: vec![0, 2, 1, 3],
            }),
            &[r],
        )
    };
    let (q, k, v) = (proj(&mut b, 1), proj(&mut b, 2), proj(&mut b, 3));
    let qs = b.op(
        un(UnaryOp::Scale {
            scale: 0.5,
            bias: 0.0,
            bias_after_scale: true,
        }),
        &[q],
    );
    let s = b.op(
        Op::MatMul(MatMul {
            trans_x: false,
            trans_y: true,
            alpha: 1.0,
        }),
        &[qs, k],
    );
    let s = b.op(add(-1), &[s, mask]);
    let p = b.op(Op::Softmax(Softmax { axis: -1 }), &[s]);
    let o = b.op(mm, &[p, v]);
    let o = b.op(
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1, 3],
        }),
        &[o],
    );
    let o = b.op(
        Op::Reshape(Reshape {
            shape: vec![0, 0, 8],
            shape_input: ListInput::Attr,
        }),
        &[o],
    );
    b.out(&[o])
}

fusion_test!(attention_with_packed_qkv, attention_block() => ["attention", "fused_matmul"]);

fn noop_views() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 3]);
    let r = b.op(
        Op::Reshape(Reshape {
            shape: vec![0, -1],
            shape_input: ListInput::Attr,
        }),
        &[x],
    );
    let f = b.op(Op::Flatten(Flatten::Range { start: 1, stop: 1 }), &[r]);
    let s = b.op(Op::Squeeze(Squeeze { axes: vec![1] }), &[f]);
    let y = b.op(un(UnaryOp::Sigmoid), &[s]);
    b.out(&[y])
}

fn mul_bias_relu() -> Graph {
    let mut b = B::new();
    let x = b.input(&[2, 3, 4]);
    let w = b.w(rand(&[4, 5], 1));
    let bias = b.w(rand(&[5], 2));
    let m = b.op(
        Op::Mul(Mul {
            x_num_col_dims: 2,
            y_num_col_dims: 1,
        }),
        &[x, w],
    );
    let y = b.op(add(-1), &[m, bias]);
    let y = b.op(un(UnaryOp::Relu), &[y]);
    b.out(&[y])
}

fusion_test!(noop_views_vanish, noop_views() => ["sigmoid"]);
fusion_test!(mul_bias_relu_is_one_fc, mul_bias_relu() => ["fused_matmul"]);
