//! Squeeze-and-excitation blocks at MobileNetV3-small's shapes, one thread, with the
//! channel means given (as the depthwise conv before them computes them): µs per block,
//! weights cycling through `COPIES` copies (default 8, out of L2 as in a model's run).
//! `cargo run --release -p kayak-kernels --example se_speed`
use kayak_kernels::act::Act;
use kayak_kernels::ops::{se_block, Src};
use kayak_kernels::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1);
    let copies: usize = std::env::var("COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut total = 0.0;
    // (channels, squeezed channels, plane)
    for &(c, c1, hw) in &[
        (96usize, 24usize, 196usize),
        (240, 64, 196),
        (120, 32, 196),
        (144, 40, 196),
        (288, 72, 49),
        (576, 144, 49),
    ] {
        let ws: Vec<(Vec<f32>, Vec<f32>)> = (0..copies)
            .map(|s| {
                let w1 = (0..c * c1)
                    .map(|i| ((i + s) % 13) as f32 * 0.01 - 0.06)
                    .collect();
                let w2 = (0..c * c1)
                    .map(|i| ((i + s) % 11) as f32 * 0.01 - 0.05)
                    .collect();
                (w1, w2)
            })
            .collect();
        let (b1, b2) = (vec![0.1f32; c1], vec![0.2f32; c]);
        let means: Vec<f32> = (0..c).map(|i| (i % 7) as f32 * 0.1).collect();
        let x: Vec<f32> = (0..c * hw).map(|i| (i % 5) as f32).collect();
        let mut out = vec![0f32; c * hw];
        let mut scratch = vec![0f32; c + c1];
        let acts = (
            Act::Relu,
            Act::HardSigmoid {
                slope: 0.2,
                offset: 0.5,
            },
        );
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = std::time::Instant::now();
            for it in 0..400 {
                let (w1, w2) = &ws[it % copies];
                se_block(
                    &pool,
                    (1, c, hw),
                    Src::Slice(&x),
                    (w1, &b1, w2, &b2),
                    acts,
                    &mut out,
                    &mut scratch,
                    Some(&means),
                );
            }
            best = best.min(t.elapsed().as_secs_f64() / 400.0);
        }
        total += best;
        println!("{c:4} -> {c1:3} -> {c:4} @ {hw:3}: {:.2} us", best * 1e6);
    }
    println!("total {:.2} us", total * 1e6);
}
