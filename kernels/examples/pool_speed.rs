//! Time per `ThreadPool::run` dispatch of trivial tasks, and the cache-line round trip
//! between two threads (two threads bouncing one atomic): on a VM whose vCPUs move
//! between nearby and distant cores (80 against 340 ns here), that says which kind a
//! multi-thread benchmark ran on.
//! `cargo run --release -p kayak-kernels --example pool_speed [THREADS]`.
use kayak_kernels::ThreadPool;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    println!("cache-line round trip: {:.0} ns", round_trip_ns());
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

/// Mean time for one thread to pass a value to another and get the answer back.
fn round_trip_ns() -> f64 {
    let n = 200_000u64;
    let ball = Arc::new(AtomicU64::new(0));
    let other = ball.clone();
    let echo = std::thread::spawn(move || {
        for i in 0..n {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let t = std::time::Instant::now();
    for i in 0..n {
        ball.store(2 * i + 1, Ordering::Release);
        while ball.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    echo.join().expect("echo thread");
    ns
}
