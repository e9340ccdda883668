//! The GPU executor (`kayak::gpu_exec`) on the CPU emulator of a CUDA device: the same
//! generated CUDA C kernels, compiled by the host C++ compiler, run for real models and
//! match Paddle Inference's references; ops the device lacks run on the host between copies
//! chosen by the placement (`kayak_rewrite::place_with`).

use kayak::ir::Tensor;
use kayak::{Config, GpuPlacement, Predictor};
use kayak_tests::*;

/// Runs shared model `name` (its references, extra fetch and text-like case included) on
/// an emulated GPU predictor, every op with a device kernel on the device with `all`, else
/// placed by the GPU cost model; returns what ran where.
fn check_model(test: &str, name: &str, all: bool) -> Option<kayak::gpu_exec::GpuReport> {
    let extra: &[(&str, &str, &str)] = if name == "ppocr_det" {
        &[("input_x_textlike.npy", "output_0_textlike.npy", "textlike")]
    } else {
        &[]
    };
    let placement = if all {
        GpuPlacement::Device
    } else {
        GpuPlacement::Cost
    };
    let (p, shapes) = check_model_tol(test, name, extra, GPU_TOL, |c| {
        c.enable_gpu_emulator().gpu_placement(placement)
    })?;
    let report = kayak_tests::gpu_report(&p, &shapes).unwrap();
    println!("{name}: {report:?}");
    Some(report)
}

#[test]
fn mobilenet_v3_small_runs_on_the_emulated_device_and_matches() {
    let Some(r) = check_model(
        "mobilenet_v3_small_runs_on_the_emulated_device_and_matches",
        "mobilenet_v3_small",
        true,
    ) else {
        return;
    };
    assert_eq!(r.host_nodes, 0, "{r:?}");
    assert_eq!((r.uploads, r.downloads), (1, 1));
}

#[test]
fn ppocr_cls_runs_on_the_emulated_device_and_matches() {
    let Some(r) = check_model(
        "ppocr_cls_runs_on_the_emulated_device_and_matches",
        "ppocr_cls",
        true,
    ) else {
        return;
    };
    assert_eq!(r.host_nodes, 0, "{r:?}");
}

#[test]
fn ppocr_det_runs_on_the_emulated_device_and_matches() {
    let Some(r) = check_model(
        "ppocr_det_runs_on_the_emulated_device_and_matches",
        "ppocr_det",
        false,
    ) else {
        return;
    };
    assert!(r.device_nodes > 60, "{r:?}");
}

#[test]
fn ppocr_rec_runs_on_the_emulated_device_and_matches() {
    let Some(r) = check_model(
        "ppocr_rec_runs_on_the_emulated_device_and_matches",
        "ppocr_rec",
        false,
    ) else {
        return;
    };
    assert!(r.device_nodes > 60, "{r:?}");
}

#[test]
fn ernie_mini_runs_with_its_integer_ops_on_the_host_and_matches() {
    let Some(r) = check_model(
        "ernie_mini_runs_with_its_integer_ops_on_the_host_and_matches",
        "ernie_mini",
        false,
    ) else {
        return;
    };
    assert!(r.host_nodes > 0 && r.device_nodes > 30, "{r:?}");
}

#[test]
fn a_predictor_on_the_emulated_gpu_agrees_with_the_cpu_through_every_interface() {
    let dir = repo_root().join("assets/ppocr_cls");
    let x = npy(&repo_root().join("assets/text_line.npy")).unwrap();
    let x180 = npy(&repo_root().join("assets/text_line_rot180.npy")).unwrap();
    let mut cpu = Predictor::new(Config::new().model_dir(&dir)).unwrap();
    let mut gpu = Predictor::new(Config::new().model_dir(&dir).enable_gpu_emulator()).unwrap();
    // Optimized for the GPU's cost model.
    assert!(gpu.optimization_report().is_some());
    assert!(kayak_tests::gpu_report(&cpu, &[x.shape().to_vec()]).is_none());
    for input in [&x, &x180] {
        let want = cpu.run_with(std::slice::from_ref(input)).unwrap();
        let got = gpu.run_with(std::slice::from_ref(input)).unwrap();
        let (r, at) = worst_ratio(&got[0], &want[0], 1e-3, 1e-2).unwrap();
        assert!(r <= 1.0, "{r} at {at}");
    }
    // Handles, and a clone with its own inputs and outputs.
    let mut clone = gpu.clone();
    clone.input("x").unwrap().set(x180.clone()).unwrap();
    clone.run().unwrap();
    gpu.input("x").unwrap().set(x.clone()).unwrap();
    gpu.run().unwrap();
    let name = gpu.output_names()[0].clone();
    let mut a = vec![0f32; 2];
    let mut b = vec![0f32; 2];
    gpu.output(&name).unwrap().copy_to_cpu(&mut a).unwrap();
    clone.output(&name).unwrap().copy_to_cpu(&mut b).unwrap();
    // The upright line and the upside-down one are told apart.
    assert!(a[0] > 0.5 && b[1] > 0.5, "{a:?} {b:?}");
    let report = kayak_tests::gpu_report(&gpu, &[x.shape().to_vec()]).unwrap();
    assert!(report.device_nodes > 40, "{report:?}");
    // A wrong input is a typed error, as on the CPU.
    let bad = Tensor::zeros(kayak::DType::F32, &[1, 4, 48, 192]);
    assert!(gpu.run_with(&[bad]).is_err());
}

