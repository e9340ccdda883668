//! Random well-typed graphs built from the shapes the rules look for (conv → bn → act
//! chains with affines and residuals, SE blocks, fully-connected layers, scalar arithmetic,
//! view chains), with preconditions sometimes met and sometimes not; each is optimized with
//! the full pipeline and must compute what the original computes.

mod common;
use common::*;
use kayak_ir::ops::*;
use kayak_ir::{Graph, Op, ValueId};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

fn act(r: &mut Rng) -> UnaryOp {
    match r.below(9) {
        0 => UnaryOp::Relu,
        1 => UnaryOp::Relu6 { threshold: 6.0 },
        2 => UnaryOp::LeakyRelu { alpha: 0.1 },
        3 => UnaryOp::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        },
        4 => UnaryOp::HardSigmoid {
            slope: 0.2,
            offset: 0.5,
        },
        5 => UnaryOp::Sigmoid,
        6 => UnaryOp::Swish { beta: 1.0 },
        7 => UnaryOp::Gelu {
            approximate: r.coin(),
        },
        _ => UnaryOp::Tanh,
    }
}

/// A random CNN block sequence on `[1, c, h, w]`.
fn cnn(seed: u64) -> Graph {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut b = B::new();
    let c = 4 + 4 * r.below(2);
    let x = b.input(&[1 + r.below(2), c, 6, 6]);
    let mut y = x;
    let mut k = seed * 100;
    let mut w = |b: &mut B, s: &[usize]| {
        k += 1;
        b.w(rand(s, k))
    };
    for _ in 0..2 + r.below(4) {
        let input = y;
        let groups = if r.coin() { 1 } else { c };
        let wt = w(&mut b, &[c, c / groups, 3, 3]);
        y = b.op(conv(groups), &[y, wt]);
        if r.coin() {
            let bias = w(&mut b, &[c]);
            // axis 1 (per channel) or, sometimes, a shape that is not a channel bias.
            y = if r.below(4) > 0 {
                b.op(add(1), &[y, bias])
            } else {
                let wide = w(&mut b, &[6]);
                b.op(add(-1), &[y, wide])
            };
        }
        if r.coin() {
            let (s, t, m) = (w(&mut b, &[c]), w(&mut b, &[c]), w(&mut b, &[c]));
            let v = b.w(pos(&[c], seed * 7 + r.below(1000) as u64));
            y = b.op(bn(), &[y, s, t, m, v]);
        }
        if r.coin() {
            let s = w(&mut b, &[1]);
            y = b.op(mul(-1), &[s, y]);
        }
        if r.coin() {
            y = b.op(add(-1), &[y, input]);
        }
        if r.below(4) > 0 {
            y = b.op(un(act(&mut r)), &[y]);
        }
        if r.coin() {
            let (s, t) = (w(&mut b, &[1]), w(&mut b, &[1]));
            y = b.op(mul(-1), &[y, s]);
            y = b.op(add(-1), &[y, t]);
        }
        if r.below(3) == 0 {
            // SE block, sometimes squeezing with max instead of average (no fusion then).
            let avg = r.coin();
            let pool = Op::Pool2d(Pool {
                kind: if avg { PoolKind::Avg } else { PoolKind::Max },
                ksize: [1, 1],
                strides: [1, 1],
                padding: Padding::Explicit([0; 4]),
                global: false,
                adaptive: true,
                ceil_mode: false,
                exclusive: true,
                layout: Layout::Nchw,
            });
            let p = b.op(pool, &[y]);
            let (w1, b1, w2, b2) = (
                w(&mut b, &[2, c, 1, 1]),
                w(&mut b, &[2]),
                w(&mut b, &[c, 2, 1, 1]),
                w(&mut b, &[c]),
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
            y = b.op(mul(-1), &[y, g]);
        }
    }
    b.out(&[y])
}

/// A random fully-connected / normalization / view sequence on `[2, 3, d]`.
fn mlp(seed: u64) -> Graph {
    let mut r = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let mut b = B::new();
    let d = 8;
    let x = b.input(&[2, 3, d]);
    let mut y: ValueId = x;
    let mut k = seed * 1000;
    for _ in 0..2 + r.below(4) {
        k += 10;
        match r.below(5) {
            0 | 1 => {
                let w = b.w(rand(&[d, d], k));
                let m = b.op(
                    Op::MatMul(MatMul {
                        trans_x: false,
                        trans_y: r.coin(),
                        alpha: 1.0,
                    }),
                    &[y, w],
                );
                let bias = b.w(rand(&[d], k + 1));
                y = b.op(add(-1), &[m, bias]);
                if r.coin() {
                    y = b.op(un(act(&mut r)), &[y]);
                }
            }
            2 => {
                let other = b.op(un(UnaryOp::Tanh), &[y]);
                let s = b.op(add(-1), &[y, other]);
                let (g, t) = (b.w(rand(&[d], k + 2)), b.w(rand(&[d], k + 3)));
                y = b.op(
                    Op::LayerNorm(LayerNorm {
                        begin_norm_axis: 2,
                        epsilon: 1e-5,
                        has_scale: true,
                        has_bias: true,
                    }),
                    &[s, g, t],
                );
            }
            3 => {
                let t = b.op(
                    Op::Transpose(Transpose {
                        perm: vec![0, 2, 1],
                    }),
                    &[y],
                );
                let t = if r.coin() {
                    b.op(
                        Op::Transpose(Transpose {
                            perm: vec![0, 2, 1],
                        }),
                        &[t],
                    )
                } else {
                    b.op(
                        Op::Transpose(Transpose {
                            perm: vec![1, 0, 2],
                        }),
                        &[t],
                    )
                };
                let n = if r.coin() { 6 * d } else { 2 };
                let f = b.op(
                    Op::Reshape(Reshape {
                        shape: vec![n as i64, -1],
                        shape_input: ListInput::Attr,
                    }),
                    &[t],
                );
                let back = b.op(
                    Op::Reshape(Reshape {
                        shape: vec![2, 3, d as i64],
                        shape_input: ListInput::Attr,
                    }),
                    &[f],
                );
                y = b.op(un(UnaryOp::Sigmoid), &[back]);
            }
            _ => {
                let s = b.w(rand(&[1], k + 4));
                let t = b.w(rand(&[1], k + 5));
                let a = b.op(mul(-1), &[y, s]);
                let a = b.op(
                    un(UnaryOp::Scale {
                        scale: 2.0,
                        bias: 0.5,
                        bias_after_scale: r.coin(),
                    }),
                    &[a],
                );
                y = b.op(add(-1), &[t, a]);
            }
        }
    }
    b.out(&[y])
}

#[test]
fn random_cnn_graphs_optimize_soundly() {
    let mut fused = 0;
    for seed in 1..=60 {
        let g = cnn(seed);
        let o = optimize_checked(&g);
        assert!(o.report.ops_after <= o.report.ops_before, "seed {seed}");
        fused += o.report.rules_applied.values().sum::<usize>();
    }
    assert!(
        fused > 100,
        "the generators should exercise the rules ({fused} applications)"
    );
}

#[test]
fn random_mlp_graphs_optimize_soundly() {
    for seed in 1..=60 {
        let g = mlp(seed);
        let o = optimize_checked(&g);
        assert!(o.report.ops_after <= o.report.ops_before, "seed {seed}");
    }
}
