//! Multi-head attention at ERNIE-mini's shape (sequence 128, 6 heads of 64, Q/K/V packed
//! in one 1152-wide row, with a mask), one thread: time per call and GFLOP/s of its two
//! products. `cargo run --release -p kayak-kernels --example attn_speed`
use kayak_kernels::ops::{attention, attention_scratch, AttnGeom};
use kayak_kernels::ThreadPool;

fn main() {
    let (s, heads, d) = (128usize, 6usize, 64usize);
    let row = 3 * heads * d;
    let g = AttnGeom {
        b: 1,
        s,
        t: s,
        heads,
        d,
        scale: 0.125,
        row,
        off: [0, heads * d, 2 * heads * d],
        mask_strides: [0, 0, 0, 1],
    };
    let qkv: Vec<f32> = (0..s * row)
        .map(|i| ((i * 7) % 13) as f32 * 0.05 - 0.3)
        .collect();
    let mask: Vec<f32> = (0..s)
        .map(|i| if i < 100 { 0.0 } else { -10000.0 })
        .collect();
    let mut out = vec![0f32; s * heads * d];
    let pool = ThreadPool::new(1);
    let mut scratch = vec![0f32; attention_scratch(&g, 1)];
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = std::time::Instant::now();
        for _ in 0..200 {
            attention(
                &pool,
                &g,
                &qkv,
                &qkv,
                &qkv,
                Some(&mask),
                &mut out,
                &mut scratch,
            );
        }
        best = best.min(t.elapsed().as_secs_f64() / 200.0);
    }
    let flops = 2.0 * 2.0 * (s * s * d * heads) as f64;
    println!(
        "attention {s}x{s}, {heads} heads of {d}: {:.1} us, {:.1} GFLOP/s",
        best * 1e6,
        flops / best / 1e9
    );
}
