//! The load-time packing of constant matmul weights (`kayak::exec::prepack_weights`):
//! which weights it packs, that the packed constant replaces the weight (held once) in
//! the layout the IR defines (`ir::ops::pack_weight`), and that plans of the packed graph
//! compute what the unpacked graph's reference ops compute, at 1 and 2 threads.

use kayak::exec::{prepack_weights, Plan, PlanOptions, RunState};
use kayak::ir::ops::*;
use kayak::ir::{DType, Graph, Op, Tensor, TypeInfo, ValueDef, ValueId};
use kayak_tests::rand_t;
use std::sync::Arc;

fn mm(trans_x: bool, trans_y: bool) -> MatMul {
    MatMul {
        trans_x,
        trans_y,
        alpha: 1.0,
    }
}

/// Runs the graph's plan on `x` and returns its outputs.
fn run(g: &Graph, x: &Tensor, threads: usize) -> Vec<Tensor> {
    let plan = Plan::new(
        std::sync::Arc::new(g.clone()),
        &[x.shape().to_vec()],
        &g.outputs,
        PlanOptions {
            threads,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(plan.memory().fallback_steps, 0, "every step native");
    let mut state = RunState::new(threads);
    plan.run(&vec![x.clone()], &mut state).unwrap();
    state.outputs().to_vec()
}

/// Every node's reference op, in order, on the graph's values.
fn reference(g: &Graph, x: &Tensor) -> Vec<Tensor> {
    let mut vals: Vec<Option<Tensor>> = vec![None; g.values.len()];
    vals[g.inputs[0]] = Some(x.clone());
    for (v, val) in g.values.iter().enumerate() {
        if let ValueDef::Const(t) = &val.def {
            vals[v] = Some((**t).clone());
        }
    }
    for node in &g.nodes {
        let ins: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|&i| vals[i].as_ref().unwrap())
            .collect();
        let outs = node.op.eval(&ins).unwrap();
        for (&o, t) in node.outputs.iter().zip(outs) {
            vals[o] = Some(t);
        }
    }
    g.outputs
        .iter()
        .map(|&o| vals[o].clone().unwrap())
        .collect()
}

fn assert_close(got: &[Tensor], want: &[Tensor], what: &str) {
    assert_eq!(got.len(), want.len());
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(a.shape(), b.shape(), "{what}: output {k} shape");
        let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}: output {k}[{i}]: {x} vs {y}"
            );
        }
    }
}

/// One weight `w` (shape `wshape`) used by `uses` (op, whether it reads `w` as y); x
/// `[2, 37, 40]` (or transposed) is the input. Returns the graph and w's id.
fn graph(x: &[usize], wshape: &[usize], ops: &[Op], keep_w: bool) -> (Graph, ValueId) {
    let mut g = Graph::new();
    let xi = g.add_input("x", TypeInfo::known(DType::F32, x)).unwrap();
    let w = g.add_const("w", Arc::new(rand_t(wshape, 7))).unwrap();
    let n_out = wshape.iter().product::<usize>();
    let bias = g
        .add_const("b", Arc::new(rand_t(&[n_out.max(1)], 8)))
        .unwrap();
    let mut outs = vec![];
    for (i, op) in ops.iter().enumerate() {
        let ins = match op {
            Op::FusedMatMul(f) if f.has_bias => vec![xi, w, bias],
            Op::Binary(..) => vec![w, w],
            _ => vec![xi, w],
        };
        let name = format!("y{i}");
        outs.push(g.add_node(op.clone(), ins, &[&name], &name).unwrap()[0]);
    }
    if keep_w {
        outs.push(w);
    }
    g.outputs = outs;
    (g, w)
}

/// x shape, w shape, the ops reading w, n, trans_y.
type Case = (Vec<usize>, Vec<usize>, Vec<Op>, usize, bool);

