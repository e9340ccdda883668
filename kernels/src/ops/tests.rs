//! The ops against plain loops.

use super::*;
use crate::act::Act;

/// Pooling whose window covers whole rows (global and adaptive-to-1 pooling, SE
/// blocks, tall windows: the lane-reduced path) and ordinary windows, max and
/// average, against a plain loop; NaN inputs are skipped by max as `f32::max` does.
#[test]
fn pooling_matches_a_plain_loop() {
    let (planes, h, w) = (3, 9, 7);
    let mut x: Vec<f32> = (0..planes * h * w)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    x[5] = f32::NAN;
    for max in [true, false] {
        for (oh, ow, k, s, pad, adaptive, exclusive) in [
            (1, 1, [h, w], [1, 1], [0, 0], false, true),
            (1, 1, [h, w], [1, 1], [0, 0], false, false),
            // A whole-plane window counting its padding: not a plain mean.
            (1, 1, [h + 2, w + 2], [1, 1], [1, 1], false, false),
            (1, 1, [0, 0], [0, 0], [0, 0], true, true),
            (2, 1, [0, 0], [0, 0], [0, 0], true, true),
            (2, 1, [5, w], [4, 1], [0, 0], false, true),
            (3, 1, [5, w], [4, 1], [1, 0], false, false),
            (4, 3, [3, 3], [2, 2], [1, 1], false, true),
            // Windows all inside the plane (no padding, no clipping).
            (4, 3, [2, 2], [2, 2], [0, 0], false, true),
            (3, 2, [3, 3], [3, 3], [0, 0], false, false),
        ] {
            let p = Pool2d {
                max,
                planes,
                h,
                w,
                oh,
                ow,
                k,
                s,
                pad,
                adaptive,
                exclusive,
            };
            let mut got = vec![0f32; planes * oh * ow];
            pool2d(&ThreadPool::new(2), &p, &x, &mut got);
            for pl in 0..planes {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (y0, y1, x0, x1, cnt) = if adaptive {
                            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
                            let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                            (y0, y1, x0, x1, (y1 - y0) * (x1 - x0))
                        } else {
                            let ys = (oy * s[0]) as isize - pad[0] as isize;
                            let xs = (ox * s[1]) as isize - pad[1] as isize;
                            let y0 = ys.max(0) as usize;
                            let x0 = xs.max(0) as usize;
                            let y1 = ((ys + k[0] as isize) as usize).min(h);
                            let x1 = ((xs + k[1] as isize) as usize).min(w);
                            let cnt = if exclusive {
                                (y1 - y0) * (x1 - x0)
                            } else {
                                k[0] * k[1]
                            };
                            (y0, y1, x0, x1, cnt)
                        };
                        let vals = (y0..y1)
                            .flat_map(|iy| (x0..x1).map(move |ix| (iy, ix)))
                            .map(|(iy, ix)| x[(pl * h + iy) * w + ix] as f64);
                        let want = if max {
                            vals.fold(f64::NEG_INFINITY, f64::max)
                        } else {
                            vals.sum::<f64>() / cnt as f64
                        };
                        let g = got[(pl * oh + oy) * ow + ox] as f64;
                        let ok = if want.is_nan() {
                            g.is_nan()
                        } else {
                            (g - want).abs() <= 1e-5 * (1.0 + want.abs())
                        };
                        assert!(
                            ok,
                            "max {max} {oh}x{ow} k{k:?} [{pl},{oy},{ox}]: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn broadcast_binary_matches_direct_indexing() {
    let pool = ThreadPool::new(2);
    let out = [2, 3, 4];
    let a: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..3).map(|i| 10.0 * i as f32).collect();
    let bc = Broadcast::new(&out, &[2, 3, 4], &[1, 3, 1]).unwrap();
    let mut o = vec![0f32; 24];
    binary(
        &pool,
        BinOp::Sub,
        Act::Identity,
        &bc,
        Src::Slice(&a),
        Src::Slice(&b),
        &mut o,
    );
    for i in 0..24 {
        assert_eq!(o[i], a[i] - b[(i / 4) % 3]);
    }
    // In place on a.
    let mut o2 = a.clone();
    binary(
        &pool,
        BinOp::Mul,
        Act::Relu,
        &bc,
        Src::Out,
        Src::Slice(&b),
        &mut o2,
    );
    for i in 0..24 {
        assert_eq!(o2[i], (a[i] * b[(i / 4) % 3]).max(0.0));
    }
    assert!(Broadcast::new(&out, &[2, 3, 4], &[1, 3, 4]).is_some());
    assert!(Broadcast::new(&out, &[2, 3, 4], &[1, 2, 1]).is_none());
    // Coalescing: per-channel over [2, 3, 4, 5] gives rows of 20; same shapes, one row.
    let bc = Broadcast::new(&[2, 3, 4, 5], &[2, 3, 4, 5], &[1, 3, 1, 1]).unwrap();
    assert_eq!(bc.dims[MAX_RANK - 1], 20);
    let bc = Broadcast::new(&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]).unwrap();
    assert_eq!(bc.dims[MAX_RANK - 1], 24);
    // And every coalesced form still computes the right thing.
    for (sa, sb) in [
        (vec![2, 3, 4, 5], vec![1, 3, 1, 1]),
        (vec![2, 1, 4, 5], vec![2, 3, 1, 5]),
        (vec![1, 3, 4, 1], vec![2, 3, 4, 5]),
        (vec![2, 3, 4, 5], vec![2, 3, 4, 5]),
        (vec![2, 3, 1, 1], vec![1, 1, 4, 5]),
    ] {
        let o = [2, 3, 4, 5];
        let a: Vec<f32> = (0..sa.iter().product::<usize>())
            .map(|i| i as f32)
            .collect();
        let b: Vec<f32> = (0..sb.iter().product::<usize>())
            .map(|i| (i * 7) as f32)
            .collect();
        let bc = Broadcast::new(&o, &sa, &sb).unwrap();
        let mut got = vec![0f32; 120];
        binary(
            &pool,
            BinOp::Add,
            Act::Identity,
            &bc,
            Src::Slice(&a),
            Src::Slice(&b),
            &mut got,
        );
        let idx = |s: &[usize], i: [usize; 4]| {
            let mut f = 0;
            for k in 0..4 {
                f = f * s[k] + if s[k] == 1 { 0 } else { i[k] };
            }
            f
        };
        let mut f = 0;
        for i0 in 0..2 {
            for i1 in 0..3 {
                for i2 in 0..4 {
                    for i3 in 0..5 {
                        let i = [i0, i1, i2, i3];
                        assert_eq!(
                            got[f],
                            a[idx(&sa, i)] + b[idx(&sb, i)],
                            "{sa:?} {sb:?} at {i:?}"
                        );
                        f += 1;
                    }
                }
            }
        }
    }
}

#[test]
fn big_broadcasts_split_inside_rows() {
    // Enough elements to run on 3 threads, with ranges that start and end mid-row.
    let pool = ThreadPool::new(3);
    let o = [3, 7, 1901];
    let a: Vec<f32> = (0..3 * 7 * 1901).map(|i| (i % 97) as f32).collect();
    let b: Vec<f32> = (0..7).map(|i| i as f32 * 0.5).collect();
    let bc = Broadcast::new(&o, &[3, 7, 1901], &[1, 7, 1]).unwrap();
    let mut got = vec![0f32; a.len()];
    binary(
        &pool,
        BinOp::Mul,
        Act::Identity,
        &bc,
        Src::Slice(&a),
        Src::Slice(&b),
        &mut got,
    );
    for (i, g) in got.iter().enumerate() {
        assert_eq!(*g, a[i] * b[(i / 1901) % 7], "at {i}");
    }
}

#[test]
fn softmax_and_layer_norm_rows() {
    let pool = ThreadPool::new(1);
    let x = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
    let mut o = [0f32; 6];
    softmax(&pool, 2, 3, 1, Src::Slice(&x), &mut o);
    let e: f32 = 1.0 + 1f32.exp() + 2f32.exp();
    assert!((o[0] - 1.0 / e).abs() < 1e-6 && (o[4] - 1.0 / 3.0).abs() < 1e-6);
    // Axis 0 of [3, 2] == middle axis of [1, 3, 2].
    let mut o2 = [0f32; 6];
    softmax(&pool, 1, 3, 2, Src::Slice(&x), &mut o2);
    assert!((o2[0] - 1f32.exp() / (1f32.exp() + 3f32.exp() + 1.0)).abs() < 1e-6);
    let mut r = [1.0f32, 3.0];
    layer_norm_row(&mut r, Some(&[2.0, 1.0]), Some(&[0.0, 10.0]), 0.0);
    assert_eq!(r, [-2.0, 11.0]);
}

#[test]
fn gather_transposes() {
    // x [2, 3] -> out [3, 2]: tables are the permuted strides.
    let x = [0, 1, 2, 3, 4, 5];
    let mut dims = [1; MAX_RANK];
    let mut tables = vec![vec![0usize]; MAX_RANK];
    dims[4] = 3;
    dims[5] = 2;
    tables[4] = vec![0, 1, 2];
    tables[5] = vec![0, 3];
    let mut o = [0; 6];
    gather(&ThreadPool::new(1), &Gather { dims, tables }, &x, &mut o);
    assert_eq!(o, [0, 3, 1, 4, 2, 5]);
}
