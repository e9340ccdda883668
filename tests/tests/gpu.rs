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
    let test = "shared_models_match_their_references_on_the_gpu";
    for name in ["mobilenet_v3_small", "ppocr_cls", "ppocr_rec", "ppocr_det"] {
        kayak_tests::check_model_tol(test, name, &[], kayak_tests::GPU_TOL, |c| c.enable_gpu(0));
    }
}
