//! Random instantiation of a rule's left side: a concrete, well-typed graph whose outputs
//! are the pattern's roots.
//!
//! The pattern is built bottom-up (egg's pattern ASTs list children before parents). At each
//! op node the children already built fix some input types; [`fit`] draws the op's
//! attributes and the types of the inputs still free (pattern variables seen for the first
//! time) so the node type-checks — a conv's weight from its input's channels, a bias from the
//! output channels, a broadcast operand from the other operand. A variable seen again must
//! reuse its value, so non-linear patterns (`(mul ?x (f ?x))`) hold by construction.
//! Attributes are drawn from the values models use most, with rarer values mixed in, so
//! rule conditions hold often and fail sometimes.

use super::graphs::activation;
use super::Rng;
use egg::{ENodeOrVar, PatternAst, Var};
use kayak_ir::ops::*;
use kayak_ir::{DType, Graph, InferInput, Op, Tensor, TypeInfo, ValueId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::language::{param_free, Node};

/// How a leaf's values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValKind {
    /// Uniform in `[-1, 1)`.
    Normal,
    /// Uniform in `[0.5, 1.5)` (variances, divisors, logs' arguments).
    Positive,
    /// Integer ids below the bound (embedding lookups).
    Ids(usize),
}

/// What a rule's conditions ask of a variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hint {
    /// Nothing known.
    Any,
    /// A constant.
    Const,
    /// A graph input.
    Input,
    /// A one-element constant.
    Scalar,
}

/// A free input to create: its shape and values.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub kind: ValKind,
}

fn leaf(shape: Vec<usize>) -> Option<Leaf> {
    Some(Leaf {
        shape,
        kind: ValKind::Normal,
    })
}
fn pos_leaf(shape: Vec<usize>) -> Option<Leaf> {
    Some(Leaf {
        shape,
        kind: ValKind::Positive,
    })
}

/// A variable's value in an instance.
#[derive(Debug, Clone)]
pub enum Given {
    /// Attributes.
    Attr(Op),
    /// A tensor, as a constant or a graph input.
    Tensor {
        /// Its value.
        value: Tensor,
        /// Made a constant (else a graph input).
        is_const: bool,
    },
}

/// A concrete instance of one or more patterns.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The graph; its outputs are the patterns' roots.
    pub graph: Graph,
    /// Values of the graph inputs.
    pub inputs: Vec<Tensor>,
    /// Each variable's graph value (tensor variables) or attributes.
    pub vars: Vec<(Var, Given, Option<ValueId>)>,
}

fn dim(r: &mut Rng, size: usize) -> usize {
    1 + r.below(size + 1)
}
fn shape(r: &mut Rng, size: usize, rank: usize) -> Vec<usize> {
    (0..rank).map(|_| dim(r, size)).collect()
}
fn pick<T: Copy>(r: &mut Rng, xs: &[T]) -> T {
    xs[r.below(xs.len())]
}

fn unary_attrs(kind: &str, r: &mut Rng) -> Option<UnaryOp> {
    Some(match kind {
        "relu6" => UnaryOp::Relu6 {
            threshold: pick(r, &[6.0, 6.0, 6.0, 1.0, 0.5]),
        },
        "leaky_relu" => UnaryOp::LeakyRelu {
            alpha: pick(r, &[0.01, 0.1, 0.2, -0.5]),
        },
        "hard_swish" => {
            if r.below(4) > 0 {
                UnaryOp::HardSwish {
                    threshold: 6.0,
                    scale: 6.0,
                    offset: 3.0,
                }
            } else {
                UnaryOp::HardSwish {
                    threshold: pick(r, &[4.0, 1.0]),
                    scale: pick(r, &[5.0, 2.0]),
                    offset: pick(r, &[2.0, 0.5]),
                }
            }
        }
        "hard_sigmoid" => {
            let (slope, offset) = pick(
                r,
                &[
                    (0.2, 0.5),
                    (0.2, 0.5),
                    (1.0 / 6.0, 0.5),
                    (0.25, 0.4),
                    (2.0, 0.1),
                ],
            );
            UnaryOp::HardSigmoid { slope, offset }
        }
        "swish" => UnaryOp::Swish {
            beta: pick(r, &[1.0, 1.0, 0.5, 2.0]),
        },
        "gelu" => UnaryOp::Gelu {
            approximate: r.coin(),
        },
        "pow_scalar" => UnaryOp::PowScalar {
            factor: pick(r, &[2.0, 3.0, 0.5]),
        },
        "clip" => {
            let (min, max) = pick(r, &[(0.0, 6.0), (-0.5, 0.5), (0.0, 1.0)]);
            UnaryOp::Clip { min, max }
        }
        "scale" => UnaryOp::Scale {
            scale: {
                let any = r.f32() * 4.0 - 2.0;
                pick(r, &[1.0, 2.0, 0.5, -1.5, any])
            },
            bias: if r.coin() { 0.0 } else { r.f32() - 0.5 },
            bias_after_scale: r.coin(),
        },
        _ => return None,
    })
}

