//! Time per `ThreadPool::run` dispatch of trivial tasks:
//! `cargo run --release -p kayak-kernels --example pool_speed [THREADS]`.
use kayak_kernels::ThreadPool;
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let pool = ThreadPool::new(threads);
    let hits = AtomicUsize::new(0);
    for tasks in [threads, 4 * threads] {
        let n = 200_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            pool.run(tasks, &|_| {
                hits.fetch_add(1, Ordering::Relaxed);
            });
        }
        let per = t.elapsed().as_secs_f64() / n as f64 * 1e6;
        println!("{threads} threads, {tasks} tasks: {per:.2} µs per dispatch");
    }
    assert_eq!(hits.load(Ordering::Relaxed), 200_000 * 5 * threads);
}
