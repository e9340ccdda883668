//! Depthwise conv GFLOP/s for a few PP-OCR / MobileNet shapes:
//! `cargo run --release -p kayak-kernels --example dw_speed [THREADS]`
use kayak_kernels::act::Act;
use kayak_kernels::conv::{conv2d, Conv2d, ConvEpilogue};
use kayak_kernels::ThreadPool;

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = ThreadPool::new(threads);
    // (channels, h, w, k, stride)
    // `SHAPE=c,h,w,k,s` runs that one shape (for profiling).
    type Shape = (usize, usize, usize, usize, usize);
    let one: Option<Vec<Shape>> = std::env::var("SHAPE").ok().map(|s| {
        let d: Vec<usize> = s
            .split(',')
            .map(|x| x.parse().expect("SHAPE=c,h,w,k,s"))
            .collect();
        vec![(d[0], d[1], d[2], d[3], d[4])]
    });
    for &(c, h, w, k, s) in one.as_deref().unwrap_or(&[
        (240usize, 12usize, 80usize, 5usize, 1usize),
        (576, 7, 7, 5, 1),
        (72, 56, 56, 3, 2),
        (240, 14, 14, 5, 1),
        // The rest of MobileNetV3-small's.
        (16, 112, 112, 3, 2),
        (88, 28, 28, 3, 1),
        (96, 28, 28, 5, 2),
        (120, 14, 14, 5, 1),
        (144, 14, 14, 5, 1),
        (288, 14, 14, 5, 2),
    ]) {
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
        let mut scratch = vec![0f32; p.scratch_len(threads)];
        let ep = ConvEpilogue {
            bias: None,
            residual: None,
            act: Act::Identity,
            post: None,
        };
        // The best of 10 rounds of 30 (this machine is shared: a round can run slow).
        let mut sec = f64::MAX;
        for _ in 0..10 {
            let t = std::time::Instant::now();
            for _ in 0..30 {
                conv2d(&pool, &p, &x, &wt, &ep, &mut out, &mut scratch);
            }
            sec = sec.min(t.elapsed().as_secs_f64() / 30.0);
        }
        println!(
            "{c}x{h}x{w} k{k} s{s}: {:.1} us, {:.1} GFLOP/s",
            sec * 1e6,
            2.0 * p.macs() as f64 / sec / 1e9
        );
    }
}
