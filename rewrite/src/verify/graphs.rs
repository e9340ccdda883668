//! Random well-typed graphs for property tests: the shapes the fusion rules look for
//! (conv → bn → act chains with affines and residuals, SE blocks, fully-connected layers,
//! attention blocks, layer-norm and GELU primitives, embeddings), with their preconditions
//! sometimes met and sometimes not.
//!
//! Every generator is a pure function of `(seed, size)`: `size` (1 to [`MAX_SIZE`]) bounds
//! the number of blocks and the dimensions, so shrinking a failure means trying smaller
//! sizes. Values are drawn so every op stays in its domain (variances and divisors
//! positive, ids in range).

use super::Rng;
use kayak_ir::ops::*;
use kayak_ir::{Graph, Op, Tensor, ValueId};
use std::sync::Arc;

/// Largest `size` the generators take.
pub const MAX_SIZE: usize = 4;

/// A random graph with values for its inputs.
#[derive(Debug, Clone)]
pub struct RandomGraph {
    /// The graph (outputs set).
    pub graph: Graph,
    /// One tensor per graph input.
    pub inputs: Vec<Tensor>,
    /// The generator that made it.
    pub kind: &'static str,
    /// Its seed.
    pub seed: u64,
    /// Its size.
    pub size: usize,
}

/// A generator: `(seed, size)` to a graph.
pub type Generator = fn(u64, usize) -> RandomGraph;

/// The generators, by name.
pub const GENERATORS: &[(&str, Generator)] = &[
    ("cnn", cnn),
    ("mlp", mlp),
    ("attention", attention),
    ("layer_norm", layer_norm_primitives),
    ("gelu", gelu_primitives),
    ("embedding", embedding_ln),
];

/// A graph from a generator chosen by the seed.
pub fn random_graph(seed: u64, size: usize) -> RandomGraph {
    let k = (seed % GENERATORS.len() as u64) as usize;
    (GENERATORS[k].1)(seed / GENERATORS.len() as u64, size)
}

pub use kayak_ir::sample::{positive, uniform};

/// A graph builder that also draws input values.
pub(crate) struct B {
    pub g: Graph,
    pub inputs: Vec<Tensor>,
    pub r: Rng,
    n: usize,
}

impl B {
    pub fn new(seed: u64) -> B {
        B {
            g: Graph::new(),
            inputs: vec![],
            r: Rng::new(seed),
            n: 0,
        }
    }
    fn name(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}{}", self.n)
    }
    /// An input with the given values.
    pub fn input_with(&mut self, t: Tensor) -> ValueId {
        let name = format!("x{}", self.g.inputs.len());
        let v = self
            .g
            .add_input(&name, t.type_info())
            .expect("input names are fresh");
        self.inputs.push(t);
        v
    }
    pub fn input(&mut self, shape: &[usize]) -> ValueId {
        let t = uniform(&mut self.r, shape);
        self.input_with(t)
    }
    pub fn konst(&mut self, t: Tensor) -> ValueId {
        let name = self.name("w");
        self.g
            .add_const(&name, Arc::new(t))
            .expect("const names are fresh")
    }
    pub fn w(&mut self, shape: &[usize]) -> ValueId {
        let t = uniform(&mut self.r, shape);
        self.konst(t)
    }
    pub fn pos(&mut self, shape: &[usize]) -> ValueId {
        let t = positive(&mut self.r, shape);
        self.konst(t)
    }
    pub fn scalar(&mut self, v: f32) -> ValueId {
        self.konst(Tensor::from_f32s(&[1], vec![v]).expect("one value"))
    }
    /// Adds a node; generators only build well-typed nodes.
    pub fn op(&mut self, op: Op, ins: &[ValueId]) -> ValueId {
        let name = self.name("v");
        self.g
            .add_node(op, ins.to_vec(), &[&name], &name)
            .unwrap_or_else(|e| panic!("generator built an ill-typed node: {e}"))[0]
    }
    pub fn out(mut self, v: &[ValueId], kind: &'static str, seed: u64, size: usize) -> RandomGraph {
        for &o in v {
            self.g.add_output(o);
        }
        RandomGraph {
            graph: self.g,
            inputs: self.inputs,
            kind,
            seed,
            size,
        }
    }
}

