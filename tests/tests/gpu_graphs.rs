//! The graphs the optimizer chooses for a GPU (`Config::cost_model(CostModel::gpu())`)
//! compute Paddle Inference's references — run here on the CPU kernels — and differ from
//! the CPU's where the GPU table says another choice pays.

use kayak::ir::Op;
use kayak::CostModel;
use kayak_tests::*;

fn count(p: &kayak::Predictor, kind: &str) -> usize {
    p.optimization_report()
        .expect("optimization on")
        .ops_after_by_type
        .get(kind)
        .copied()
        .unwrap_or(0)
}

#[test]
fn ppocr_det_for_the_gpu_folds_more_residual_adds_and_matches_the_reference() {
    let test = "ppocr_det_for_the_gpu_folds_more_residual_adds_and_matches_the_reference";
    let Some(gpu) = check_model_with(
        test,
        "ppocr_det",
        &[("input_x_textlike.npy", "output_0_textlike.npy", "textlike")],
        |c| c.cost_model(CostModel::gpu()),
    ) else {
        return;
    };
    let cpu = check_model_with(test, "ppocr_det", &[], |c| c).expect("found above");
    // Where a conv's output is also read elsewhere, folding the residual add into it
    // computes that conv twice: not worth it on one core, worth a launch on the GPU.
    println!(
        "fused_conv / add: CPU {} / {}, GPU {} / {}",
        count(&cpu, "fused_conv"),
        count(&cpu, "add"),
        count(&gpu, "fused_conv"),
        count(&gpu, "add")
    );
    assert!(count(&gpu, "fused_conv") > count(&cpu, "fused_conv"));
    assert!(count(&gpu, "add") < count(&cpu, "add"));
}

#[test]
fn mobilenet_for_a_gpu_without_an_se_kernel_keeps_se_blocks_apart_and_matches() {
    let test = "mobilenet_for_a_gpu_without_an_se_kernel_keeps_se_blocks_apart_and_matches";
    let Some(gpu) = check_model_with(test, "mobilenet_v3_small", &[], |c| {
        c.cost_model(CostModel::gpu().with_native("no-se", |op| !matches!(op, Op::SeBlock(_))))
    }) else {
        return;
    };
    let cpu = check_model_with(test, "mobilenet_v3_small", &[], |c| c).expect("found above");
    assert_eq!(count(&cpu, "se_block"), 9);
    assert_eq!(count(&gpu, "se_block"), 0);
    // The SE blocks' parts still fuse (pool, the two 1×1 convs with their activations).
    assert!(count(&gpu, "fused_conv") >= count(&cpu, "fused_conv") + 18);
}

#[test]
fn ernie_for_the_gpu_matches_the_reference() {
    let test = "ernie_for_the_gpu_matches_the_reference";
    let Some(gpu) = check_model_with(test, "ernie_mini", &[], |c| c.cost_model(CostModel::gpu()))
    else {
        return;
    };
    assert_eq!(count(&gpu, "attention"), 6);
}
