//! Placement between a device and its host (`kayak_rewrite::place`): the minimum cut is
//! the cheapest of every assignment on small random graphs, ops without a device kernel
//! stay on the host, and the copies are the ones the sides imply.

mod common;
use common::*;
use kayak_ir::ops::*;
use kayak_ir::{Graph, Op};
use kayak_rewrite::place::{place, placement_cost, Side};
use kayak_rewrite::verify::Rng;
use kayak_rewrite::CostModel;

fn matmul() -> Op {
    Op::MatMul(MatMul {
        trans_x: false,
        trans_y: false,
        alpha: 1.0,
    })
}

/// A random DAG of `n` ops over `[rows, cols]` activations: unary ops, adds and products,
/// and matmuls by constant `[cols, cols]` weights; one or two inputs, two outputs.
fn random_graph(rng: &mut Rng, n: usize) -> Graph {
    let rows = [1, 16, 256, 2048][rng.below(4)];
    let cols = [16, 128, 512][rng.below(3)];
    let mut b = B::new();
    let mut vals = vec![b.input(&[rows, cols])];
    if rng.below(2) == 0 {
        vals.push(b.input(&[rows, cols]));
    }
    for i in 0..n {
        let x = vals[rng.below(vals.len())];
        let y = vals[rng.below(vals.len())];
        let v = match rng.below(6) {
            0 => b.op(un(UnaryOp::Relu), &[x]),
            1 => b.op(un(UnaryOp::Tanh), &[x]),
            2 => b.op(un(UnaryOp::Sigmoid), &[x]),
            3 => b.op(add(-1), &[x, y]),
            4 => b.op(mul(-1), &[x, y]),
            _ => {
                let w = b.w(rand(&[cols, cols], i as u64));
                b.op(matmul(), &[x, w])
            }
        };
        vals.push(v);
    }
    let last = *vals.last().unwrap();
    let other = vals[1 + rng.below(vals.len() - 1)];
    if other == last {
        b.out(&[last])
    } else {
        b.out(&[last, other])
    }
}

#[test]
fn the_cut_is_the_cheapest_assignment_of_random_graphs() {
    let mut rng = Rng::new(0x5eed_1234_abcd);
    let mut host_only = 0;
    let mut mixed = 0;
    for case in 0..120 {
        let n = 2 + rng.below(10);
        let g = random_graph(&mut rng, n);
        // Each case, a random set of op kinds without a device kernel.
        let missing = rng.below(8);
        let model = CostModel::gpu().with_native("random", move |op| match op {
            Op::Unary(UnaryOp::Tanh) => missing & 1 == 0,
            Op::Unary(UnaryOp::Sigmoid) => missing & 2 == 0,
            Op::Binary(Binary {
                op: BinaryOp::Mul,
                axis: _,
            }) => missing & 4 == 0,
            _ => true,
        });
        let p = place(&g, &model);
        let mut best = i64::MAX;
        for mask in 0u32..1 << n {
            let side: Vec<Side> = (0..n)
                .map(|k| {
                    if mask >> k & 1 == 1 {
                        Side::Device
                    } else {
                        Side::Host
                    }
                })
                .collect();
            best = best.min(placement_cost(&g, &model, &side).cost_ps);
        }
        assert_eq!(p.cost_ps, best, "case {case}: {n} ops, {:?}", p.side);
        assert_eq!(placement_cost(&g, &model, &p.side), p, "case {case}");
        for (k, node) in g.nodes.iter().enumerate() {
            if p.side[k] == Side::Device {
                assert!(
                    !matches!(
                        (&node.op, missing),
                        (Op::Unary(UnaryOp::Tanh), m) if m & 1 == 1
                    ) && !matches!(
                        (&node.op, missing),
                        (Op::Unary(UnaryOp::Sigmoid), m) if m & 2 == 2
                    ) && !matches!(
                        (&node.op, missing),
                        (Op::Binary(Binary { op: BinaryOp::Mul, axis: _ }), m) if m & 4 == 4
                    ),
                    "case {case}: node {k} ({}) has no device kernel",
                    node.op.name()
                );
            }
        }
        match p.on_device() {
            0 => host_only += 1,
            d if d < n => mixed += 1,
            _ => {}
        }
    }
    // The cases exercise every kind of answer.
    println!("host only {host_only}, mixed {mixed}, of 120");
    assert!(host_only > 0 && mixed > 0);
}

