//! A network's first convolution — 3 → 16 channels, 3×3, stride 2, on 224×224, with
//! bias + hard swish (MobileNetV3's stem) — one thread, best of 7 rounds:
//! `cargo run --release -p kayak-kernels --example stem_speed`
use kayak_kernels::act::Act;
use kayak_kernels::conv::{conv2d, Conv2d, ConvEpilogue};
use kayak_kernels::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1);
    let p = Conv2d {
        n: 1,
        ic: 3,
        h: 224,
        w: 224,
        oc: 16,
        oh: 112,
        ow: 112,
        kh: 3,
        kw: 3,
        stride: [2, 2],
        pad: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let x: Vec<f32> = (0..3 * 224 * 224)
        .map(|i| (i % 17) as f32 * 0.1 - 0.8)
        .collect();
    let w: Vec<f32> = (0..16 * 27).map(|i| (i % 7) as f32 * 0.05 - 0.15).collect();
    let bias = vec![0.1f32; 16];
    let mut out = vec![0f32; 16 * 112 * 112];
    let mut scratch = vec![0f32; p.scratch_len(1)];
    let ep = ConvEpilogue {
        bias: Some(&bias),
        residual: None,
        act: Act::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        },
        post: None,
    };
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = std::time::Instant::now();
        for _ in 0..200 {
            conv2d(&pool, &p, &x, &w, &ep, &mut out, &mut scratch);
        }
        best = best.min(t.elapsed().as_secs_f64() / 200.0);
    }
    let gf = 2.0 * p.macs() as f64 / best / 1e9;
    println!(
        "3->16 3x3 s2 @ 224x224: {:.1} us ({gf:.1} GFLOP/s)",
        best * 1e6
    );
}
