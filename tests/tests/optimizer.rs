//! The optimizer on the real models: fewer ops than Paddle Inference's own optimized
//! program, and (in reference_models / dynamic_shapes / ocr_text, which run with the
//! optimizer on by default) the same outputs.

use kayak::{Config, Predictor};
use kayak_tests::*;

fn check(test: &str, name: &str) {
    let Some(manifest) = require(test, &format!("{name}/manifest.json")) else {
        return;
    };
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let paddle = m["paddle_optimized_ops"].as_u64().unwrap() as usize;
    let p = Predictor::new(Config::new().model_dir(manifest.parent().unwrap())).unwrap();
    let r = p
        .optimization_report()
        .expect("optimization is on by default");
    println!(
        "{name}: {} -> {} ops (Paddle Inference: {paddle}, ORT: {}), {:.0} ms, {}",
        r.ops_before, r.ops_after, m["ort_optimized_nodes"], r.optimize_ms, r.stop_reason
    );
    assert_eq!(r.ops_after, p.graph().nodes.len());
    assert!(
        r.ops_after < paddle,
        "{name}: {} ops after optimization, Paddle Inference has {paddle}",
        r.ops_after
    );
    assert!(r.cost_after <= r.cost_before, "{name}: cost went up");
    // Switched off, the graph runs as imported.
    let off = Predictor::new(
        Config::new()
            .model_dir(manifest.parent().unwrap())
            .ir_optim(false),
    )
    .unwrap();
    assert!(off.optimization_report().is_none());
    assert_eq!(off.graph().nodes.len(), r.ops_before);
}

#[test]
fn ppocr_det_beats_paddle_op_count() {
    check("ppocr_det_beats_paddle_op_count", "ppocr_det");
}

#[test]
fn ppocr_rec_beats_paddle_op_count() {
    check("ppocr_rec_beats_paddle_op_count", "ppocr_rec");
}

#[test]
fn ppocr_cls_beats_paddle_op_count() {
    check("ppocr_cls_beats_paddle_op_count", "ppocr_cls");
}

#[test]
fn mobilenet_v3_small_beats_paddle_op_count() {
    check(
        "mobilenet_v3_small_beats_paddle_op_count",
        "mobilenet_v3_small",
    );
}

#[test]
fn ernie_mini_beats_paddle_op_count() {
    check("ernie_mini_beats_paddle_op_count", "ernie_mini");
}

#[test]
fn user_rule_file_through_the_config() {
    let d = repo_root().join("assets/ppocr_cls");
    let base = Predictor::new(Config::new().model_dir(&d)).unwrap();
    let n = base.graph().nodes.len();
    // Disabling a rule by name through the config changes the graph (SE blocks stay unfused).
    let off = Predictor::new(Config::new().model_dir(&d).disable_rule("se_block")).unwrap();
    assert!(off.graph().nodes.len() > n);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.rules");
    std::fs::write(&f, "oops: (relu ?x) => (nonsense ?x)\n").unwrap();
    let err = Predictor::new(Config::new().model_dir(&d).rules_file(&f)).unwrap_err();
    assert!(err.to_string().contains("bad.rules:1"), "{err}");
}
