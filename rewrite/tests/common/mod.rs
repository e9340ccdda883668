//! Helpers for the optimizer's tests: small graphs, a reference evaluator, a fusion macro.
#![allow(dead_code, missing_docs)]

use kayak_ir::ops::*;
use kayak_ir::{DType, Graph, Op, Tensor, TypeInfo, ValueId};
use std::sync::Arc;

/// Deterministic pseudo-random values in [-1, 1).
pub fn rand(shape: &[usize], seed: u64) -> Arc<Tensor> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    Arc::new(Tensor::from_f32s(shape, v).unwrap())
}

/// Positive values in [0.5, 1.5) (variances).
pub fn pos(shape: &[usize], seed: u64) -> Arc<Tensor> {
    let t = rand(shape, seed);
    let v: Vec<f32> = t
        .to_f64_vec()
        .iter()
        .map(|x| (x * 0.5 + 1.0) as f32)
        .collect();
    Arc::new(Tensor::from_f32s(shape, v).unwrap())
}

/// A tiny graph builder.
pub struct B {
    pub g: Graph,
    n: usize,
}

impl B {
    pub fn new() -> B {
        B {
            g: Graph::new(),
            n: 0,
        }
    }
    pub fn input(&mut self, shape: &[usize]) -> ValueId {
        let name = format!("in{}", self.g.inputs.len());
        self.g
            .add_input(&name, TypeInfo::known(DType::F32, shape))
            .unwrap()
    }
    pub fn w(&mut self, t: Arc<Tensor>) -> ValueId {
        self.n += 1;
        self.g.add_const(&format!("w{}", self.n), t).unwrap()
    }
    pub fn op(&mut self, op: Op, ins: &[ValueId]) -> ValueId {
        self.n += 1;
        let name = format!("v{}", self.n);
        self.g.add_node(op, ins.to_vec(), &[&name], &name).unwrap()[0]
    }
    pub fn out(mut self, v: &[ValueId]) -> Graph {
        for &o in v {
            self.g.add_output(o);
        }
        self.g
    }
}

pub fn conv(groups: usize) -> Op {
    Op::Conv2d(Conv {
        strides: [1, 1],
        padding: Padding::Explicit([1; 4]),
        dilations: [1, 1],
        groups,
        layout: Layout::Nchw,
        has_bias: false,
    })
}
pub fn conv1x1() -> Op {
    Op::Conv2d(Conv {
        strides: [1, 1],
        padding: Padding::Explicit([0; 4]),
        dilations: [1, 1],
        groups: 1,
        layout: Layout::Nchw,
        has_bias: false,
    })
}
pub fn add(axis: i64) -> Op {
    Op::Binary(Binary {
        op: BinaryOp::Add,
        axis,
    })
}
pub fn mul(axis: i64) -> Op {
    Op::Binary(Binary {
        op: BinaryOp::Mul,
        axis,
    })
}
pub fn un(u: UnaryOp) -> Op {
    Op::Unary(u)
}
pub fn bn() -> Op {
    Op::BatchNorm(BatchNorm {
        epsilon: 1e-5,
        layout: Layout::Nchw,
    })
}

/// Evaluates a graph with the reference semantics.
pub fn eval(g: &Graph, inputs: &[Tensor]) -> Vec<Tensor> {
    g.evaluate(inputs).unwrap_or_else(|e| panic!("{e}"))
}

/// Optimizes `g` with the built-in rules and checks the result computes the same outputs.
pub fn optimize_checked(g: &Graph) -> kayak_rewrite::Optimized {
    optimize_checked_with(g, &kayak_rewrite::CostModel::cpu())
}

/// [`optimize_checked`] under another backend's cost model.
pub fn optimize_checked_with(
    g: &Graph,
    model: &kayak_rewrite::CostModel,
) -> kayak_rewrite::Optimized {
    let keep = g.outputs.clone();
    let o = kayak_rewrite::optimize(
        g,
        &keep,
        &kayak_rewrite::RuleSet::builtin(),
        &kayak_rewrite::Limits::default(),
        model,
    )
    .unwrap();
    let inputs: Vec<Tensor> = g
        .inputs
        .iter()
        .enumerate()
        .map(|(k, &v)| (*rand(&g.values[v].ty.shape.to_known().unwrap(), 100 + k as u64)).clone())
        .collect();
    let want = eval(g, &inputs);
    let mut og = o.graph.clone();
    og.outputs = o.keep.clone();
    let got = eval(&og, &inputs);
    for (a, b) in got.iter().zip(&want) {
        assert_eq!(a.shape(), b.shape());
        for (p, q) in a.to_f64_vec().iter().zip(b.to_f64_vec()) {
            assert!(
                (p - q).abs() <= 1e-4 + 1e-4 * q.abs(),
                "optimized {p} vs original {q}"
            );
        }
    }
    o
}

/// The op kinds of a graph, sorted.
pub fn kinds(g: &Graph) -> Vec<&'static str> {
    let mut k: Vec<&'static str> = g.nodes.iter().map(|n| n.op.name()).collect();
    k.sort();
    k
}

/// One line per fusion fact: `fusion_test!(name, builder_fn => ["fused_conv"])` optimizes
/// the graph, checks the optimized graph computes the same values, and checks its op kinds.
#[macro_export]
macro_rules! fusion_test {
    ($name:ident, $build:expr => $kinds:expr) => {
        #[test]
        fn $name() {
            let g: kayak_ir::Graph = $build;
            let o = common::optimize_checked(&g);
            let mut want: Vec<&str> = $kinds.to_vec();
            want.sort();
            assert_eq!(
                common::kinds(&o.graph),
                want,
                "rules applied: {:?}",
                o.report.rules_applied
            );
        }
    };
}
