//! Depthwise conv GFLOP/s for a few PP-OCR / MobileNet shapes, one thread:
//! `cargo run --release -p kayak-kernels --example dw_speed`
use kayak_kernels::act::Act;
use kayak_kernels::conv::{conv2d, Conv2d, ConvEpilogue};
use kayak_kernels::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1);
    // (channels, h, w, k, stride)
    for &(c, h, w, k, s) in &[
        (240usize, 12usize, 80usize, 5usize, 1usize),
        (576, 7, 7, 5, 1),
        (72, 56, 56, 3, 2),
        (240, 14, 14, 5, 1),
    ] {
        let pad = k / 2;
        let (oh, ow) = ((h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1);
        let p = Conv2d {
            n: 1,
            ic: c,
            h,
            w,
            oc: c,
            oh,
            ow,
            kh: k,
            kw: k,
            stride: [s, s],
            pad: [pad, pad],
            dilation: [1, 1],
            groups: c,
        };
        let x = vec![0.5f32; c * h * w];
        let wt = vec![0.1f32; c * k * k];
        let mut out = vec![0f32; c * oh * ow];
        let mut scratch = vec![0f32; p.scratch_len(1)];
        let ep = ConvEpilogue {
            bias: None,
            residual: None,
            act: Act::Identity,
            post: None,
        };
        let iters = 300;
        let t = std::time::Instant::now();
        for _ in 0..iters {
            conv2d(&pool, &p, &x, &wt, &ep, &mut out, &mut scratch);
        }
        let sec = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "{c}x{h}x{w} k{k} s{s}: {:.1} us, {:.1} GFLOP/s",
            sec * 1e6,
            2.0 * p.macs() as f64 / sec / 1e9
        );
    }
}
