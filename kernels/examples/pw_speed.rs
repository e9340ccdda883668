//! Pointwise (1×1) conv GFLOP/s for MobileNetV3-small's shapes, one thread, with its
//! bias + hard-swish epilogue and without any: `cargo run --release -p kayak-kernels
//! --example pw_speed`
use kayak_kernels::act::Act;
use kayak_kernels::conv::{conv2d, Conv2d, ConvEpilogue};
use kayak_kernels::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1);
    // (in channels, out channels, plane side)
    let shapes = [
        (16usize, 72usize, 56usize),
        (72, 24, 28),
        (24, 88, 28),
        (96, 40, 14),
        (40, 240, 14),
        (240, 40, 14),
        (288, 96, 7),
        (96, 576, 7),
        (576, 96, 7),
    ];
    let (mut total_fused, mut total_plain) = (0.0, 0.0);
    for &(ic, oc, side) in &shapes {
        let p = Conv2d {
            n: 1,
            ic,
            h: side,
            w: side,
            oc,
            oh: side,
            ow: side,
            kh: 1,
            kw: 1,
            stride: [1, 1],
            pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        let x = vec![0.5f32; ic * side * side];
        let w = vec![0.01f32; oc * ic];
        let bias = vec![0.1f32; oc];
        let mut out = vec![0f32; oc * side * side];
        let hs = Act::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        };
        let mut time = |ep: &ConvEpilogue<'_>| {
            let iters = 2000;
            let t = std::time::Instant::now();
            for _ in 0..iters {
                conv2d(&pool, &p, &x, &w, ep, &mut out, &mut []);
            }
            t.elapsed().as_secs_f64() / iters as f64
        };
        let fused = time(&ConvEpilogue {
            bias: Some(&bias),
            residual: None,
            act: hs,
            post: None,
        });
        let plain = time(&ConvEpilogue {
            bias: None,
            residual: None,
            act: Act::Identity,
            post: None,
        });
        total_fused += fused;
        total_plain += plain;
        let gf = |s: f64| 2.0 * p.macs() as f64 / s / 1e9;
        println!(
            "{ic:>3} -> {oc:>3} @ {side}x{side}: {:.1} us ({:.1} GFLOP/s) with bias + hard swish, {:.1} us ({:.1}) plain",
            fused * 1e6,
            gf(fused),
            plain * 1e6,
            gf(plain)
        );
    }
    println!(
        "total: {:.1} us fused, {:.1} us plain",
        total_fused * 1e6,
        total_plain * 1e6
    );
}