fn binary_of(kind: &str) -> Option<BinaryOp> {
    Some(match kind {
        "add" => BinaryOp::Add,
        "sub" => BinaryOp::Sub,
        "mul_elementwise" => BinaryOp::Mul,
        "div" => BinaryOp::Div,
        "pow" => BinaryOp::Pow,
        "max" => BinaryOp::Max,
        "min" => BinaryOp::Min,
        _ => return None,
    })
}

/// Output types of `op` on inputs of these shapes (f32), if it type-checks.
fn infer(op: &Op, shapes: &[Vec<usize>]) -> Option<Vec<usize>> {
    let tys: Vec<TypeInfo> = shapes
        .iter()
        .map(|s| TypeInfo::known(DType::F32, s))
        .collect();
    let ins: Vec<InferInput<'_>> = tys
        .iter()
        .map(|ty| InferInput { ty, value: None })
        .collect();
    op.infer(&ins).ok()?.first()?.shape.to_known()
}

/// The attributes and free input shapes of one op node. `known[i]` is the shape of tensor
/// child `i` when already fixed; the result has a [`Leaf`] for every child that was not.
pub fn fit(
    kind: &str,
    r: &mut Rng,
    size: usize,
    given: Option<&Op>,
    known: &[Option<Vec<usize>>],
    hints: &[Hint],
) -> Option<(Op, Vec<Option<Leaf>>)> {
    let n = known.len();
    let free = |i: usize| known[i].is_none();
    let hint = |i: usize| hints.get(i).copied().unwrap_or(Hint::Any);
    let mut out: Vec<Option<Leaf>> = vec![None; n];
    let given_or = |f: &mut dyn FnMut() -> Option<Op>| match given {
        Some(g) if g.name() == kind => Some(g.clone()),
        Some(_) => None,
        None => f(),
    };
    // Same-shape ops (unary, softmax, identity).
    let same = |r: &mut Rng, out: &mut Vec<Option<Leaf>>, kind_of: ValKind| {
        if n == 1 && free(0) {
            let rank = 1 + r.below(4);
            out[0] = Some(Leaf {
                shape: if hint(0) == Hint::Scalar {
                    vec![1]
                } else {
                    shape(r, size, rank)
                },
                kind: kind_of,
            });
        }
    };
    if let Some(op) = param_free(kind) {
        if matches!(op, Op::Unary(_) | Op::Identity) && n == 1 {
            let k = match op {
                Op::Unary(UnaryOp::Log)
                | Op::Unary(UnaryOp::Sqrt)
                | Op::Unary(UnaryOp::Rsqrt)
                | Op::Unary(UnaryOp::Reciprocal) => ValKind::Positive,
                _ => ValKind::Normal,
            };
            same(r, &mut out, k);
            return Some((op, out));
        }
        return None;
    }
    if let Some(u) = given_or(&mut || unary_attrs(kind, r).map(Op::Unary)) {
        if let Op::Unary(x) = &u {
            if n != 1 {
                return None;
            }
            let k = match x {
                UnaryOp::PowScalar { factor } if factor.fract() != 0.0 => ValKind::Positive,
                _ => ValKind::Normal,
            };
            same(r, &mut out, k);
            return Some((u, out));
        }
    }
    if let Some(b) = binary_of(kind) {
        if n != 2 {
            return None;
        }
        let mut axis = match given {
            Some(Op::Binary(gb, a)) if *gb == b => Some(*a),
            Some(_) => return None,
            None => None,
        };
        let (xk, yk) = (ValKind::Normal, ValKind::Normal);
        let (xk, yk) = match b {
            BinaryOp::Div => (xk, ValKind::Positive),
            BinaryOp::Pow => (ValKind::Positive, yk),
            _ => (xk, yk),
        };
        let x = match &known[0] {
            Some(x) => x.clone(),
            None if hint(0) == Hint::Scalar => vec![1],
            None => match &known[1] {
                Some(y) if r.below(4) > 0 || axis.is_some_and(|a| a != -1) => y.clone(),
                _ => {
                    let rank = 1 + r.below(4);
                    shape(r, size, rank)
                }
            },
        };
        if free(0) {
            out[0] = Some(Leaf {
                shape: x.clone(),
                kind: xk,
            });
        }
        if free(1) {
            let y = if hint(1) == Hint::Scalar {
                vec![1]
            } else {
                match (axis, r.below(10)) {
                    (Some(a), _) if a >= 0 => {
                        let a = a as usize;
                        if a > x.len() {
                            return None;
                        }
                        let k = 1 + r.below((x.len() - a).max(1));
                        x[a..(a + k).min(x.len())].to_vec()
                    }
                    (_, 0..=3) => x.clone(),
                    (_, 4 | 5) => vec![*x.last()?],
                    (_, 6 | 7) => vec![1],
                    (None, 8) if x.len() >= 2 => {
                        axis = Some(1);
                        vec![x[1]]
                    }
                    (None, _) if x.len() >= 2 => {
                        let a = r.below(x.len());
                        axis = Some(a as i64);
                        x[a..].to_vec()
                    }
                    _ => x.clone(),
                }
            };
            out[1] = Some(Leaf { shape: y, kind: yk });
        }
        let axis = axis.unwrap_or(if r.below(8) == 0 && x.len() >= 2 {
            0
        } else {
            -1
        });
        return Some((Op::Binary(b, axis), out));
    }
    match kind {
        "conv2d" | "fused_conv" => {
            fit_conv(kind, r, size, given, known, &mut out).map(|op| (op, out))
        }
        "conv2d_transpose" => fit_conv_t(r, size, given, known, &mut out).map(|op| (op, out)),
        "batch_norm" => {
            if n != 5 {
                return None;
            }
            let op = given_or(&mut || {
                Some(Op::BatchNorm(BatchNorm {
                    epsilon: pick(r, &[1e-5, 1e-3, 0.1, 0.5]),
                    layout: if r.below(6) == 0 {
                        Layout::Nhwc
                    } else {
                        Layout::Nchw
                    },
                }))
            })?;
            let nhwc = matches!(&op, Op::BatchNorm(b) if b.layout == Layout::Nhwc);
            let x = first_input(r, size, &known[0], &mut out, |r| pick(r, &[2, 4, 4, 4]));
            let c = if nhwc { *x.last()? } else { *x.get(1)? };
            for (i, slot) in out.iter_mut().enumerate().skip(1) {
                if free(i) {
                    *slot = if i == 4 {
                        pos_leaf(vec![c])
                    } else {
                        leaf(vec![c])
                    };
                }
            }
            Some((op, out))
        }
        "layer_norm" => {
            let x = first_input(r, size, &known[0], &mut out, |r| 2 + r.below(2));
            if x.len() < 2 {
                return None;
            }
            let op = given_or(&mut || {
                Some(Op::LayerNorm(LayerNorm {
                    begin_norm_axis: if r.below(3) > 0 {
                        x.len() - 1
                    } else {
                        1 + r.below(x.len() - 1)
                    },
                    epsilon: pick(r, &[1e-5, 1e-12, 1e-3, 0.1, 1.0]),
                    has_scale: n >= 2,
                    has_bias: n >= 3,
                }))
            })?;
            let Op::LayerNorm(ln) = &op else { return None };
            let numel: usize = x.get(ln.begin_norm_axis..)?.iter().product();
            for (i, slot) in out.iter_mut().enumerate().skip(1) {
                if free(i) {
                    *slot = leaf(vec![numel]);
                }
            }
            Some((op, out))
        }
        "pool2d" => {
            let op = given_or(&mut || {
                let base = Pool::window(PoolKind::Avg, [1, 1], [1, 1]);
                Some(Op::Pool2d(match r.below(6) {
                    0 => Pool {
                        global: true,
                        ..base
                    },
                    1 => Pool {
                        adaptive: true,
                        ..base
                    },
                    2 => Pool {
                        kind: PoolKind::Max,
                        adaptive: true,
                        ..base
                    },
                    3 => Pool {
                        kind: PoolKind::Max,
                        ksize: [2, 2],
                        strides: [2, 2],
                        ..base
                    },
                    4 => Pool {
                        ksize: [3, 3],
                        padding: Padding::Explicit([1; 4]),
                        exclusive: r.coin(),
                        ..base
                    },
                    _ => Pool {
                        adaptive: true,
                        ksize: [2, 2],
                        ..base
                    },
                }))
            })?;
            if free(0) {
                out[0] = leaf(vec![
                    dim(r, 1),
                    dim(r, size),
                    1 + dim(r, size),
                    1 + dim(r, size),
                ]);
            }
            Some((op, out))
        }
        "matmul" | "fused_matmul" => {
            fit_matmul(kind, r, size, given, known, &mut out).map(|op| (op, out))
        }
        "mul" => {
            let x = first_input(r, size, &known[0], &mut out, |r| 2 + r.below(2));
            let op = given_or(&mut || {
                Some(Op::Mul(Mul {
                    x_num_col_dims: 1 + r.below(x.len().saturating_sub(1).max(1)),
                    y_num_col_dims: 1,
                }))
            })?;
            let Op::Mul(m) = &op else { return None };
            let k: usize = x.get(m.x_num_col_dims..)?.iter().product();
            if n == 2 && free(1) {
                out[1] = leaf(vec![k, dim(r, size)]);
            }
            Some((op, out))
        }
        "softmax" => {
            same(r, &mut out, ValKind::Normal);
            let rank = known[0]
                .as_ref()
                .or(out[0].as_ref().map(|l| &l.shape))?
                .len() as i64;
            let op = given_or(&mut || {
                Some(Op::Softmax(Softmax {
                    axis: if r.below(5) < 3 {
                        -1
                    } else {
                        r.below(rank as usize) as i64 - if r.coin() { rank } else { 0 }
                    },
                }))
            })?;
            Some((op, out))
        }
        "transpose" => {
            let x = first_input(r, size, &known[0], &mut out, |r| 2 + r.below(3));
            let rank = x.len();
            let op = given_or(&mut || {
                let mut perm: Vec<usize> = (0..rank).collect();
                match r.below(6) {
                    0 => {}
                    1 | 2 if rank >= 2 => perm.swap(rank - 2, rank - 1),
                    3 if rank == 4 => perm = vec![0, 2, 1, 3],
                    _ => {
                        for i in (1..rank).rev() {
                            let j = r.below(i + 1);
                            perm.swap(i, j);
                        }
                    }
                }
                Some(Op::Transpose(Transpose { perm }))
            })?;
            Some((op, out))
        }
        "reshape" => {
            let x = first_input(r, size, &known[0], &mut out, |r| 1 + r.below(4));
            let op = given_or(&mut || Some(reshape_to(r, &x)))?;
            Some((op, out))
        }
        "flatten" => {
            let x = first_input(r, size, &known[0], &mut out, |r| 1 + r.below(4));
            let op = given_or(&mut || {
                let rank = x.len();
                Some(Op::Flatten(if r.coin() {
                    let start = r.below(rank);
                    let stop = start + r.below(rank - start);
                    Flatten::Range {
                        start: start as i64,
                        stop: stop as i64,
                    }
                } else {
                    Flatten::To2d {
                        axis: r.below(rank + 1),
                    }
                }))
            })?;
            Some((op, out))
        }
        "squeeze" => {
            let x = match &known[0] {
                Some(x) => x.clone(),
                None => {
                    let rank = 1 + r.below(3);
                    let mut s = shape(r, size, rank);
                    s.insert(r.below(rank + 1), 1);
                    out[0] = leaf(s.clone());
                    s
                }
            };
            let op = given_or(&mut || {
                let mut ones: Vec<i64> = (0..x.len())
                    .filter(|&i| x[i] == 1)
                    .map(|i| i as i64)
                    .collect();
                if ones.is_empty() || r.below(4) == 0 {
                    // Paddle ignores a squeezed axis whose dim is not 1.
                    ones = vec![r.below(x.len()) as i64];
                }
                let a = ones[r.below(ones.len())];
                Some(Op::Squeeze(Squeeze {
                    axes: vec![if r.coin() { a } else { a - x.len() as i64 }],
                }))
            })?;
            Some((op, out))
        }
        "unsqueeze" => {
            let x = first_input(r, size, &known[0], &mut out, |r| 1 + r.below(3));
            let op = given_or(&mut || {
                Some(Op::Unsqueeze(Unsqueeze {
                    axes: vec![r.below(x.len() + 1) as i64],
                }))
            })?;
            Some((op, out))
        }
        "reduce_sum" | "reduce_mean" | "reduce_max" | "reduce_min" | "reduce_prod" => {
            let x = first_input(r, size, &known[0], &mut out, |r| 1 + r.below(3));
            let rk = match kind {
                "reduce_sum" => ReduceKind::Sum,
                "reduce_mean" => ReduceKind::Mean,
                "reduce_max" => ReduceKind::Max,
                "reduce_min" => ReduceKind::Min,
                _ => ReduceKind::Prod,
            };
            let op = given_or(&mut || {
                let axes = if r.coin() {
                    vec![-1]
                } else {
                    vec![r.below(x.len()) as i64]
                };
                Some(Op::Reduce(Reduce {
                    kind: rk,
                    axes,
                    keep_dim: r.below(4) > 0,
                    reduce_all: false,
                }))
            })?;
            Some((op, out))
        }
        "split" => {
            let op = given_or(&mut || {
                let parts = pick(r, &[3, 3, 2]);
                Some(Op::Split(Split {
                    axis: -1,
                    sections: vec![],
                    num: parts,
                }))
            })?;
            let Op::Split(s) = &op else { return None };
            if free(0) {
                let parts = s.num_outputs().max(1);
                let rank = 2 + r.below(2);
                let mut sh = shape(r, size, rank);
                if s.sections.is_empty() {
                    *sh.last_mut()? *= parts;
                } else {
                    *sh.last_mut()? = s.sections.iter().map(|&v| v.max(1) as usize).sum();
                }
                out[0] = leaf(sh);
            }
            Some((op, out))
        }
        "attention" => fit_attention(r, size, given, known, &mut out).map(|op| (op, out)),
        "embedding" => {
            if n != 2 {
                return None;
            }
            let op = given_or(&mut || {
                Some(Op::Embedding {
                    padding_idx: if r.below(3) == 0 { Some(0) } else { None },
                })
            })?;
            let vocab = match &known[1] {
                Some(t) => *t.first()?,
                None => {
                    let v = 2 + r.below(size + 3);
                    out[1] = leaf(vec![v, 2 * dim(r, size)]);
                    v
                }
            };
            if free(0) {
                out[0] = Some(Leaf {
                    shape: vec![dim(r, 1), dim(r, size)],
                    kind: ValKind::Ids(vocab),
                });
            }
            Some((op, out))
        }
        _ => None,
    }
}