#[test]
fn packed_weights_replace_the_originals_and_compute_the_same() {
    let relu = Some(UnaryOp::Relu);
    let fused = |tx, ty, has_bias, act| {
        Op::FusedMatMul(FusedMatMul {
            mm: mm(tx, ty),
            has_bias,
            act,
            packed: None,
        })
    };
    // (x shape, w shape, ops, n, trans_y): every one is packed.
    let cases: Vec<Case> = vec![
        // Batched x folded into one product's rows; bias and activation.
        (
            vec![2, 37, 40],
            vec![40, 50],
            vec![fused(false, false, false, relu)],
            50,
            false,
        ),
        // Transposed x: a product per batch.
        (
            vec![2, 40, 37],
            vec![40, 50],
            vec![fused(true, false, false, None)],
            50,
            false,
        ),
        // A transposed weight, read by a plain matmul.
        (
            vec![3, 40],
            vec![33, 40],
            vec![Op::MatMul(mm(false, true))],
            33,
            true,
        ),
        // One weight shared by two products: packed once.
        (
            vec![1, 5, 40],
            vec![40, 16],
            vec![
                Op::MatMul(mm(false, false)),
                fused(false, false, false, relu),
            ],
            16,
            false,
        ),
    ];
    for (i, (x, w, ops, n, ty)) in cases.into_iter().enumerate() {
        let (g, wid) = graph(&x, &w, &ops, false);
        let xt = rand_t(&x, 100 + i as u64);
        let want = reference(&g, &xt);
        let mut p = g.clone();
        assert_eq!(prepack_weights(&mut p, &g.outputs), 1, "case {i}: packed");
        let orig = g.const_value(wid).unwrap();
        let packed = p.const_value(wid).unwrap();
        assert_eq!(
            packed,
            &pack_weight(orig, ty, kayak::exec::PACK_COLS).unwrap(),
            "case {i}: the IR's layout"
        );
        assert_eq!(packed.shape(), &[n.div_ceil(16), w[ty as usize], 16]);
        for node in &p.nodes {
            let Op::FusedMatMul(f) = &node.op else {
                panic!("case {i}: {} left unpacked", node.op.name())
            };
            assert_eq!(f.packed.map(|p| p.n), Some(n));
            assert!(!f.mm.trans_y);
        }
        // The packed graph's reference ops (they unpack) and its plans agree.
        assert_close(&reference(&p, &xt), &want, &format!("case {i} reference"));
        for threads in [1, 2] {
            assert_close(&run(&p, &xt, threads), &want, &format!("case {i} plan"));
        }
    }
}

#[test]
fn weights_other_ops_read_or_callers_keep_stay_as_they_are() {
    let plain = Op::MatMul(mm(false, false));
    let add = Op::Binary(Binary {
        op: BinaryOp::Add,
        axis: -1,
    });
    for (what, x, w, ops, keep) in [
        (
            "also read by an add",
            vec![4, 40],
            vec![40, 32],
            vec![plain.clone(), add],
            false,
        ),
        ("kept", vec![4, 40], vec![40, 32], vec![plain.clone()], true),
        (
            "k below 16",
            vec![4, 8],
            vec![8, 32],
            vec![plain.clone()],
            false,
        ),
        (
            "n below 16",
            vec![4, 40],
            vec![40, 8],
            vec![plain.clone()],
            false,
        ),
        (
            "read with both trans_y",
            vec![4, 40],
            vec![40, 40],
            vec![plain, Op::MatMul(mm(false, true))],
            false,
        ),
    ] {
        let (g, wid) = graph(&x, &w, &ops, keep);
        let mut p = g.clone();
        assert_eq!(prepack_weights(&mut p, &g.outputs), 0, "{what}");
        assert_eq!(p.const_value(wid), g.const_value(wid), "{what}");
    }
}

#[test]
fn a_packed_weight_of_the_wrong_shape_is_a_typed_error() {
    let mut g = Graph::new();
    let x = g
        .add_input("x", TypeInfo::known(DType::F32, &[4, 40]))
        .unwrap();
    // 50 columns need 4 strips, not 3.
    let w = g.add_const("w", Arc::new(rand_t(&[3, 40, 16], 1))).unwrap();
    let op = Op::FusedMatMul(FusedMatMul {
        mm: mm(false, false),
        has_bias: false,
        act: None,
        packed: Some(kayak::ir::ops::Packed {
            n: 50,
            cols: kayak::exec::PACK_COLS,
        }),
    });
    let err = g
        .add_node(op, vec![x, w], &["y"], "y")
        .unwrap_err()
        .to_string();
    assert!(err.contains("packed weight") && err.contains("50"), "{err}");
}