pub(crate) fn conv(groups: usize, k: usize) -> Op {
    Op::Conv2d(Conv {
        strides: [1, 1],
        padding: Padding::Explicit([k / 2; 4]),
        dilations: [1, 1],
        groups,
        layout: Layout::Nchw,
        has_bias: false,
    })
}
fn add(axis: i64) -> Op {
    Op::Binary(Binary {
        op: BinaryOp::Add,
        axis,
    })
}
fn mul(axis: i64) -> Op {
    Op::Binary(Binary {
        op: BinaryOp::Mul,
        axis,
    })
}
fn un(u: UnaryOp) -> Op {
    Op::Unary(u)
}

/// A random activation as models fuse them (`kayak_ir::ops::sample_activation`).
pub use kayak_ir::ops::sample_activation as activation;

/// Conv blocks on `[N, C, H, W]`: conv (grouped or not), bias (per channel, or a shape
/// that is not one), batch norm, scalar scales, residuals, activations, SE blocks.
pub fn cnn(seed: u64, size: usize) -> RandomGraph {
    let size = size.clamp(1, MAX_SIZE);
    let mut b = B::new(seed ^ 0xC0);
    let c = 2 * (1 + b.r.below(size.min(3)));
    let hw = 3 + b.r.below(size + 1);
    let n = 1 + b.r.below(2);
    let x = b.input(&[n, c, hw, hw]);
    let mut y = x;
    for _ in 0..1 + b.r.below(size + 1) {
        let input = y;
        let groups = if b.r.coin() { 1 } else { c };
        let k = if b.r.below(3) == 0 { 1 } else { 3 };
        let wt = b.w(&[c, c / groups, k, k]);
        y = b.op(conv(groups, k), &[y, wt]);
        if b.r.coin() {
            y = if b.r.below(4) > 0 {
                let bias = b.w(&[c]);
                b.op(add(1), &[y, bias])
            } else {
                let wide = b.w(&[hw]);
                b.op(add(-1), &[y, wide])
            };
        }
        if b.r.coin() {
            let (s, t, m) = (b.w(&[c]), b.w(&[c]), b.w(&[c]));
            let v = b.pos(&[c]);
            let epsilon = [1e-5, 1e-3, 0.1][b.r.below(3)];
            y = b.op(
                Op::BatchNorm(BatchNorm {
                    epsilon,
                    layout: Layout::Nchw,
                }),
                &[y, s, t, m, v],
            );
        }
        if b.r.coin() {
            let s = b.w(&[1]);
            y = b.op(mul(-1), &[s, y]);
        }
        if b.r.coin() {
            y = b.op(add(-1), &[y, input]);
        }
        if b.r.below(4) > 0 {
            let a = activation(&mut b.r);
            y = b.op(un(a), &[y]);
        }
        if b.r.coin() {
            let (s, t) = (b.w(&[1]), b.w(&[1]));
            y = b.op(mul(-1), &[y, s]);
            y = b.op(add(-1), &[y, t]);
        }
        if b.r.below(3) == 0 {
            // SE block, sometimes squeezing with max instead of average (no fusion then).
            let avg = b.r.coin();
            let kind = if avg { PoolKind::Avg } else { PoolKind::Max };
            let pool = Op::Pool2d(Pool::adaptive(kind, [1, 1]));
            let p = b.op(pool, &[y]);
            let (w1, b1, w2, b2) = (b.w(&[2, c, 1, 1]), b.w(&[2]), b.w(&[c, 2, 1, 1]), b.w(&[c]));
            let h = b.op(conv(1, 1), &[p, w1]);
            let h = b.op(add(1), &[h, b1]);
            let h = b.op(un(UnaryOp::Relu), &[h]);
            let g = b.op(conv(1, 1), &[h, w2]);
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
        if b.r.below(5) == 0 {
            // A transposed conv with bias and batch norm (decoder heads).
            let w = b.w(&[c, c, 2, 2]);
            let bias = b.w(&[c]);
            y = b.op(
                Op::Conv2dTranspose(ConvTranspose {
                    strides: [2, 2],
                    padding: Padding::Explicit([0; 4]),
                    dilations: [1, 1],
                    groups: 1,
                    output_padding: [0, 0],
                    output_size: None,
                    layout: Layout::Nchw,
                    has_bias: false,
                }),
                &[y, w],
            );
            y = b.op(add(1), &[y, bias]);
            let (s, t, m) = (b.w(&[c]), b.w(&[c]), b.w(&[c]));
            let v = b.pos(&[c]);
            y = b.op(
                Op::BatchNorm(BatchNorm {
                    epsilon: 1e-5,
                    layout: Layout::Nchw,
                }),
                &[y, s, t, m, v],
            );
            let pool = Op::Pool2d(Pool::window(PoolKind::Max, [2, 2], [2, 2]));
            y = b.op(pool, &[y]);
        }
    }
    b.out(&[y], "cnn", seed, size)
}

/// Fully-connected layers, layer norms over residual sums, transposes and reshapes, scalar
/// arithmetic on `[B, S, D]`.
pub fn mlp(seed: u64, size: usize) -> RandomGraph {
    let size = size.clamp(1, MAX_SIZE);
    let mut b = B::new(seed ^ 0x31);
    let d = 2 * (1 + b.r.below(size + 1));
    let (bs, s) = (1 + b.r.below(2), 1 + b.r.below(size + 1));
    let x = b.input(&[bs, s, d]);
    let mut y: ValueId = x;
    for _ in 0..1 + b.r.below(size + 1) {
        match b.r.below(6) {
            0 | 1 => {
                let trans_y = b.r.coin();
                let w = b.w(&[d, d]);
                let m = b.op(
                    Op::MatMul(MatMul {
                        trans_x: false,
                        trans_y,
                        alpha: 1.0,
                    }),
                    &[y, w],
                );
                let bias = b.w(&[d]);
                y = b.op(add(-1), &[m, bias]);
                if b.r.coin() {
                    let a = activation(&mut b.r);
                    y = b.op(un(a), &[y]);
                }
            }
            2 => {
                let other = b.op(un(UnaryOp::Tanh), &[y]);
                let sum = b.op(add(-1), &[y, other]);
                let (g, t) = (b.w(&[d]), b.w(&[d]));
                let epsilon = [1e-5, 1e-3, 0.1, 1.0][b.r.below(4)];
                y = b.op(
                    Op::LayerNorm(LayerNorm {
                        begin_norm_axis: 2,
                        epsilon,
                        has_scale: true,
                        has_bias: true,
                    }),
                    &[sum, g, t],
                );
            }
            3 => {
                let t = b.op(
                    Op::Transpose(Transpose {
                        perm: vec![0, 2, 1],
                    }),
                    &[y],
                );
                let perm = if b.r.coin() {
                    vec![0, 2, 1]
                } else {
                    vec![1, 0, 2]
                };
                let t = b.op(Op::Transpose(Transpose { perm }), &[t]);
                let rows = if b.r.coin() { (bs * s) as i64 } else { 1 };
                let f = b.op(
                    Op::Reshape(Reshape {
                        shape: vec![rows, -1],
                        shape_input: ListInput::Attr,
                    }),
                    &[t],
                );
                let back = b.op(
                    Op::Reshape(Reshape {
                        shape: vec![bs as i64, s as i64, d as i64],
                        shape_input: ListInput::Attr,
                    }),
                    &[f],
                );
                y = b.op(un(UnaryOp::Sigmoid), &[back]);
            }
            4 => {
                // Paddle's `mul` (fc without bias), flattening [B, S, D] to rows.
                let w = b.w(&[d, d]);
                y = b.op(
                    Op::Mul(kayak_ir::ops::Mul {
                        x_num_col_dims: 2,
                        y_num_col_dims: 1,
                    }),
                    &[y, w],
                );
            }
            _ => {
                let (sc, t) = (b.w(&[1]), b.w(&[1]));
                let a = b.op(mul(-1), &[y, sc]);
                let bias_after_scale = b.r.coin();
                let a = b.op(
                    un(UnaryOp::Scale {
                        scale: 2.0,
                        bias: 0.5,
                        bias_after_scale,
                    }),
                    &[a],
                );
                y = b.op(add(-1), &[t, a]);
            }
        }
    }
    b.out(&[y], "mlp", seed, size)
}

/// BERT-style self-attention: Q/K/V projections of one input, heads split, scaled `QKᵀ`
/// plus a mask, softmax, `·V`, heads merged — sometimes with a wrong perm, a softmax over
/// another axis, or a biased scale (no fusion then).
pub fn attention(seed: u64, size: usize) -> RandomGraph {
    let size = size.clamp(1, MAX_SIZE);
    let mut b = B::new(seed ^ 0xA7);
    let heads = 1 + b.r.below(size.min(3));
    let hd = 1 + b.r.below(size + 1);
    let e = heads * hd;
    let (bs, s) = (1 + b.r.below(2), 1 + b.r.below(size + 2));
    let x = b.input(&[bs, s, e]);
    let with_mask = b.r.below(4) > 0;
    let mask = with_mask.then(|| b.input(&[bs, 1, 1, s]));
    let mm = |tx: bool, ty: bool| {
        Op::MatMul(MatMul {
            trans_x: tx,
            trans_y: ty,
            alpha: 1.0,
        })
    };
    // [B, S, H·D] → [B, S, H, D] → permuted (heads first).
    let split_heads = |b: &mut B, y: ValueId, perm: Vec<usize>| {
        let r = b.op(
            Op::Reshape(Reshape {
                shape: vec![0, 0, heads as i64, hd as i64],
                shape_input: ListInput::Attr,
            }),
            &[y],
        );
        b.op(Op::Transpose(Transpose { perm }), &[r])
    };
    let proj = |b: &mut B| {
        let w = b.w(&[e, e]);
        let bias = b.w(&[e]);
        let m = b.op(mm(false, false), &[x, w]);
        b.op(add(-1), &[m, bias])
    };
    let (q, k, v) = (proj(&mut b), proj(&mut b), proj(&mut b));
    let (q, v) = (
        split_heads(&mut b, q, vec![0, 2, 1, 3]),
        split_heads(&mut b, v, vec![0, 2, 1, 3]),
    );
    // K as [B, H, S, D] with trans_y, or already as [B, H, D, S].
    let k_t = b.r.coin();
    let k = split_heads(
        &mut b,
        k,
        if k_t {
            vec![0, 2, 1, 3]
        } else {
            vec![0, 2, 3, 1]
        },
    );
    let scale = 1.0 / (hd as f32).sqrt();
    let bias = if b.r.below(6) == 0 { 0.25 } else { 0.0 };
    let qs = b.op(
        un(UnaryOp::Scale {
            scale,
            bias,
            bias_after_scale: true,
        }),
        &[q],
    );
    let mut logits = b.op(mm(false, k_t), &[qs, k]);
    if let Some(m) = mask {
        logits = b.op(add(-1), &[logits, m]);
    }
    let axis = if b.r.below(4) == 0 { 2 } else { -1 };
    let p = b.op(Op::Softmax(Softmax { axis }), &[logits]);
    let o = b.op(mm(false, false), &[p, v]);
    let o = b.op(
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1, 3],
        }),
        &[o],
    );
    let o = b.op(
        Op::Reshape(Reshape {
            shape: vec![0, 0, e as i64],
            shape_input: ListInput::Attr,
        }),
        &[o],
    );
    // A residual and layer norm after it, as in an encoder layer.
    let o = if b.r.coin() {
        let sum = b.op(add(-1), &[o, x]);
        let (g, t) = (b.w(&[e]), b.w(&[e]));
        b.op(
            Op::LayerNorm(LayerNorm {
                begin_norm_axis: 2,
                epsilon: 1e-5,
                has_scale: true,
                has_bias: true,
            }),
            &[sum, g, t],
        )
    } else {
        o
    };
    b.out(&[o], "attention", seed, size)
}