/// The first input's shape: as built, or drawn (rank from `rank`) and recorded as a leaf.
fn first_input(
    r: &mut Rng,
    size: usize,
    known: &Option<Vec<usize>>,
    out: &mut [Option<Leaf>],
    rank: impl FnOnce(&mut Rng) -> usize,
) -> Vec<usize> {
    match known {
        Some(x) => x.clone(),
        None => {
            let rank = rank(r);
            let s = shape(r, size, rank);
            out[0] = leaf(s.clone());
            s
        }
    }
}

/// A reshape target for `x`: flatten, split or merge trailing dims, keep the shape, or a
/// random factorization — with Paddle's `0` (copy) and `-1` (infer) entries mixed in.
fn reshape_to(r: &mut Rng, x: &[usize]) -> Op {
    let numel: usize = x.iter().product();
    let rank = x.len();
    if rank == 0 {
        return Op::Reshape(Reshape {
            shape: vec![1],
            shape_input: ListInput::Attr,
        });
    }
    let mut t: Vec<i64> = match r.below(6) {
        0 => vec![numel as i64],
        1 if rank >= 2 => vec![x[0] as i64, -1],
        2 => {
            let last = *x.last().unwrap_or(&1);
            let f = (2..last).find(|f| last.is_multiple_of(*f)).unwrap_or(1);
            let mut v: Vec<i64> = x[..rank - 1].iter().map(|&d| d as i64).collect();
            v.extend([f as i64, (last / f) as i64]);
            v
        }
        3 if rank >= 2 => {
            let mut v: Vec<i64> = x[..rank - 2].iter().map(|&d| d as i64).collect();
            v.push((x[rank - 2] * x[rank - 1]) as i64);
            v
        }
        4 => x.iter().map(|&d| d as i64).collect(),
        _ => {
            let f = (2..=numel).find(|f| numel.is_multiple_of(*f)).unwrap_or(1);
            vec![f as i64, (numel / f) as i64]
        }
    };
    // Paddle's special entries: 0 copies the input dim at that position, -1 is inferred.
    if r.below(3) == 0 {
        let i = r.below(t.len());
        if i < rank && t[i] == x[i] as i64 {
            t[i] = 0;
        }
    }
    if r.below(3) == 0 && !t.contains(&-1) {
        let i = r.below(t.len());
        t[i] = -1;
    }
    Op::Reshape(Reshape {
        shape: t,
        shape_input: ListInput::Attr,
    })
}

