//! One model in several formats: the Paddle 3 PIR (`model.json`) and ONNX (`model.onnx`)
//! imports of a model give the graph its legacy (`.pdmodel`) import gives, and the same
//! outputs as Paddle Inference's references. Models: the shared ones that ship more than one
//! format, and the extra ones `scripts/make-extra-models.sh` exports (under the model
//! cache's `extra/`).

use kayak::{Config, Predictor, Tensor};
use kayak_tests::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The manifest's cases of a model directory: inputs and Paddle Inference's outputs, the
/// main one and the `extra_references` (a text-like image for the detector, whose output
/// on noise is ~0 everywhere).
/// Named inputs and the reference outputs of one case.
type Case = (Vec<(String, Tensor)>, Vec<Tensor>);

fn cases(dir: &Path) -> Vec<Case> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let load = |f: &serde_json::Value| npy(&dir.join(f.as_str().unwrap())).unwrap();
    let files = |k: &str| -> Vec<Tensor> {
        m[k].as_array()
            .unwrap()
            .iter()
            .map(|i| load(&i["file"]))
            .collect()
    };
    let names: Vec<String> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    let named = |ts: Vec<Tensor>| names.iter().cloned().zip(ts).collect::<Vec<_>>();
    let mut v = vec![(named(files("inputs")), files("outputs"))];
    // Two manifest dialects: inputs by name or in order, outputs as files or objects.
    let file = |f: &serde_json::Value| load(if f.is_string() { f } else { &f["file"] });
    for e in m["extra_references"].as_array().into_iter().flatten() {
        let inputs = match e["inputs"].as_array() {
            Some(list) => list.iter().map(file).collect(),
            None => m["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| load(&e["inputs"][i["name"].as_str().unwrap()]))
                .collect(),
        };
        let outputs = e["outputs"].as_array().unwrap().iter().map(file).collect();
        v.push((named(inputs), outputs));
    }
    v
}

/// Runs `file` of `dir` against the references; returns the optimized graph's op kinds.
fn check_file(dir: &Path, file: &str, want_format: &str) -> BTreeMap<String, usize> {
    let path = dir.join(file);
    let mut p = Predictor::new(Config::new().model_file(&path)).unwrap();
    let format = p.model().format.clone();
    assert!(
        format.contains(want_format),
        "{}: imported as `{format}`, expected {want_format}",
        path.display()
    );
    for (c, (named, refs)) in cases(dir).iter().enumerate() {
        // In the model's input order (an ONNX export may list them in another).
        let inputs: Vec<Tensor> = p
            .input_names()
            .iter()
            .map(|n| named.iter().find(|(m, _)| m == n).unwrap().1.clone())
            .collect();
        let outs = p.run_with(&inputs).unwrap();
        assert_eq!(outs.len(), refs.len(), "{}: output count", path.display());
        for (k, (got, want)) in outs.iter().zip(refs).enumerate() {
            let (r, at) = worst_ratio(got, want, ATOL, RTOL).unwrap();
            println!(
                "{} case {c} output {k}: worst |err|/tol = {r:.4} at {at}",
                path.display()
            );
            assert!(
                r <= 1.0,
                "{} case {c} output {k}: error {r:.3}x the tolerance at element {at}",
                path.display()
            );
        }
    }
    let n = p.graph().nodes.len();
    let r = p.optimization_report().unwrap();
    println!("{}: {} -> {n} ops ({format})", path.display(), r.ops_before);
    let mut kinds = BTreeMap::new();
    for node in &p.graph().nodes {
        *kinds.entry(node.op.name().to_string()).or_insert(0) += 1;
    }
    kinds
}

/// The PIR and legacy forms of one model: both match the references, with the same
/// optimized op count.
fn pir_parity(test: &str, name: &str, legacy: &str) {
    let Some(m) = require(test, &format!("{name}/manifest.json")) else {
        return;
    };
    let dir = m.parent().unwrap();
    let pir = check_file(dir, "model.json", "PIR");
    let old = check_file(dir, legacy, "legacy");
    let count = |k: &BTreeMap<String, usize>| k.values().sum::<usize>();
    assert_eq!(
        pir,
        old,
        "{name}: the PIR import optimizes to {} ops, the legacy one to {}",
        count(&pir),
        count(&old)
    );
}

