//! End-to-end latency of the bundled text-direction classifier (native CPU kernels).
#![allow(missing_docs)] // criterion_group! generates undocumented items
use criterion::{criterion_group, criterion_main, Criterion};
use kayak::{Config, Predictor};
use std::path::Path;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut p = Predictor::new(Config::new().model_dir(root.join("assets/ppocr_cls")))
        .expect("bundled model");
    let x = kayak::npy::read(root.join("assets/text_line.npy")).expect("bundled input");
    c.bench_function("ppocr_cls_1x3x48x192", |b| {
        b.iter(|| p.run_with(std::slice::from_ref(&x)).expect("run"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
