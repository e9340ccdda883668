//! `Config::enable_gpu` on this machine: a typed error saying why the GPU cannot be used,
//! never a panic. Built without the `cuda` feature, that the build has none; with it
//! (`--features cuda`), on a machine without the CUDA libraries, which library is missing.
//! The predictor is never made to run on the CPU instead. (With a GPU present it loads:
//! `gpu_exec.rs` runs the GPU path on the CPU emulator.)

use kayak::{Config, Error, GpuError as G, Predictor};
use kayak_tests::repo_root;

#[test]
fn enable_gpu_gives_a_typed_reason_on_this_machine() {
    let cfg = Config::new()
        .model_dir(repo_root().join("assets/ppocr_cls"))
        .enable_gpu(0);
    let err = match Predictor::new(cfg) {
        Ok(_) if cfg!(feature = "cuda") => {
            // A machine with a GPU: the predictor is on it.
            return;
        }
        Ok(_) => panic!("a predictor on the GPU, from a build without the cuda feature"),
        Err(e) => e,
    };
    let Error::Gpu(gpu) = &err else {
        panic!("not a GPU error: {err}");
    };
    if cfg!(feature = "cuda") {
        assert!(
            matches!(
                gpu,
                G::LibraryMissing { .. } | G::Driver(_) | G::NoDevice { .. }
            ),
            "{err}"
        );
        if let G::LibraryMissing { lib } = gpu {
            assert_eq!(*lib, "libcuda", "{err}");
            assert!(err.to_string().contains("libcuda"), "{err}");
        }
    } else {
        assert_eq!(*gpu, G::NotBuilt, "{err}");
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
    // A device index no machine has, and the same config without the GPU, which loads.
    let far = Config::new()
        .model_dir(repo_root().join("assets/ppocr_cls"))
        .enable_gpu(1 << 20);
    assert!(matches!(Predictor::new(far), Err(Error::Gpu(_))));
    let cpu = Config::new().model_dir(repo_root().join("assets/ppocr_cls"));
    assert!(Predictor::new(cpu).is_ok());
}

/// The shared CNN models on a real GPU against Paddle's references (fp32 tolerance
/// |a − b| ≤ 1e-3 + 1e-2·|b|). Ignored — reported as skipped — unless asked for on a GPU
/// machine with a `--features cuda` build.
#[test]
#[ignore = "needs an NVIDIA GPU: `cargo test -p kayak-tests --features cuda --test gpu -- --ignored` there (or benches/gpu_check.py with scripts/gpu-bundle.sh)"]
fn shared_models_match_their_references_on_the_gpu() {
    use kayak_tests::{npy, require, worst_ratio};
    for name in ["mobilenet_v3_small", "ppocr_cls", "ppocr_rec", "ppocr_det"] {
        let test = "shared_models_match_their_references_on_the_gpu";
        let Some(m) = require(test, &format!("{name}/manifest.json")) else {
            continue;
        };
        let dir = m.parent().unwrap();
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
        let mut p = Predictor::new(Config::new().model_dir(dir).enable_gpu(0)).unwrap();
        let inputs: Vec<kayak::Tensor> = manifest["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| npy(&dir.join(i["file"].as_str().unwrap())).unwrap())
            .collect();
        let outs = p.run_with(&inputs).unwrap();
        for (got, o) in outs.iter().zip(manifest["outputs"].as_array().unwrap()) {
            let want = npy(&dir.join(o["file"].as_str().unwrap())).unwrap();
            let (r, at) = worst_ratio(got, &want, 1e-3, 1e-2).unwrap();
            println!("{name}: worst |err|/tol = {r:.4} at {at}");
            assert!(r <= 1.0, "{name}: {r:.3}x the tolerance at {at}");
        }
    }
}