#[test]
fn predictor_clones_run_at_once_on_their_own_streams() {
    let dir = repo_root().join("assets/ppocr_cls");
    let x = npy(&repo_root().join("assets/text_line.npy")).unwrap();
    let x180 = npy(&repo_root().join("assets/text_line_rot180.npy")).unwrap();
    let mut cpu = Predictor::new(Config::new().model_dir(&dir)).unwrap();
    let want = [
        cpu.run_with(std::slice::from_ref(&x)).unwrap(),
        cpu.run_with(std::slice::from_ref(&x180)).unwrap(),
    ];
    let gpu = Predictor::new(Config::new().model_dir(&dir).enable_gpu_emulator()).unwrap();
    // Four clones, two inputs, each clone running 3 times on its own thread: every result
    // matches its input's (a shared arena would mix them).
    std::thread::scope(|s| {
        for t in 0..4 {
            let mut p = gpu.clone();
            let (input, want) = if t % 2 == 0 {
                (&x, &want[0])
            } else {
                (&x180, &want[1])
            };
            s.spawn(move || {
                for _ in 0..3 {
                    let got = p.run_with(std::slice::from_ref(input)).unwrap();
                    let (r, at) = worst_ratio(&got[0], &want[0], 1e-3, 1e-2).unwrap();
                    assert!(r <= 1.0, "clone {t}: {r} at {at}");
                }
            });
        }
    });
}

/// One GPU predictor (emulated) runs a model at several shapes, each against Paddle's
/// reference: a plan per shape signature, the clone's arena grown as shapes grow.
fn dynamic_cases(test: &str, model: &str, names: &[&str]) {
    let Some(cases) = require(test, "dynamic/cases.json") else {
        return;
    };
    let dir = cases.parent().unwrap().to_path_buf();
    let Some(mdir) = require(test, &format!("{model}/manifest.json")) else {
        return;
    };
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cases).unwrap()).unwrap();
    let mut p = Predictor::new(
        Config::new()
            .model_dir(mdir.parent().unwrap())
            .enable_gpu_emulator(),
    )
    .unwrap();
    for name in names {
        let case = j["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == *name)
            .unwrap();
        let inputs: Vec<Tensor> = p
            .input_names()
            .to_vec()
            .iter()
            .map(|n| npy(&dir.join(case["inputs"][n].as_str().unwrap())).unwrap())
            .collect();
        let got = p.run_with(&inputs).unwrap();
        let want = npy(&dir.join(case["outputs"][0].as_str().unwrap())).unwrap();
        let (r, at) = worst_ratio(&got[0], &want, 1e-3, 1e-2).unwrap();
        println!("{name}: worst |err|/tol = {r:.4} at {at}");
        assert!(r <= 1.0, "{name}: {r:.3}x the tolerance at {at}");
    }
}

#[test]
fn ppocr_rec_at_two_widths_on_one_emulated_gpu_predictor() {
    dynamic_cases(
        "ppocr_rec_at_two_widths_on_one_emulated_gpu_predictor",
        "ppocr_rec",
        &["rec_0_w160", "rec_1_w640", "rec_2_w160"],
    );
}

#[test]
fn ernie_at_three_batch_and_length_shapes_on_one_emulated_gpu_predictor() {
    dynamic_cases(
        "ernie_at_three_batch_and_length_shapes_on_one_emulated_gpu_predictor",
        "ernie_mini",
        &["ernie_b4_s16", "ernie_b1_s64", "ernie_b2_s128"],
    );
}