fn conv_attrs(r: &mut Rng, has_bias: bool) -> Conv {
    let s = if r.below(4) == 0 { 2 } else { 1 };
    let d = if r.below(7) == 0 { 2 } else { 1 };
    let padding = match r.below(10) {
        0 => Padding::Same,
        1 => Padding::Valid,
        2 => Padding::Explicit([r.below(2), r.below(3), r.below(2), r.below(3)]),
        _ => Padding::Explicit([1; 4]),
    };
    Conv {
        strides: [s, s],
        padding: if d > 1 && padding == Padding::Same {
            Padding::Valid
        } else {
            padding
        },
        dilations: [d, d],
        groups: 0,
        layout: if r.below(10) == 0 {
            Layout::Nhwc
        } else {
            Layout::Nchw
        },
        has_bias,
    }
}

fn fit_conv(
    kind: &str,
    r: &mut Rng,
    size: usize,
    given: Option<&Op>,
    known: &[Option<Vec<usize>>],
    out: &mut [Option<Leaf>],
) -> Option<Op> {
    let n = known.len();
    let fused = kind == "fused_conv";
    if (fused && !(3..=4).contains(&n)) || (!fused && !(2..=3).contains(&n)) {
        return None;
    }
    let (mut conv, mut act, mut post, residual) = match given {
        Some(Op::Conv2d(c)) if !fused => (c.clone(), None, None, false),
        Some(Op::FusedConv(f)) if fused => (f.conv.clone(), f.act, f.post, f.residual),
        Some(_) => return None,
        None => {
            let c = conv_attrs(r, !fused && n == 3);
            (c, None, None, fused && n == 4)
        }
    };
    if given.is_none() && fused {
        if r.coin() {
            act = Some(activation(r));
        }
        if r.below(3) == 0 {
            post = Some((r.f32() * 2.0 - 1.0, r.f32() - 0.5));
        }
    }
    let nhwc = conv.layout == Layout::Nhwc;
    // Input [N, C, H, W] (or NHWC), weight [O, C/g, kh, kw].
    let (xn, xc, xh, xw) = match &known[0] {
        Some(x) if x.len() == 4 => {
            if nhwc {
                (x[0], x[3], x[1], x[2])
            } else {
                (x[0], x[1], x[2], x[3])
            }
        }
        Some(_) => return None,
        None => {
            let c = match &known[1] {
                Some(w) if w.len() == 4 => w[1] * if conv.groups > 0 { conv.groups } else { 1 },
                _ => dim(r, size.min(3)),
            };
            (dim(r, 1), c, 2 + dim(r, size), 2 + dim(r, size))
        }
    };
    if conv.groups == 0 {
        conv.groups = match (&known[1], r.below(5)) {
            (Some(w), _) if w.len() == 4 && w[1] > 0 && xc % w[1] == 0 => xc / w[1],
            (Some(_), _) => return None,
            (None, 0 | 1) => xc,
            (None, 2) if xc % 2 == 0 => 2,
            _ => 1,
        };
    }
    let g = conv.groups;
    if g == 0 || xc % g != 0 {
        return None;
    }
    let w = match &known[1] {
        Some(w) => w.clone(),
        None => {
            let k = pick(r, &[1, 3, 3, 2]);
            let o = g * (1 + r.below(2));
            let w = vec![o, xc / g, k, k];
            out[1] = leaf(w.clone());
            w
        }
    };
    if known[0].is_none() {
        out[0] = leaf(if nhwc {
            vec![xn, xh, xw, xc]
        } else {
            vec![xn, xc, xh, xw]
        });
    }
    let o = w[0];
    let x_shape = known[0]
        .clone()
        .or_else(|| out[0].as_ref().map(|l| l.shape.clone()))?;
    let plain = Op::Conv2d(Conv {
        has_bias: false,
        ..conv.clone()
    });
    let y = infer(&plain, &[x_shape, w])?;
    if n >= 3 && known[2].is_none() {
        out[2] = leaf(vec![o]);
    }
    if fused && n == 4 && known[3].is_none() {
        out[3] = leaf(y);
    }
    Some(if fused {
        Op::FusedConv(FusedConv {
            conv: Conv {
                has_bias: n >= 3,
                ..conv
            },
            residual,
            act,
            post,
        })
    } else {
        Op::Conv2d(conv)
    })
}

