//! A matrix-vector product against a packed weight, as MobileNetV3's classifier runs it
//! (1×576 · 576×1024 and 1×1024 · 1024×1000), weights cycling through `COPIES` copies
//! (default 4: 14 MB, in L3; `COPIES=32` puts them in memory, as a model's weights are
//! once the rest of a run has gone through the cache): µs per product and GB/s of
//! weights read. `cargo run --release -p kayak-kernels --example matvec_speed`
use kayak_kernels::gemm::{pack_b, packed_len, sgemm_packed, Epilogue, Gemm, Mat};
use kayak_kernels::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1);
    for &(k, n) in &[(576usize, 1024usize), (1024, 1000)] {
        let copies: usize = std::env::var("COPIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4);
        let ws: Vec<Vec<f32>> = (0..copies)
            .map(|s| {
                let b: Vec<f32> = (0..k * n).map(|i| ((i + s) % 7) as f32 * 0.01).collect();
                let mut p = vec![0f32; packed_len(k, n)];
                pack_b(Mat::rows(&b, n), k, n, &mut p);
                p
            })
            .collect();
        let a: Vec<f32> = (0..k).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; n];
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = std::time::Instant::now();
            for it in 0..200 {
                let g = Gemm { m: 1, n, k };
                sgemm_packed(
                    &pool,
                    g,
                    Mat::rows(&a, k),
                    &ws[it % copies],
                    &mut c,
                    n,
                    &Epilogue::default(),
                );
            }
            best = best.min(t.elapsed().as_secs_f64() / 200.0);
        }
        let bytes = (packed_len(k, n) * 4) as f64;
        println!(
            "1x{k} . {k}x{n}: {:.1} us, {:.1} GB/s",
            best * 1e6,
            bytes / best / 1e9
        );
    }
}
