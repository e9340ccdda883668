//! Kernel throughput, 1 thread: GEMM at several shapes and the conv paths (1×1, 3×3 by
//! Winograd, 3×3 stride 2 by im2col panels, depthwise). Criterion's throughput is set to
//! the FLOPs of one call, so its `elem/s` reads as FLOP/s. `peak` is the register-tiled
//! kernel on data that stays in cache (256³): the machine's measured ceiling for these
//! kernels, to read the others against.
//!
//! `cargo bench -p kayak-benches --bench kernels`
#![allow(missing_docs)] // criterion_group! generates undocumented items
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kayak_kernels::conv::{conv2d, Conv2d, ConvEpilogue};
use kayak_kernels::gemm::{sgemm, Epilogue, Gemm, Mat};
use kayak_kernels::{Act, ThreadPool};

fn gemm(c: &mut Criterion) {
    let pool = ThreadPool::new(1);
    let mut g = c.benchmark_group("gemm");
    for &(name, m, n, k) in &[
        ("peak_256", 256, 256, 256),
        ("1024", 1024, 1024, 1024),
        ("bert_ffn_128x1536x384", 128, 1536, 384),
        ("conv_like_64x9216x27", 64, 9216, 27),
    ] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut out = vec![0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(name, |bch| {
            bch.iter(|| {
                sgemm(
                    &pool,
                    Gemm { m, n, k },
                    Mat::rows(&a, k),
                    Mat::rows(&b, n),
                    &mut out,
                    n,
                    &Epilogue::default(),
                )
            })
        });
    }
    g.finish();
}

fn geom(ic: usize, h: usize, oc: usize, k: usize, s: usize, groups: usize) -> Conv2d {
    let pad = k / 2;
    let oh = (h + 2 * pad - k) / s + 1;
    Conv2d {
        n: 1,
        ic,
        h,
        w: h,
        oc,
        oh,
        ow: oh,
        kh: k,
        kw: k,
        stride: [s, s],
        pad: [pad, pad],
        dilation: [1, 1],
        groups,
    }
}

fn conv(c: &mut Criterion) {
    let pool = ThreadPool::new(1);
    let mut g = c.benchmark_group("conv");
    for &(name, p) in &[
        ("pointwise_96to24_160", geom(96, 160, 24, 1, 1, 1)),
        ("winograd_3x3_96to24_160", geom(96, 160, 24, 3, 1, 1)),
        ("im2col_3x3s2_3to16_224", geom(3, 224, 16, 3, 2, 1)),
        ("depthwise_3x3_96_80", geom(96, 80, 96, 3, 1, 96)),
        ("depthwise_5x5s2_72_28", geom(72, 56, 72, 5, 2, 72)),
    ] {
        let x = vec![0.1f32; p.n * p.ic * p.h * p.w];
        let w = vec![0.01f32; p.oc * (p.ic / p.groups) * p.kh * p.kw];
        let bias = vec![0.0f32; p.oc];
        let mut out = vec![0f32; p.n * p.oc * p.oh * p.ow];
        let mut scratch = vec![0f32; p.scratch_len(1)];
        let ep = ConvEpilogue {
            bias: Some(&bias),
            residual: None,
            act: Act::Relu,
            post: None,
        };
        g.throughput(Throughput::Elements((2 * p.macs()) as u64));
        g.bench_function(name, |b| {
            b.iter(|| conv2d(&pool, &p, &x, &w, &ep, &mut out, &mut scratch))
        });
    }
    g.finish();
}

criterion_group!(benches, gemm, conv);
criterion_main!(benches);
