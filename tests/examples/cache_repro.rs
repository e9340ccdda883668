//! Reproducer for a release-mode miscompilation seen with rustc 1.95.0 (not with nightly
//! 1.97): after a temporary `Predictor` was dropped, the next `Config::new().model_dir(..)`
//! freed the previous config's path a second time (heap corruption: glibc aborted with
//! "malloc_consolidate(): unaligned fastbin chunk detected"; valgrind showed the double
//! free). The `Config` builder methods are `#[inline(never)]` since; this program must
//! print five lines and, under valgrind, report no invalid free.
//!
//! `cargo build --release -p kayak-tests --example cache_repro &&
//!  valgrind -q target/release/examples/cache_repro`
use kayak::{Config, Predictor};

fn main() {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/ppocr_cls");
    let cache = std::env::temp_dir().join(format!("kayak-repro-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let load = |cfg: Config| Predictor::new(cfg.model_dir(&d).optim_cache_dir(&cache)).unwrap();
    let first = load(Config::new());
    println!(
        "load 1: from cache {}",
        first.optimization_report().unwrap().from_cache
    );
    let second = load(Config::new());
    println!(
        "load 2: from cache {}",
        second.optimization_report().unwrap().from_cache
    );
    // Temporaries dropped at the end of each statement, then a fresh config: the pattern
    // that triggered the double free.
    for i in 3..=5 {
        let hit = load(Config::new())
            .optimization_report()
            .unwrap()
            .from_cache;
        println!("load {i}: from cache {hit}");
    }
    let _ = std::fs::remove_dir_all(&cache);
}
