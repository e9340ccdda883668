//! The GEMM against a naive product: every path, layout, epilogue and task split.

use super::*;
use crate::act::Act;

fn naive(m: usize, n: usize, k: usize, a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for p in 0..k {
                s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
            }
            c[i * n + j] = s as f32;
        }
    }
    c
}

/// A logical `rows × cols` operand stored row-major, or (`transposed`) as the
/// row-major `cols × rows` matrix seen through its transpose.
fn operand(data: &[f32], rows: usize, cols: usize, transposed: bool) -> Mat<'_> {
    if transposed {
        Mat::rows(data, rows).t()
    } else {
        Mat::rows(data, cols)
    }
}

/// Every element of `got` within 1e-4 (relative to 1 + |want|) of `want`.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (x, y)) in got.iter().zip(want).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "{what} [{i}]: {x} vs {y}"
        );
    }
}

fn rand(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn every_shape_and_layout_matches_the_naive_product() {
    let pools = [ThreadPool::new(1), ThreadPool::new(3)];
    for &(m, n, k) in &[
        (1, 1, 1),
        (7, 5, 3),
        (6, 16, 256),
        (13, 33, 300),
        (50, 270, 17),
        (97, 300, 513),
        // B's row stride a multiple of 2 KiB: the packed path ([`panel_block`]),
        // with several row panels and a partial tile.
        (70, 512, 300),
        (13, 1024, 40),
        // 1–4 columns past the last 16 with K long enough for the dot-product tail.
        (30, 49, 96),
        (20, 68, 100),
        (250, 1536, 20),
        // The packed path in panels of 1024 and 512 columns, K in two blocks of 550,
        // 130 rows (two blocks of 48 and one of 34: a partial tile).
        (130, 2560, 1100),
        (4, 0, 3),
        (3, 4, 0),
    ] {
        let ad = rand(m * k, 1);
        let bd = rand(k * n, 2);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, b) = (operand(&ad, m, k, ta), operand(&bd, k, n, tb));
            let want = naive(m, n, k, a, b);
            for pool in &pools {
                let mut c = vec![f32::NAN; m * n];
                sgemm(
                    pool,
                    Gemm { m, n, k },
                    a,
                    b,
                    &mut c,
                    n,
                    &Epilogue::default(),
                );
                assert_close(&c, &want, &format!("{m}x{n}x{k} {ta}{tb}"));
            }
        }
    }
}

#[test]
fn every_row_remainder_is_computed() {
    // M from 1 to 70 hits every leftover row count of every kernel's MR (up to 14).
    let pool = ThreadPool::new(1);
    for m in 1..=70 {
        let (n, k) = (37, 5);
        let ad = rand(m * k, m as u64);
        let bd = rand(k * n, 99);
        let want = naive(m, n, k, Mat::rows(&ad, k), Mat::rows(&bd, n));
        let mut c = vec![f32::NAN; m * n];
        sgemm(
            &pool,
            Gemm { m, n, k },
            Mat::rows(&ad, k),
            Mat::rows(&bd, n),
            &mut c,
            n,
            &Epilogue::default(),
        );
        assert_close(&c, &want, &format!("m {m}"));
    }
}

#[test]
fn epilogue_applies_in_order() {
    // The second shape takes the packed path (B's rows 1024 apart), K in two blocks.
    for (m, n, k) in [(9, 20, 7), (100, 1024, 1100)] {
        epilogue_case(m, n, k);
    }
}
fn epilogue_case(m: usize, n: usize, k: usize) {
    let ad = rand(m * k, 3);
    let bd = rand(k * n, 4);
    let rb = rand(m, 5);
    let cb = rand(n, 6);
    let res = rand(m * n, 7);
    let ep = Epilogue {
        alpha: 0.5,
        row_bias: Some(&rb),
        col_bias: Some(&cb),
        residual: Some(&res),
        act: Act::Relu6(0.4),
        post: Some((2.0, -0.1)),
    };
    let p = naive(m, n, k, Mat::rows(&ad, k), Mat::rows(&bd, n));
    for threads in [1, 2] {
        let mut c = vec![0f32; m * n];
        sgemm(
            &ThreadPool::new(threads),
            Gemm { m, n, k },
            Mat::rows(&ad, k),
            Mat::rows(&bd, n),
            &mut c,
            n,
            &ep,
        );
        for i in 0..m {
            for j in 0..n {
                let v = (0.5 * p[i * n + j] + rb[i] + cb[j] + res[i * n + j]).clamp(0.0, 0.4) * 2.0
                    - 0.1;
                assert!(
                    (c[i * n + j] - v).abs() < 1e-4 * (1.0 + p[i * n + j].abs()),
                    "{m}x{n}x{k} on {threads}: ({i}, {j}) {} vs {v}",
                    c[i * n + j]
                );
            }
        }
    }
}