#[test]
fn mobilenet_v3_small_pir_matches_legacy_and_reference() {
    pir_parity(
        "mobilenet_v3_small_pir_matches_legacy_and_reference",
        "mobilenet_v3_small",
        "model.pdmodel",
    );
}

#[test]
fn ernie_mini_pir_matches_legacy_and_reference() {
    pir_parity(
        "ernie_mini_pir_matches_legacy_and_reference",
        "ernie_mini",
        "model.pdmodel",
    );
}

/// The optimized op kinds of a model file (loaded, not run).
fn op_kinds(path: &Path) -> BTreeMap<String, usize> {
    let p = Predictor::new(Config::new().model_file(path)).unwrap();
    let mut kinds = BTreeMap::new();
    for node in &p.graph().nodes {
        *kinds.entry(node.op.name().to_string()).or_insert(0) += 1;
    }
    kinds
}

/// An exported model of `scripts/make-extra-models.sh` in PIR (and legacy, when it has one
/// beside it; else the shared legacy model `legacy`).
fn extra_pir(test: &str, name: &str, legacy: Option<&str>) {
    let Some(m) = require(test, &format!("extra/{name}/manifest.json")) else {
        return;
    };
    let dir = m.parent().unwrap();
    let pir = check_file(dir, "model.json", "PIR");
    let old = match legacy {
        None => check_file(dir, "model.pdmodel", "legacy"),
        Some(rel) => {
            let Some(p) = require(test, rel) else {
                return;
            };
            op_kinds(&p)
        }
    };
    if SHAPE_CHAIN_DIFFERS.contains(&name) {
        // Paddle writes these two programs differently (see SHAPE_CHAIN_DIFFERS): only
        // the graphs' size is compared, with the one op of slack that difference makes.
        let (a, b) = (pir.values().sum::<usize>(), old.values().sum::<usize>());
        println!("{name}: PIR {a} ops {pir:?}; legacy {b} ops {old:?}");
        assert!(a <= b + 1, "{name}: PIR {a} ops, legacy {b}");
        return;
    }
    assert_eq!(
        pir, old,
        "{name}: PIR and legacy imports optimize differently"
    );
}

/// Models whose PIR export Paddle writes with another shape computation than the legacy
/// one: ERNIE 3.0's position ids are `cumsum(ones(shape))`, the shape taken as
/// `stack(slice(shape64(ids)))` in the PIR program (`pd_op.full_with_tensor`) and as
/// `slice(shape(ids))` in the legacy one (`fill_constant` with `ShapeTensor`). For given
/// input shapes both chains fold away at plan time.
/// DeiT's class-token `expand` to the batch takes its shape the same two ways.
const SHAPE_CHAIN_DIFFERS: &[&str] = &["ernie3_tokcls", "ernie3_uie", "deit_tiny"];

/// Family models paddle2onnx 2.1.0 cannot convert (it crashes with SIGSEGV on DeiT).
const NO_ONNX: &[&str] = &["deit_tiny"];

#[test]
fn resnet50_pir_matches_legacy_and_reference() {
    extra_pir(
        "resnet50_pir_matches_legacy_and_reference",
        "resnet50",
        None,
    );
}

#[test]
fn mobilenet_v2_pir_matches_legacy_and_reference() {
    extra_pir(
        "mobilenet_v2_pir_matches_legacy_and_reference",
        "mobilenet_v2",
        None,
    );
}

#[test]
fn ernie_tiny_pir_matches_legacy_and_reference() {
    extra_pir(
        "ernie_tiny_pir_matches_legacy_and_reference",
        "ernie_tiny_pir",
        None,
    );
}

