//! Prints GFLOP/s of `sgemm` at a few sizes: `cargo run --release -p kayak-kernels --example gemm_speed [THREADS]`
//! (`SHAPE=m,n,k` for one shape).
use kayak_kernels::gemm::{sgemm, Epilogue, Gemm, Mat};
use kayak_kernels::ThreadPool;

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = ThreadPool::new(threads);
    println!("isa {:?}, {threads} thread(s)", kayak_kernels::gemm::isa());
    // `SHAPE=m,n,k` runs that one shape (for profiling).
    let one: Option<Vec<(usize, usize, usize)>> = std::env::var("SHAPE").ok().map(|s| {
        let d: Vec<usize> = s
            .split(',')
            .map(|x| x.parse().expect("SHAPE=m,n,k"))
            .collect();
        vec![(d[0], d[1], d[2])]
    });
    for &(m, n, k) in one.as_deref().unwrap_or(&[
        (128, 1024, 384),
        (128, 512, 384),
        (128, 2048, 384),
        (128, 1536, 384),
        (576, 49, 96),
        (72, 3136, 16),
        (64, 9216, 27),
        (128, 128, 384),
        (128, 1152, 384),
        (256, 256, 256),
        (1024, 1024, 1024),
    ]) {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0f32; m * n];
        let g = Gemm { m, n, k };
        let iters = (2e9 / (2.0 * (m * n * k) as f64)).clamp(3.0, 2000.0) as usize;
        sgemm(
            &pool,
            g,
            Mat::rows(&a, k),
            Mat::rows(&b, n),
            &mut c,
            n,
            &Epilogue::default(),
        );
        // The mean over all iterations and the best single one (as numpy's timing in
        // benches/gemm_vs_numpy.py takes the best).
        let mut best = f64::MAX;
        let t = std::time::Instant::now();
        for _ in 0..iters {
            let t1 = std::time::Instant::now();
            sgemm(
                &pool,
                g,
                Mat::rows(&a, k),
                Mat::rows(&b, n),
                &mut c,
                n,
                &Epilogue::default(),
            );
            best = best.min(t1.elapsed().as_secs_f64());
        }
        let s = t.elapsed().as_secs_f64() / iters as f64;
        let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
        println!(
            "{m}x{n}x{k}: {:.1} GFLOP/s mean, {:.1} best",
            gf(s),
            gf(best)
        );
    }
}