fn fit_conv_t(
    r: &mut Rng,
    size: usize,
    given: Option<&Op>,
    known: &[Option<Vec<usize>>],
    out: &mut [Option<Leaf>],
) -> Option<Op> {
    let n = known.len();
    if !(2..=3).contains(&n) {
        return None;
    }
    let ct = match given {
        Some(Op::Conv2dTranspose(c)) => c.clone(),
        Some(_) => return None,
        None => {
            let s = pick(r, &[1, 2, 2]);
            ConvTranspose {
                strides: [s, s],
                padding: Padding::Explicit([r.below(2); 4]),
                dilations: [1, 1],
                groups: 1,
                output_padding: if s == 2 && r.below(3) == 0 {
                    [1, 1]
                } else {
                    [0, 0]
                },
                output_size: None,
                layout: Layout::Nchw,
                has_bias: n == 3,
            }
        }
    };
    let x = match &known[0] {
        Some(x) => x.clone(),
        None => {
            let c = match &known[1] {
                Some(w) => *w.first()?,
                None => dim(r, size.min(3)),
            };
            let x = vec![dim(r, 1), c, dim(r, size), dim(r, size)];
            out[0] = leaf(x.clone());
            x
        }
    };
    let w = match &known[1] {
        Some(w) => w.clone(),
        None => {
            let w = vec![
                *x.get(1)?,
                dim(r, size.min(3)),
                pick(r, &[2, 3]),
                pick(r, &[2, 3]),
            ];
            out[1] = leaf(w.clone());
            w
        }
    };
    if n == 3 && known[2].is_none() {
        out[2] = leaf(vec![*w.get(1)? * ct.groups]);
    }
    Some(Op::Conv2dTranspose(ct))
}

