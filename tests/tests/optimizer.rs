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

/// MobileNetV3's squeeze-and-excitation blocks multiply gate first (`multiply(gate, x)`);
/// with multiplication commuting in the e-graph, all nine become `se_block`s.
#[test]
fn mobilenet_v3_small_fuses_its_gate_first_se_blocks() {
    let test = "mobilenet_v3_small_fuses_its_gate_first_se_blocks";
    let Some(manifest) = require(test, "mobilenet_v3_small/manifest.json") else {
        return;
    };
    let p = Predictor::new(Config::new().model_dir(manifest.parent().unwrap())).unwrap();
    let count = |name: &str| {
        p.graph()
            .nodes
            .iter()
            .filter(|n| n.op.name() == name)
            .count()
    };
    assert_eq!(count("se_block"), 9);
    assert_eq!(count("mul_elementwise"), 0);
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

#[test]
fn optimized_graph_cache_skips_saturation_and_rebuilds_bad_entries() {
    let d = repo_root().join("assets/ppocr_cls");
    let cache = tempfile::tempdir().unwrap();
    let x = npy(&repo_root().join("assets/text_line.npy")).unwrap();
    let load =
        |cfg: Config| Predictor::new(cfg.model_dir(&d).optim_cache_dir(cache.path())).unwrap();
    let mut first = load(Config::new());
    let r1 = first.optimization_report().unwrap().clone();
    assert!(!r1.from_cache);
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let want = first.run_with(std::slice::from_ref(&x)).unwrap();

    let mut second = load(Config::new());
    let r2 = second.optimization_report().unwrap();
    assert!(r2.from_cache, "second load must come from the cache");
    assert_eq!(r2.ops_after, r1.ops_after);
    println!(
        "optimize: {:.1} ms; from cache: {:.1} ms",
        r1.optimize_ms, r2.optimize_ms
    );
    assert_eq!(second.run_with(std::slice::from_ref(&x)).unwrap(), want);

    // A corrupt entry (one flipped byte) is detected and rebuilt, then served again.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    std::fs::write(&files[0], &bytes).unwrap();
    let mut third = load(Config::new());
    assert!(!third.optimization_report().unwrap().from_cache);
    assert_eq!(third.run_with(std::slice::from_ref(&x)).unwrap(), want);
    assert!(
        load(Config::new())
            .optimization_report()
            .unwrap()
            .from_cache
    );

    // Truncated, and not a cache file at all: rebuilt too.
    std::fs::write(&files[0], &bytes[..n / 2]).unwrap();
    assert!(
        !load(Config::new())
            .optimization_report()
            .unwrap()
            .from_cache
    );
    std::fs::write(&files[0], b"hello").unwrap();
    assert!(
        !load(Config::new())
            .optimization_report()
            .unwrap()
            .from_cache
    );

    // Another rule set is another key: no stale reuse.
    let other = load(Config::new().disable_rule("se_block"));
    assert!(!other.optimization_report().unwrap().from_cache);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);

    // So is another cost model, and another kernel set of the same device.
    let gpu = || kayak::CostModel::gpu();
    assert!(
        !load(Config::new().cost_model(gpu()))
            .optimization_report()
            .unwrap()
            .from_cache
    );
    assert!(
        load(Config::new().cost_model(gpu()))
            .optimization_report()
            .unwrap()
            .from_cache
    );
    let no_se = || gpu().with_native("no-se", |op| !matches!(op, kayak::ir::Op::SeBlock(_)));
    assert!(
        !load(Config::new().cost_model(no_se()))
            .optimization_report()
            .unwrap()
            .from_cache
    );
    assert!(
        load(Config::new().cost_model(no_se()))
            .optimization_report()
            .unwrap()
            .from_cache
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 4);
}
