//! Predictor behaviour: clones on threads, the plan cache, fetched intermediates.

use kayak::{Config, Predictor, Tensor};
use kayak_tests::*;

fn cls() -> Predictor {
    Predictor::new(
        Config::new()
            .model_dir(repo_root().join("assets/ppocr_cls"))
            .plan_cache_size(2),
    )
    .unwrap()
}

fn line(rot: bool) -> Tensor {
    npy(&repo_root().join(if rot {
        "assets/text_line_rot180.npy"
    } else {
        "assets/text_line.npy"
    }))
    .unwrap()
}

#[test]
fn predictor_is_send_and_clones_run_concurrently_with_identical_results() {
    fn assert_send<T: Send>() {}
    assert_send::<Predictor>();
    let mut base = cls();
    let want_a = base.run_with(&[line(false)]).unwrap();
    let want_b = base.run_with(&[line(true)]).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut p = base.clone();
            let (x, want) = if i % 2 == 0 {
                (line(false), want_a.clone())
            } else {
                (line(true), want_b.clone())
            };
            std::thread::spawn(move || {
                for _ in 0..3 {
                    assert_eq!(p.run_with(std::slice::from_ref(&x)).unwrap(), want);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn plans_are_cached_per_shape_signature_and_bounded() {
    let p = cls();
    let a = p.plan_for(&[vec![1, 3, 48, 192]]).unwrap();
    let a2 = p.plan_for(&[vec![1, 3, 48, 192]]).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &a2),
        "same signature → same plan"
    );
    let b = p.plan_for(&[vec![2, 3, 48, 96]]).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &b));
    // The shape chain (shape → slice → reshape) is folded per signature.
    assert!(
        b.step_count() < p.model().op_histogram.values().sum::<usize>(),
        "{} steps for {} nodes",
        b.step_count(),
        p.model().op_histogram.values().sum::<usize>()
    );
    // Capacity 2: a third signature evicts the least recently used one.
    p.plan_for(&[vec![1, 3, 48, 128]]).unwrap();
    // Too small an input is a clear planning error, not a panic.
    assert!(p.plan_for(&[vec![1, 3, 32, 64]]).is_err());
    let a3 = p.plan_for(&[vec![1, 3, 48, 192]]).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &a3));
    // A clone shares the cache.
    let c = p.clone();
    assert!(std::sync::Arc::ptr_eq(
        &a3,
        &c.plan_for(&[vec![1, 3, 48, 192]]).unwrap()
    ));
}

#[test]
fn batch_of_two_equals_two_single_runs() {
    let mut p = cls();
    let a = p.run_with(&[line(false)]).unwrap()[0].to_f64_vec();
    let b = p.run_with(&[line(true)]).unwrap()[0].to_f64_vec();
    let mut both = line(false).to_f64_vec();
    both.extend(line(true).to_f64_vec());
    let x = Tensor::F64(kayak::ir::ndarray_from(&[2, 3, 48, 192], both)).cast(kayak::DType::F32);
    let ab = p.run_with(&[x]).unwrap()[0].to_f64_vec();
    for (g, w) in ab.iter().zip(a.iter().chain(&b)) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[test]
fn fetched_intermediates_come_after_outputs() {
    let mut p = Predictor::new(
        Config::new()
            .model_dir(repo_root().join("assets/ppocr_cls"))
            .fetch_var("linear_1.tmp_1")
            .fetch_var("shape_0.tmp_0"),
    )
    .unwrap();
    assert_eq!(
        p.fetch_names(),
        &["linear_1.tmp_1".to_string(), "shape_0.tmp_0".to_string()]
    );
    let out = p.run_with(&[line(false)]).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[1].shape(), &[1, 2]);
    // A fetched folded value (the shape of the pooled features) is still delivered.
    assert_eq!(out[2].to_i64_vec(), vec![1, 200, 1, 1]);
    assert_eq!(
        p.output("linear_1.tmp_1").unwrap().tensor().unwrap(),
        &out[1]
    );
    assert!(Predictor::new(
        Config::new()
            .model_dir(repo_root().join("assets/ppocr_cls"))
            .fetch_var("nope")
    )
    .is_err());
}

#[test]
fn model_from_two_paths_and_from_a_pdmodel_path() {
    let d = repo_root().join("assets/ppocr_cls");
    let mut a = Predictor::new(
        Config::new().model_files(d.join("inference.pdmodel"), d.join("inference.pdiparams")),
    )
    .unwrap();
    let mut b = Predictor::new(Config::new().model_file(d.join("inference.pdmodel"))).unwrap();
    assert_eq!(
        a.run_with(&[line(false)]).unwrap(),
        b.run_with(&[line(false)]).unwrap()
    );
}

/// At 2 threads, the adaptive choice runs some runs with every op on the calling thread
/// (its first probe window, after 4 warm-up runs: runs 9 to 13 go inline) and the rest
/// across the
/// pool. Either way the kernels cut their work into the same tasks, so every run's
/// outputs are the same bits as with the choice off (all dispatched). (At 1 thread the
/// tasks are cut differently — a depthwise conv's channel sums in fewer row chunks — so
/// the last bits may differ; that agreement is to tolerance, in the memory tests.)
#[test]
fn adaptive_threads_give_the_same_bits_inline_and_dispatched() {
    let cfg = |adaptive: bool, threads: usize| {
        Config::new()
            .model_dir(repo_root().join("assets/ppocr_cls"))
            .threads(threads)
            .adaptive_threads(adaptive)
    };
    let x = [line(false)];
    let mut fixed = Predictor::new(cfg(false, 2)).unwrap();
    let want = fixed.run_with(&x).unwrap();
    assert_eq!(fixed.inline_runs(), (0, 1));
    let mut one = Predictor::new(cfg(true, 1)).unwrap();
    one.run_with(&x).unwrap();
    assert_eq!(one.inline_runs(), (0, 0), "1 thread: nothing to choose");
    let mut p = Predictor::new(cfg(true, 2)).unwrap();
    for run in 0..14 {
        assert_eq!(p.run_with(&x).unwrap(), want, "run {run}");
    }
    let (inline, all) = p.inline_runs();
    assert_eq!(all, 14);
    assert!(inline >= 5, "the probe window's inline runs: {inline}");
}