fn fit_matmul(
    kind: &str,
    r: &mut Rng,
    size: usize,
    given: Option<&Op>,
    known: &[Option<Vec<usize>>],
    out: &mut [Option<Leaf>],
) -> Option<Op> {
    let n = known.len();
    let fused = kind == "fused_matmul";
    if (fused && !(2..=3).contains(&n)) || (!fused && n != 2) {
        return None;
    }
    let sample_mm = |r: &mut Rng| MatMul {
        trans_x: r.below(4) == 0,
        trans_y: r.coin(),
        alpha: if r.below(4) > 0 {
            1.0
        } else {
            pick(r, &[0.5, 2.0, 0.125])
        },
    };
    let (mm, has_bias, act) = match given {
        Some(Op::MatMul(m)) if !fused => (m.clone(), false, None),
        Some(Op::FusedMatMul(f)) if fused => (f.mm.clone(), f.has_bias, f.act),
        Some(_) => return None,
        None => {
            let mm = sample_mm(r);
            let act = (fused && r.coin()).then(|| activation(r));
            (mm, fused && n == 3, act)
        }
    };
    let order = |a: usize, b: usize, t: bool| if t { [b, a] } else { [a, b] };
    let (x, y) = match (&known[0], &known[1]) {
        (Some(x), Some(y)) => (x.clone(), y.clone()),
        (Some(x), None) => {
            if x.len() < 2 {
                return None;
            }
            let [a, b] = [x[x.len() - 2], x[x.len() - 1]];
            let k = if mm.trans_x { a } else { b };
            let nn = dim(r, size);
            let mut y: Vec<usize> = if x.len() > 2 && r.coin() {
                x[..x.len() - 2].to_vec()
            } else {
                vec![]
            };
            y.extend(order(k, nn, mm.trans_y));
            out[1] = leaf(y.clone());
            (x.clone(), y)
        }
        (None, Some(y)) => {
            if y.len() < 2 {
                return None;
            }
            let [a, b] = [y[y.len() - 2], y[y.len() - 1]];
            let k = if mm.trans_y { b } else { a };
            let m = dim(r, size);
            let mut x: Vec<usize> = if y.len() > 2 {
                y[..y.len() - 2].to_vec()
            } else if r.coin() {
                vec![dim(r, size)]
            } else {
                vec![]
            };
            x.extend(order(m, k, mm.trans_x));
            out[0] = leaf(x.clone());
            (x, y.clone())
        }
        (None, None) => {
            let (m, k, nn) = (dim(r, size), dim(r, size), dim(r, size));
            let batch: Vec<usize> = (0..r.below(3)).map(|_| dim(r, size)).collect();
            let mut x = batch.clone();
            x.extend(order(m, k, mm.trans_x));
            let mut y = if r.coin() { batch } else { vec![] };
            y.extend(order(k, nn, mm.trans_y));
            out[0] = leaf(x.clone());
            out[1] = leaf(y.clone());
            (x, y)
        }
    };
    let yout = infer(&Op::MatMul(mm.clone()), &[x, y])?;
    if fused && n == 3 && known[2].is_none() {
        out[2] = leaf(vec![*yout.last()?]);
    }
    Some(if fused {
        Op::FusedMatMul(FusedMatMul {
            mm,
            has_bias,
            act,
            packed_n: None,
        })
    } else {
        Op::MatMul(mm)
    })
}