/// Layer norm written out in primitives (as exported by frameworks without a fused op):
/// mean, centered square (as `x·x` or `square`), mean, `+ε`, sqrt, divide, scale, shift —
/// sometimes over a non-last axis or with a non-scalar ε (no fusion then).
pub fn layer_norm_primitives(seed: u64, size: usize) -> RandomGraph {
    let size = size.clamp(1, MAX_SIZE);
    let mut b = B::new(seed ^ 0x1E);
    let d = 1 + b.r.below(size + 2);
    let sh = [1 + b.r.below(2), 1 + b.r.below(size + 1), d];
    let x = b.input(&sh);
    let axis = if b.r.below(5) == 0 { 1 } else { -1 };
    let mean = |ax: i64| {
        Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: vec![ax],
            keep_dim: true,
            reduce_all: false,
        })
    };
    let m = b.op(mean(axis), &[x]);
    let c = b.op(
        Op::Binary(Binary {
            op: BinaryOp::Sub,
            axis: -1,
        }),
        &[x, m],
    );
    let sq = if b.r.coin() {
        b.op(un(UnaryOp::Square), &[c])
    } else {
        b.op(mul(-1), &[c, c])
    };
    let var = b.op(mean(axis), &[sq]);
    let eps = [1e-5, 1e-3, 0.1, 1.0][b.r.below(4)];
    let e = b.scalar(eps);
    let var = b.op(add(-1), &[var, e]);
    let sd = b.op(un(UnaryOp::Sqrt), &[var]);
    let n = b.op(
        Op::Binary(Binary {
            op: BinaryOp::Div,
            axis: -1,
        }),
        &[c, sd],
    );
    let (g, t) = (b.w(&[d]), b.w(&[d]));
    let y = b.op(mul(-1), &[n, g]);
    let y = b.op(add(-1), &[y, t]);
    b.out(&[y], "layer_norm", seed, size)
}

