//! GEMM with weights that do not stay in cache, as a model's layers see them: `C[m×n] =
//! A·B` cycling through 32 different B (more than the last-level cache holds, as ERNIE's
//! 68 MB of weights are), with and without a bias + GELU epilogue, with B read in place
//! and packed once beforehand (`pack_b`, as a plan does for constant weights). Variants
//! alternate over 7 rounds; each prints its best round (the machine's speed drifts).
//! `cargo run --release -p kayak-kernels --example gemm_cold [THREADS]`
use kayak_kernels::gemm::{pack_b, packed_len, sgemm, sgemm_packed, Epilogue, Gemm, Mat};
use kayak_kernels::ThreadPool;

const COLD: usize = 32;

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = ThreadPool::new(threads);
    // ERNIE-mini's products at sequence length 128.
    for &(m, n, k) in &[
        (128usize, 1536usize, 384usize),
        (128, 384, 1536),
        (128, 1152, 384),
        (128, 384, 384),
    ] {
        let bs: Vec<Vec<f32>> = (0..COLD)
            // Values like a trained layer's (outputs of a few units, not the hundreds an
            // all-positive B gives, whose GELU tails would run into denormals).
            .map(|s| {
                (0..k * n)
                    .map(|i| (((i * 7 + s) % 13) as f32 - 6.0) * 0.02)
                    .collect()
            })
            .collect();
        let packed: Vec<Vec<f32>> = bs
            .iter()
            .map(|b| {
                let mut p = vec![0f32; packed_len(k, n)];
                pack_b(Mat::rows(b, n), k, n, &mut p);
                p
            })
            .collect();
        let a: Vec<f32> = (0..m * k).map(|i| ((i % 11) as f32 - 5.0) * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let bias = vec![0.1f32; n];
        let gelu = Epilogue {
            col_bias: Some(&bias),
            act: kayak_kernels::Act::Gelu,
            ..Epilogue::default()
        };
        let variants = [
            (false, Epilogue::default(), ""),
            (false, gelu, " + bias + gelu"),
            (true, Epilogue::default(), ", prepacked"),
            (true, gelu, " + bias + gelu, prepacked"),
        ];
        let mut best = [f64::MAX; 4];
        let g = Gemm { m, n, k };
        for _round in 0..7 {
            for (v, (prepacked, ep, _)) in variants.iter().enumerate() {
                let iters = 40;
                let t = std::time::Instant::now();
                for it in 0..iters {
                    if *prepacked {
                        let b = &packed[it % COLD];
                        sgemm_packed(&pool, g, Mat::rows(&a, k), b, &mut c, n, ep);
                    } else {
                        let b = Mat::rows(&bs[it % COLD], n);
                        sgemm(&pool, g, Mat::rows(&a, k), b, &mut c, n, ep);
                    }
                }
                best[v] = best[v].min(t.elapsed().as_secs_f64() / iters as f64);
            }
        }
        for (v, (_, _, what)) in variants.iter().enumerate() {
            let gflops = 2.0 * (m * n * k) as f64 / best[v] / 1e9;
            println!("{m}x{n}x{k}{what}: {gflops:.1} GFLOP/s");
        }
    }
}