#[test]
fn ppocr_pir_conversions_match_legacy_and_reference() {
    for m in ["det", "rec", "cls"] {
        extra_pir(
            "ppocr_pir_conversions_match_legacy_and_reference",
            &format!("ppocr_{m}_pir"),
            Some(&format!("ppocr_{m}/inference.pdmodel")),
        );
    }
}

/// The ONNX form of a model matches the references, and optimizes to no more ops than its
/// legacy import and ONNX Runtime's EXTENDED-optimized graph (`ort_optimized_nodes`).
fn onnx_check(test: &str, dir_rel: &str, legacy: &str, ort_key: &[&str]) {
    let Some(m) = require(test, &format!("{dir_rel}/manifest.json")) else {
        return;
    };
    let dir = m.parent().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    let onnx = check_file(dir, "model.onnx", "ONNX");
    let n = onnx.values().sum::<usize>();
    let Some(legacy_path) = require(test, legacy) else {
        return;
    };
    let old_kinds = op_kinds(&legacy_path);
    let old: usize = old_kinds.values().sum();
    let mut ort = &manifest;
    for k in ort_key {
        ort = &ort[k];
    }
    let ort = ort.as_u64().expect("ort_optimized_nodes in the manifest") as usize;
    println!(
        "{dir_rel}: ONNX {n} ops, legacy {old}, ORT EXTENDED {ort}: {onnx:?}; legacy {old_kinds:?}"
    );
    // Dynamic-shape exports carry their shape chains (folded per shape at plan time),
    // which paddle2onnx spells with more ops than the legacy program.
    let dynamic = SHAPE_CHAIN_DIFFERS.iter().any(|m| dir_rel.ends_with(m));
    assert!(
        n <= old || dynamic,
        "{dir_rel}: ONNX import optimizes to {n} ops, legacy to {old}"
    );
    assert!(
        n <= ort,
        "{dir_rel}: {n} ops, ONNX Runtime EXTENDED has {ort}"
    );
}

#[test]
fn shared_onnx_models_match_reference_with_no_more_ops_than_legacy_or_ort() {
    let t = "shared_onnx_models_match_reference_with_no_more_ops_than_legacy_or_ort";
    for (m, legacy) in [
        ("mobilenet_v3_small", "mobilenet_v3_small/model.pdmodel"),
        ("ppocr_det", "ppocr_det/inference.pdmodel"),
        ("ppocr_rec", "ppocr_rec/inference.pdmodel"),
        ("ppocr_cls", "ppocr_cls/inference.pdmodel"),
    ] {
        onnx_check(t, m, legacy, &["ort_optimized_nodes"]);
    }
}

#[test]
fn exported_onnx_models_match_reference_with_no_more_ops_than_legacy_or_ort() {
    let t = "exported_onnx_models_match_reference_with_no_more_ops_than_legacy_or_ort";
    for m in ["resnet50", "mobilenet_v2", "ernie_tiny_pir"] {
        onnx_check(
            t,
            &format!("extra/{m}"),
            &format!("extra/{m}/model.pdmodel"),
            &["ort_optimized_nodes"],
        );
    }
}

/// The toolkit architectures of `scripts/model_families.py` (PaddleClas, PaddleNLP; seeded
/// weights): PIR and legacy give the same optimized graph and Paddle's outputs; the ONNX
/// export (paddle2onnx) matches too, with no more ops than its legacy import or ORT.
#[test]
fn toolkit_family_models_match_reference_in_every_format() {
    let t = "toolkit_family_models_match_reference_in_every_format";
    for m in [
        "pplcnet_x1_0",
        "pphgnetv2_b0",
        "resnet50_vd",
        "deit_tiny",
        "ernie3_tokcls",
        "ernie3_uie",
    ] {
        extra_pir(t, m, None);
        if NO_ONNX.contains(&m) {
            continue;
        }
        onnx_check(
            t,
            &format!("extra/{m}"),
            &format!("extra/{m}/model.pdmodel"),
            &["ort_optimized_nodes"],
        );
    }
}