/// GELU written out: `x·0.5·(1 + erf(x/√2))` or the tanh form, in the operand orders
/// exporters use — sometimes with a wrong constant (no fusion then).
pub fn gelu_primitives(seed: u64, size: usize) -> RandomGraph {
    let size = size.clamp(1, MAX_SIZE);
    let mut b = B::new(seed ^ 0x6E);
    let sh = [1 + b.r.below(2), 1 + b.r.below(size * 3)];
    let x = b.input(&sh);
    let wrong = b.r.below(6) == 0;
    let half = b.scalar(if wrong { 0.6 } else { 0.5 });
    let one = b.scalar(1.0);
    let y = if b.r.coin() {
        let r = b.scalar(std::f32::consts::FRAC_1_SQRT_2);
        let xs = b.op(mul(-1), &[x, r]);
        let e = b.op(un(UnaryOp::Erf), &[xs]);
        let e1 = b.op(add(-1), &[e, one]);
        if b.r.coin() {
            let xh = b.op(mul(-1), &[x, half]);
            b.op(mul(-1), &[xh, e1])
        } else {
            let xe = b.op(mul(-1), &[e1, x]);
            b.op(mul(-1), &[xe, half])
        }
    } else {
        let cube = b.op(un(UnaryOp::PowScalar { factor: 3.0 }), &[x]);
        let k = b.scalar(0.044715);
        let kc = b.op(mul(-1), &[cube, k]);
        let inner = b.op(add(-1), &[x, kc]);
        let c = b.scalar((2.0f64 / std::f64::consts::PI).sqrt() as f32);
        let ci = b.op(mul(-1), &[inner, c]);
        let t = b.op(un(UnaryOp::Tanh), &[ci]);
        let t1 = b.op(add(-1), &[t, one]);
        let xt = b.op(mul(-1), &[x, t1]);
        b.op(mul(-1), &[xt, half])
    };
    b.out(&[y], "gelu", seed, size)
}

