//! The GPU cost model chooses other graphs than the CPU one from the same e-graph, for the
//! two reasons it models: small kernels cannot fill the device (so merging them pays more
//! than on a CPU), and an op the device has no kernel for costs its host time plus moving
//! its activations both ways (so extraction keeps forms the device runs). Every optimized
//! graph is checked to compute the original's values.

mod common;
use common::*;
use kayak_ir::ops::*;
use kayak_ir::{Graph, Op};
use kayak_rewrite::CostModel;

fn matmul() -> Op {
    Op::MatMul(MatMul {
        trans_x: false,
        trans_y: false,
        alpha: 1.0,
    })
}

/// Three fully-connected layers of one `[rows, 256]` input, each kept (no attention takes
/// the packed product, so merging them needs a split copy).
fn three_heads(rows: usize) -> Graph {
    let mut b = B::new();
    let x = b.input(&[rows, 256]);
    let mut outs = Vec::new();
    for seed in 0..3 {
        let w = b.w(rand(&[256, 256], seed));
        let bias = b.w(rand(&[256], 10 + seed));
        let m = b.op(matmul(), &[x, w]);
        outs.push(b.op(add(-1), &[m, bias]));
    }
    b.out(&outs)
}

#[test]
fn small_products_merge_on_the_gpu_and_stay_apart_on_the_cpu() {
    let g = three_heads(8);
    let cpu = optimize_checked_with(&g, &CostModel::cpu());
    assert_eq!(
        kinds(&cpu.graph),
        ["fused_matmul", "fused_matmul", "fused_matmul"],
        "on the CPU the split copy costs more than the launches it saves"
    );
    let gpu = optimize_checked_with(&g, &CostModel::gpu());
    assert_eq!(
        kinds(&gpu.graph),
        ["fused_matmul", "split"],
        "on the GPU a launch costs more than the copy, and one product of 768 columns fills the SMs better than three of 256"
    );
    assert!(gpu.report.rules_applied.contains_key("qkv_horizontal"));
}

/// `act(x · W + b)` for a `[64, 128]` input and a `[128, 96]` weight.
fn fc(act: UnaryOp) -> Graph {
    let mut b = B::new();
    let x = b.input(&[64, 128]);
    let w = b.w(rand(&[128, 96], 1));
    let bias = b.w(rand(&[96], 2));
    let m = b.op(matmul(), &[x, w]);
    let y = b.op(add(-1), &[m, bias]);
    let y = b.op(un(act), &[y]);
    b.out(&[y])
}

/// A stand-in for a device whose GEMM epilogues do bias and relu only.
fn epilogues_bias_relu(op: &Op) -> bool {
    match op {
        Op::FusedMatMul(f) => matches!(f.act, None | Some(UnaryOp::Relu)),
        _ => true,
    }
}

#[test]
fn an_epilogue_the_device_lacks_stays_a_separate_kernel_on_it() {
    let g = fc(UnaryOp::Gelu { approximate: false });
    let cpu = optimize_checked_with(&g, &CostModel::cpu());
    assert_eq!(kinds(&cpu.graph), ["fused_matmul"]);
    assert!(matches!(&cpu.graph.nodes[0].op, Op::FusedMatMul(f) if f.act.is_some()));

    // Every op native: the GPU fuses the gelu as the CPU does.
    let all = optimize_checked_with(&g, &CostModel::gpu());
    assert_eq!(kinds(&all.graph), ["fused_matmul"]);

    // No gelu epilogue: running the fused op on the host would copy its input and output
    // across the link, so the product keeps its bias and the gelu runs as its own kernel.
    let model = CostModel::gpu().with_native("bias-relu-epilogues", epilogues_bias_relu);
    assert_eq!(model.name, "gpu[bias-relu-epilogues]");
    let o = optimize_checked_with(&g, &model);
    assert_eq!(kinds(&o.graph), ["fused_matmul", "gelu"]);
    let fm = o
        .graph
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            Op::FusedMatMul(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert!(fm.has_bias && fm.act.is_none());
}

#[test]
fn a_native_relu_epilogue_still_fuses() {
    let g = fc(UnaryOp::Relu);
    let model = CostModel::gpu().with_native("bias-relu-epilogues", epilogues_bias_relu);
    let o = optimize_checked_with(&g, &model);
    assert_eq!(kinds(&o.graph), ["fused_matmul"]);
}
