//! GEMM with weights that do not stay in cache, as a model's layers see them: `C[m×n] =
//! A·B` cycling through 8 different B, against the same product with one B (hot).
//! `cargo run --release -p kayak-kernels --example gemm_cold [THREADS]`
use kayak_kernels::gemm::{sgemm, Epilogue, Gemm, Mat};
use kayak_kernels::ThreadPool;

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = ThreadPool::new(threads);
    // ERNIE-mini's FFN products at sequence length 128.
    for &(m, n, k) in &[(128usize, 1536usize, 384usize), (128, 384, 1536)] {
        let bs: Vec<Vec<f32>> = (0..8)
            .map(|s| (0..k * n).map(|i| ((i + s) % 7) as f32 * 0.1).collect())
            .collect();
        let a = vec![0.5f32; m * k];
        let mut c = vec![0f32; m * n];
        let bias = vec![0.1f32; n];
        let gelu = Epilogue {
            col_bias: Some(&bias),
            act: kayak_kernels::Act::Gelu,
            ..Epilogue::default()
        };
        for (matrices, ep, what) in [
            (1usize, Epilogue::default(), ""),
            (8, Epilogue::default(), ""),
            (8, gelu, " + bias + gelu"),
        ] {
            let iters = 200;
            let t = std::time::Instant::now();
            for it in 0..iters {
                sgemm(
                    &pool,
                    Gemm { m, n, k },
                    Mat::rows(&a, k),
                    Mat::rows(&bs[it % matrices], n),
                    &mut c,
                    n,
                    &ep,
                );
            }
            let gflops = 2.0 * (m * n * k * iters) as f64 / t.elapsed().as_secs_f64() / 1e9;
            println!("{m}x{n}x{k}{what}, {matrices} weight matrices: {gflops:.1} GFLOP/s");
        }
    }
}