fn fit_attention(
    r: &mut Rng,
    size: usize,
    given: Option<&Op>,
    known: &[Option<Vec<usize>>],
    out: &mut [Option<Leaf>],
) -> Option<Op> {
    let n = known.len();
    let first = known.iter().flatten().next().cloned();
    let a = match given {
        Some(Op::Attention(a)) => a.clone(),
        Some(_) => return None,
        None => {
            let packed = n <= 2;
            let e = match &first {
                Some(s) if s.len() == 3 => s[2] / if packed { 3 } else { 1 },
                Some(_) => return None,
                None => dim(r, size) * dim(r, 2),
            };
            let heads = (1..=e)
                .rev()
                .filter(|h| e % h == 0)
                .nth(r.below(2))
                .unwrap_or(1);
            let hd = e / heads;
            Attention {
                heads,
                head_dim: hd,
                scale: if r.coin() {
                    1.0 / (hd as f32).sqrt()
                } else {
                    r.f32()
                },
                has_mask: n == 2 || n == 4,
                packed,
            }
        }
    };
    let e = a.heads * a.head_dim;
    let (b, s) = match &first {
        Some(x) if x.len() == 3 => (x[0], x[1]),
        _ => (dim(r, 1), dim(r, size)),
    };
    let qkv = if a.packed { 1 } else { 3 };
    for (i, slot) in out.iter_mut().enumerate() {
        if known[i].is_some() {
            continue;
        }
        *slot = if i < qkv {
            leaf(vec![b, s, if a.packed { 3 * e } else { e }])
        } else {
            leaf(vec![b, 1, 1, s])
        };
    }
    Some(Op::Attention(a))
}