/// ERNIE-style embeddings: word + position + type lookups summed, then layer norm.
pub fn embedding_ln(seed: u64, size: usize) -> RandomGraph {
    let size = size.clamp(1, MAX_SIZE);
    let mut b = B::new(seed ^ 0xE3);
    let (bs, s) = (1 + b.r.below(2), 1 + b.r.below(size + 1));
    let e = 2 * (1 + b.r.below(size));
    let mut ids = Vec::new();
    let mut tables = Vec::new();
    for vocab in [3 + size * 2, s + 1, 2] {
        let v: Vec<i64> = (0..bs * s).map(|_| b.r.below(vocab) as i64).collect();
        let t = Tensor::from_i64s(&v)
            .reshape(&[bs, s])
            .expect("ids reshape to [B, S]");
        ids.push(b.input_with(t));
        tables.push(b.w(&[vocab, e]));
    }
    let emb = |b: &mut B, k: usize, ids: &[ValueId], tables: &[ValueId]| {
        let padding_idx = if k == 0 && b.r.coin() { Some(0) } else { None };
        b.op(
            Op::Embedding(Embedding { padding_idx }),
            &[ids[k], tables[k]],
        )
    };
    let a = emb(&mut b, 0, &ids, &tables);
    let p = emb(&mut b, 1, &ids, &tables);
    let t = emb(&mut b, 2, &ids, &tables);
    let s1 = b.op(add(-1), &[a, p]);
    let s2 = b.op(add(-1), &[s1, t]);
    let (g, t) = (b.w(&[e]), b.w(&[e]));
    let y = b.op(
        Op::LayerNorm(LayerNorm {
            begin_norm_axis: 2,
            epsilon: 1e-5,
            has_scale: true,
            has_bias: true,
        }),
        &[s2, g, t],
    );
    b.out(&[y], "embedding", seed, size)
}
