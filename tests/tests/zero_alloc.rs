//! A run with a cached plan allocates nothing on the heap: proved with a process-wide
//! counting allocator (every thread counts, the kernel workers included), at 1 and at 2
//! threads, on conv models and a transformer. The whole handle path is inside the counted
//! window: inputs copied in through input handles, `run()`, outputs copied out into the
//! caller's buffers.
//!
//! One test function, so no other test thread allocates during the window.

use kayak::{Config, Predictor, Tensor};
use kayak_tests::require;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Copies inputs in, runs, copies outputs out — the loop a service runs.
fn step(p: &mut Predictor, inputs: &[(String, Tensor)], outs: &mut [(String, Tensor)]) {
    for (name, t) in inputs {
        let mut h = p.input(name).unwrap();
        h.reshape(t.shape()).unwrap();
        match t {
            Tensor::F32(a) => h.copy_from_cpu(a.as_slice().unwrap()).unwrap(),
            Tensor::I64(a) => h.copy_from_cpu(a.as_slice().unwrap()).unwrap(),
            other => panic!("input dtype {}", other.dtype()),
        }
    }
    p.run().unwrap();
    for (name, buf) in outs.iter_mut() {
        let h = p.output(name).unwrap();
        match buf {
            Tensor::F32(a) => h.copy_to_cpu(a.as_slice_mut().unwrap()).unwrap(),
            Tensor::I64(a) => h.copy_to_cpu(a.as_slice_mut().unwrap()).unwrap(),
            other => panic!("output dtype {}", other.dtype()),
        }
    }
}

#[test]
fn steady_state_runs_allocate_nothing() {
    // The counter sees allocations on other threads (so a kernel worker that allocated
    // would be caught).
    let before = ALLOCS.load(Ordering::SeqCst);
    std::thread::spawn(|| std::hint::black_box(vec![1u8; 64]).len())
        .join()
        .unwrap();
    assert!(
        ALLOCS.load(Ordering::SeqCst) > before,
        "the counting allocator is not in use"
    );
    let mut report = Vec::new();
    for model in [
        "ppocr_cls",
        "mobilenet_v3_small",
        "ernie_mini",
        "ppocr_rec",
        "ppocr_det",
    ] {
        let Some(d) = require("steady_state_runs_allocate_nothing", model) else {
            continue;
        };
        for threads in [1, 2] {
            let mut p = Predictor::new(Config::new().model_dir(&d).threads(threads)).unwrap();
            let Some(xs) =
                kayak_tests::model_inputs("steady_state_runs_allocate_nothing", model, &d, &p)
            else {
                break;
            };
            let inputs: Vec<(String, Tensor)> = p.input_names().iter().cloned().zip(xs).collect();
            // Warm-up: the plan is made and cached, the arena and outputs sized.
            for (n, t) in &inputs {
                p.input(n).unwrap().set(t.clone()).unwrap();
            }
            p.run().unwrap();
            let mut outs: Vec<(String, Tensor)> = p
                .output_names()
                .iter()
                .map(|n| (n.clone(), p.output(n).unwrap().tensor().unwrap().clone()))
                .collect();
            let want = outs.clone();
            let plan = p.last_plan().unwrap().clone();
            assert_eq!(
                plan.memory().fallback_steps,
                0,
                "{model}: every step has a native kernel"
            );
            step(&mut p, &inputs, &mut outs);
            let runs = if model == "ppocr_det" { 2 } else { 5 };
            let before = ALLOCS.load(Ordering::SeqCst);
            for _ in 0..runs {
                step(&mut p, &inputs, &mut outs);
            }
            let allocs = ALLOCS.load(Ordering::SeqCst) - before;
            report.push(format!(
                "{model} @ {threads} threads: {allocs} allocations in {runs} runs"
            ));
            assert_eq!(
                allocs, 0,
                "{model} at {threads} threads allocated {allocs} times in {runs} runs"
            );
            // And the results are the warm-up's (the counted runs really ran).
            for ((n, a), (_, b)) in outs.iter().zip(&want) {
                assert_eq!(a, b, "{model}: output {n} changed between identical runs");
            }
        }
    }
    println!("{}", report.join("\n"));
}
