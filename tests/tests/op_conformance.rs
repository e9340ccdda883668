//! Op conformance: one tiny Paddle model per op family (`tests/data/ops`, made by
//! `scripts/gen_op_cases.py` with Paddle itself), covering the attribute variants the shared
//! models do not use — groups, dilations, SAME/VALID and asymmetric paddings, transposed
//! convolution with output_size, ceil_mode and adaptive pooling, Paddle's axis broadcast,
//! Python-style mod/floordiv, every activation, align_corners/align_mode, pad modes, ...

use kayak::{Config, DType, GpuPlacement, Predictor, Tensor};
use kayak_tests::*;

/// `None` if `got` matches `want`, else what differs.
fn compare(case: &str, k: usize, got: &Tensor, want: &Tensor, tol: f64) -> Option<String> {
    if got.shape() != want.shape() {
        return Some(format!(
            "{case} output {k}: shape {:?}, Paddle {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if want.dtype().is_float() {
        if got.dtype() != want.dtype() {
            return Some(format!(
                "{case} output {k}: dtype {}, Paddle {}",
                got.dtype(),
                want.dtype()
            ));
        }
        let (r, at) = worst_ratio(got, want, tol, tol).unwrap();
        (r > 1.0).then(|| {
            format!(
                "{case} output {k}: {r:.2}x the tolerance at {at}: {} vs {}",
                got.to_f64_vec()[at],
                want.to_f64_vec()[at]
            )
        })
    } else if got.to_i64_vec() != want.to_i64_vec()
        || (want.dtype() == DType::Bool) != (got.dtype() == DType::Bool)
    {
        // Integer and bool results are exact.
        Some(format!(
            "{case} output {k}: {} {:?} vs Paddle {} {:?}",
            got.dtype(),
            got.to_i64_vec(),
            want.dtype(),
            want.to_i64_vec()
        ))
    } else {
        None
    }
}

/// A case's predictor and the input shapes it ran.
type Ran = (Predictor, Vec<Vec<usize>>);

/// Runs every case under `config(model dir)`; returns the outputs checked, the mismatches,
/// and the predictors (for their reports).
fn run_cases(
    config: impl Fn(&std::path::Path) -> Config,
    tol: f64,
) -> (usize, Vec<String>, Vec<Ran>) {
    let dir = repo_root().join("tests/data/ops");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let mut outputs = 0;
    let mut failures = Vec::new();
    let mut predictors = Vec::new();
    for case in index["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let d = dir.join(name);
        let mut p = match Predictor::new(config(&d)) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let inputs: Vec<Tensor> = p
            .input_names()
            .to_vec()
            .iter()
            .map(|n| npy(&d.join(format!("input_{n}.npy"))).unwrap())
            .collect();
        let outs = match p.run_with(&inputs) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let n = case["outputs"].as_u64().unwrap() as usize;
        assert_eq!(outs.len(), n, "{name}");
        for (k, got) in outs.iter().enumerate() {
            failures.extend(compare(
                name,
                k,
                got,
                &npy(&d.join(format!("output_{k}.npy"))).unwrap(),
                tol,
            ));
        }
        outputs += n;
        predictors.push((p, inputs.iter().map(|t| t.shape().to_vec()).collect()));
    }
    (outputs, failures, predictors)
}

#[test]
fn every_op_case_matches_paddle() {
    let (outputs, failures, _) = run_cases(|d| Config::new().model_dir(d), 1e-5);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{outputs} op outputs match Paddle");
    assert!(outputs >= 90, "only {outputs} outputs checked");
}

#[test]
fn every_op_case_matches_paddle_on_the_emulated_gpu() {
    // The GPU path: every op with a device kernel runs as generated CUDA C on the
    // emulator (with the cost placement these tiny cases would stay on the host), the rest
    // on the host between copies.
    let (outputs, failures, predictors) = run_cases(
        |d| {
            Config::new()
                .model_dir(d)
                .enable_gpu_emulator()
                .gpu_placement(GpuPlacement::Device)
        },
        1e-4,
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let (mut device, mut host) = (0, std::collections::BTreeMap::new());
    for (p, shapes) in &predictors {
        let r = kayak_tests::gpu_report(p, shapes).unwrap();
        device += r.device_nodes;
        for (k, v) in r.host_ops {
            *host.entry(k).or_insert(0) += v;
        }
    }
    println!(
        "{outputs} op outputs match Paddle; {device} nodes on the device, on the host: {host:?}"
    );
    assert!(outputs >= 90, "only {outputs} outputs checked");
    assert!(device >= 82, "only {device} nodes on the device");
}

#[test]
fn dynamic_batch_chain_replans_per_batch() {
    let d = repo_root().join("tests/data/ops/dynamic_batch_reshape_chain");
    let mut p = Predictor::new(Config::new().model_dir(&d)).unwrap();
    let x = npy(&d.join("input_x.npy")).unwrap();
    let want = npy(&d.join("output_0.npy")).unwrap().to_f64_vec();
    // Batch 1: the first of the three rows.
    let x1 = x.to_f64_vec()[..24].to_vec();
    let out = p
        .run_with(&[Tensor::F64(kayak::ir::ndarray_from(&[1, 4, 6], x1)).cast(DType::F32)])
        .unwrap();
    assert_eq!(out[0].shape(), &[1, 12, 2]);
    assert_eq!(out[0].to_f64_vec(), want[..24].to_vec());
    let out = p.run_with(&[x]).unwrap();
    assert_eq!(out[0].shape(), &[3, 12, 2]);
}