/// `x → matmul → relu → [op] → matmul → relu`, `[2048, 512]` activations.
fn chain(middle: Op) -> Graph {
    let mut b = B::new();
    let x = b.input(&[2048, 512]);
    let w1 = b.w(rand(&[512, 512], 1));
    let w2 = b.w(rand(&[512, 512], 2));
    let y = b.op(matmul(), &[x, w1]);
    let y = b.op(un(UnaryOp::Relu), &[y]);
    let y = b.op(middle, &[y]);
    let y = b.op(matmul(), &[y, w2]);
    let y = b.op(un(UnaryOp::Relu), &[y]);
    b.out(&[y])
}

#[test]
fn an_op_without_a_kernel_runs_on_the_host_between_two_copies() {
    let g = chain(un(UnaryOp::Erf));
    let model = CostModel::gpu().with_native("no-erf", |op| !matches!(op, Op::Unary(UnaryOp::Erf)));
    let p = place(&g, &model);
    use Side::*;
    assert_eq!(p.side, [Device, Device, Host, Device, Device]);
    // The input up, the erf's input down and its output up, the result down.
    let relu1 = g.nodes[1].outputs[0];
    let erf = g.nodes[2].outputs[0];
    assert_eq!(p.uploads, [g.inputs[0], erf]);
    assert_eq!(p.downloads, [relu1, g.outputs[0]]);

    // With a kernel for every op, nothing crosses but the input and the result.
    let p = place(&g, &CostModel::gpu());
    assert_eq!(p.on_device(), 5);
    assert_eq!((p.uploads.len(), p.downloads.len()), (1, 1));
}

#[test]
fn cheap_neighbours_of_a_host_op_join_it_when_that_saves_copies() {
    // x (on the host) → tanh → erf (host only) → relu → output (on the host): the tanh
    // and relu would each cost two copies to run on the device.
    let mut b = B::new();
    let x = b.input(&[64, 64]);
    let y = b.op(un(UnaryOp::Tanh), &[x]);
    let y = b.op(un(UnaryOp::Erf), &[y]);
    let y = b.op(un(UnaryOp::Relu), &[y]);
    let g = b.out(&[y]);
    let model = CostModel::gpu().with_native("no-erf", |op| !matches!(op, Op::Unary(UnaryOp::Erf)));
    let p = place(&g, &model);
    assert_eq!(p.side, [Side::Host; 3]);
    assert!(p.uploads.is_empty() && p.downloads.is_empty());
}

#[test]
fn a_value_read_on_both_sides_is_copied_once() {
    // m = matmul(x) on the device; two erfs (host only) and a relu (device) read it.
    let mut b = B::new();
    let x = b.input(&[2048, 512]);
    let w = b.w(rand(&[512, 512], 1));
    let m = b.op(matmul(), &[x, w]);
    let e1 = b.op(un(UnaryOp::Erf), &[m]);
    let e2 = b.op(un(UnaryOp::Erf), &[m]);
    let r = b.op(matmul(), &[m, w]);
    let g = b.out(&[e1, e2, r]);
    let model = CostModel::gpu().with_native("no-erf", |op| !matches!(op, Op::Unary(UnaryOp::Erf)));
    let p = place(&g, &model);
    assert_eq!(p.side[0], Side::Device);
    assert_eq!(p.downloads.iter().filter(|&&v| v == m).count(), 1);
}