/// Every activation, through every tile shape: those the AVX2 tile applies in
/// registers (relu, relu6, leaky relu, hard swish, hard sigmoid) and one it leaves to
/// the row pass (gelu), against the scalar definition.
#[test]
fn every_activation_in_the_epilogue_matches_its_definition() {
    let acts = [
        Act::Relu,
        Act::Relu6(0.4),
        Act::LeakyRelu(0.1),
        Act::HardSwish {
            threshold: 6.0,
            scale: 6.0,
            offset: 3.0,
        },
        Act::HardSigmoid {
            slope: 0.2,
            offset: 0.5,
        },
        Act::Clip(-0.3, 0.6),
        Act::Identity,
        Act::Gelu,
    ];
    // The last shape's 49th column comes from the dot-product tail (K ≥ 64), the
    // first's last 5 from the AVX2 tile: the epilogue covers them too.
    for (m, n, k) in [
        (13, 37, 9),
        (1, 70, 5),
        (2, 9, 300),
        (7, 16, 3),
        (30, 49, 96),
    ] {
        let ad = rand(m * k, 11);
        let bd = rand(k * n, 12);
        let rb = rand(m, 13);
        let cb = rand(n, 14);
        let res = rand(m * n, 15);
        let p = naive(m, n, k, Mat::rows(&ad, k), Mat::rows(&bd, n));
        for act in acts {
            let ep = Epilogue {
                alpha: 1.5,
                row_bias: Some(&rb),
                col_bias: Some(&cb),
                residual: Some(&res),
                act,
                post: Some((0.5, 0.25)),
            };
            let mut c = vec![0f32; m * n];
            sgemm(
                &ThreadPool::new(1),
                Gemm { m, n, k },
                Mat::rows(&ad, k),
                Mat::rows(&bd, n),
                &mut c,
                n,
                &ep,
            );
            for i in 0..m {
                for j in 0..n {
                    let x = 1.5 * p[i * n + j] + rb[i] + cb[j] + res[i * n + j];
                    let want = act.apply(x) * 0.5 + 0.25;
                    let got = c[i * n + j];
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{act:?} {m}x{n}x{k} [{i},{j}]: {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// A view of B narrower than its row stride (attention's V inside the packed QKV): a
/// stride that is a multiple of 2 KiB with a width that ends in a partial strip.
/// Products against a packed B: the packed layout (strips of 16 with zero padding),
/// ragged columns and rows (fewer than a tile too), K across the K blocks, transposed
/// operands, the epilogue (bias, residual, activation), and the row/column task split
/// at 1 and 2 threads.
#[test]
fn packed_b_products_match_the_naive_product() {
    let shapes = [
        (1, 16, 16),
        (7, 33, 5),
        (128, 384, 300),
        (13, 130, 520),
        (200, 47, 64),
        (6, 1000, 17),
        // Fewer rows than a tile (alone, or a block's last 2): a row at a time over
        // groups of 4 strips and their remainder.
        (1, 1000, 300),
        (3, 50, 40),
        (50, 70, 33),
    ];
    for (m, n, k) in shapes {
        for (tb, ta) in [(false, false), (true, false), (false, true)] {
            let ad = rand(m * k, 41);
            let bd = rand(k * n, 42);
            let (a, b) = (operand(&ad, m, k, ta), operand(&bd, k, n, tb));
            let mut bp = vec![f32::NAN; packed_len(k, n)];
            pack_b(b, k, n, &mut bp);
            // The layout: strip s, row p, column c at s·16k + 16p + c; zeros past n.
            for (i, v) in bp.iter().enumerate() {
                let (s, p, c) = (i / (16 * k), i / 16 % k, i % 16);
                let j = 16 * s + c;
                let want = if j < n {
                    bd[if tb { j * k + p } else { p * n + j }]
                } else {
                    0.0
                };
                assert_eq!(*v, want, "packed [{s}, {p}, {c}] of {k}x{n}");
            }
            let bias = rand(n, 43);
            let res = rand(m * n, 44);
            let mut want = naive(m, n, k, a, b);
            for (i, w) in want.iter_mut().enumerate() {
                let v = 0.5 * *w + bias[i % n] + res[i];
                *w = v.max(0.0);
            }
            let ep = Epilogue {
                alpha: 0.5,
                col_bias: Some(&bias),
                residual: Some(&res),
                act: Act::Relu,
                ..Epilogue::default()
            };
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * n];
                sgemm_packed(
                    &ThreadPool::new(threads),
                    Gemm { m, n, k },
                    a,
                    &bp,
                    &mut c,
                    n,
                    &ep,
                );
                let what = format!("{m}x{n}x{k} (ta {ta}, tb {tb}, {threads} threads)");
                assert_close(&c, &want, &what);
            }
        }
    }
}

#[test]
fn a_narrow_view_of_a_wide_b_matches_the_naive_product() {
    // The last: the packed path with a partial strip (1000 columns of rows 1024 apart)
    // and K in two blocks.
    for (m, n, k, ldb) in [
        (20, 40, 33, 512),
        (7, 21, 300, 1024),
        (61, 9, 5, 512),
        (100, 1000, 1030, 1024),
    ] {
        let ad = rand(m * k, 21);
        let bd = rand(k * ldb, 22);
        let b = Mat {
            data: &bd,
            rs: ldb,
            cs: 1,
        };
        let want = naive(m, n, k, Mat::rows(&ad, k), b);
        for threads in [1, 2] {
            let mut c = vec![f32::NAN; m * n];
            sgemm(
                &ThreadPool::new(threads),
                Gemm { m, n, k },
                Mat::rows(&ad, k),
                b,
                &mut c,
                n,
                &Epilogue::default(),
            );
            assert_close(&c, &want, &format!("{m}x{n}x{k} on {threads}"));
        }
    }
}

#[test]
fn batches_use_their_offsets() {
    let (m, n, k, bt) = (5, 18, 4, 3);
    let ad = rand(bt * m * k, 8);
    let bd = rand(k * n, 9);
    let mut c = vec![0f32; bt * m * n];
    sgemm_batch(
        &ThreadPool::new(2),
        Gemm { m, n, k },
        bt,
        &|t| (t * m * k, 0, t * m * n),
        Mat::rows(&ad, k),
        Mat::rows(&bd, n),
        &mut c,
        n,
        &Epilogue::default(),
    );
    for t in 0..bt {
        let want = naive(m, n, k, Mat::rows(&ad[t * m * k..], k), Mat::rows(&bd, n));
        for (x, y) in c[t * m * n..(t + 1) * m * n].iter().zip(&want) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}