/// Builds an instance of `patterns` (one for an ordinary rule, several for a multi-pattern
/// one). Variables in `given` take those values; the others are drawn. `None` when the
/// draw does not type-check (the caller draws again).
pub fn instantiate(
    patterns: &[&PatternAst<Node>],
    r: &mut Rng,
    size: usize,
    hints: &HashMap<Var, Hint>,
    given: &HashMap<Var, Given>,
) -> Option<Instance> {
    let mut g = Graph::new();
    let mut inputs = Vec::new();
    let mut vars: HashMap<Var, (Given, Option<ValueId>)> = HashMap::new();
    let mut order: Vec<Var> = Vec::new();
    let mut counter = 0usize;
    let mut roots = Vec::new();
    for ast in patterns {
        let nodes = ast.as_ref();
        let mut built: Vec<Vec<ValueId>> = vec![vec![]; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            let ENodeOrVar::ENode(node) = n else { continue };
            match node {
                Node::Get(k, [c]) => {
                    built[i] = vec![*built[usize::from(*c)].get(*k as usize)?];
                }
                Node::Op(kind, children) => {
                    let kind = kind.as_str();
                    let attr_free = param_free(kind).is_some();
                    let (attr_child, tensor_children) = if attr_free {
                        (None, &children[..])
                    } else {
                        (Some(*children.first()?), &children[1..])
                    };
                    let attr_var = match attr_child.map(|c| &nodes[usize::from(c)]) {
                        Some(ENodeOrVar::Var(v)) => Some(*v),
                        Some(_) => return None,
                        None => None,
                    };
                    let given_attr = attr_var.and_then(|v| {
                        match vars
                            .get(&v)
                            .or(given.get(&v).map(|g| (g.clone(), None)).as_ref())
                        {
                            Some((Given::Attr(op), _)) => Some(op.clone()),
                            _ => None,
                        }
                    });
                    let mut known = Vec::with_capacity(tensor_children.len());
                    let mut child_vals: Vec<Option<ValueId>> = Vec::new();
                    let mut child_hints = Vec::new();
                    let mut free_vars: Vec<Option<Var>> = Vec::new();
                    for &c in tensor_children {
                        match &nodes[usize::from(c)] {
                            ENodeOrVar::ENode(_) => {
                                let v = *built[usize::from(c)].first()?;
                                known.push(g.values[v].ty.shape.to_known());
                                child_vals.push(Some(v));
                                child_hints.push(Hint::Any);
                                free_vars.push(None);
                            }
                            ENodeOrVar::Var(var) => {
                                if let Some((_, Some(v))) = vars.get(var) {
                                    known.push(g.values[*v].ty.shape.to_known());
                                    child_vals.push(Some(*v));
                                    free_vars.push(None);
                                } else if let Some(Given::Tensor { value, is_const }) =
                                    given.get(var)
                                {
                                    counter += 1;
                                    let name = format!("{}{counter}", &var.to_string()[1..]);
                                    let v = if *is_const {
                                        g.add_const(&name, Arc::new(value.clone())).ok()?
                                    } else {
                                        inputs.push(value.clone());
                                        g.add_input(&name, value.type_info()).ok()?
                                    };
                                    vars.insert(
                                        *var,
                                        (
                                            Given::Tensor {
                                                value: value.clone(),
                                                is_const: *is_const,
                                            },
                                            Some(v),
                                        ),
                                    );
                                    order.push(*var);
                                    known.push(Some(value.shape().to_vec()));
                                    child_vals.push(Some(v));
                                    free_vars.push(None);
                                } else {
                                    known.push(None);
                                    child_vals.push(None);
                                    free_vars.push(Some(*var));
                                }
                                child_hints.push(hints.get(var).copied().unwrap_or(Hint::Any));
                            }
                        }
                    }
                    let (op, leaves) = if given_attr.is_some() && known.iter().all(Option::is_some)
                    {
                        (given_attr.clone()?, vec![None; known.len()])
                    } else if attr_free && known.iter().all(Option::is_some) {
                        (param_free(kind)?, vec![None; known.len()])
                    } else {
                        fit(kind, r, size, given_attr.as_ref(), &known, &child_hints)?
                    };
                    if op.name() != kind {
                        return None;
                    }
                    for (k, l) in leaves.into_iter().enumerate() {
                        if child_vals[k].is_some() {
                            continue;
                        }
                        let var = free_vars[k]?;
                        let l = l?;
                        let value = leaf_value(r, &l)?;
                        let is_const = match child_hints[k] {
                            Hint::Const | Hint::Scalar => true,
                            Hint::Input => false,
                            Hint::Any => !matches!(l.kind, ValKind::Ids(_)) && r.coin(),
                        };
                        counter += 1;
                        let name = format!("{}{counter}", &var.to_string()[1..]);
                        let v = if is_const {
                            g.add_const(&name, Arc::new(value.clone())).ok()?
                        } else {
                            inputs.push(value.clone());
                            g.add_input(&name, value.type_info()).ok()?
                        };
                        vars.insert(var, (Given::Tensor { value, is_const }, Some(v)));
                        order.push(var);
                        child_vals[k] = Some(v);
                    }
                    if let Some(av) = attr_var {
                        if let std::collections::hash_map::Entry::Vacant(e) = vars.entry(av) {
                            e.insert((Given::Attr(op.clone()), None));
                            order.push(av);
                        }
                    }
                    let ins: Vec<ValueId> = child_vals.into_iter().collect::<Option<_>>()?;
                    counter += 1;
                    let outs = op_outputs(&op);
                    let names: Vec<String> =
                        (0..outs).map(|k| format!("{kind}_{counter}_{k}")).collect();
                    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    built[i] = g.add_node(op, ins, &name_refs, &names[0]).ok()?;
                }
                _ => return None,
            }
        }
        roots.push(*built.last()?.first()?);
    }
    for &root in &roots {
        g.add_output(root);
    }
    let vars = order
        .into_iter()
        .map(|v| {
            let (gv, id) = vars[&v].clone();
            (v, gv, id)
        })
        .collect();
    Some(Instance {
        graph: g,
        inputs,
        vars,
    })
}

/// Draws the values of a leaf.
pub fn leaf_value(r: &mut Rng, l: &Leaf) -> Option<Tensor> {
    Some(match l.kind {
        ValKind::Normal => super::graphs::uniform(r, &l.shape),
        ValKind::Positive => super::graphs::positive(r, &l.shape),
        ValKind::Ids(max) => {
            let n: usize = l.shape.iter().product();
            let ids: Vec<i64> = (0..n).map(|_| r.below(max) as i64).collect();
            Tensor::from_i64s(&ids).reshape(&l.shape).ok()?
        }
    })
}

fn op_outputs(op: &Op) -> usize {
    match op {
        Op::Split(s) => s.num_outputs(),
        _ => 1,
    }
}
