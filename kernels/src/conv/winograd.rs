//! Winograd F(2×2, 3×3) convolution for 3×3, stride-1, undilated, ungrouped convs (NCHW).
//!
//! `Y = Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A` per 4×4 input tile `d` and 2×2 output tile: 16 products
//! of `[oc × ic]` by `[ic × tiles]` replace the `oc·ic·9` multiplies per output pair of
//! rows and columns by `oc·ic·16/4` — 2.25× fewer. Weights are transformed per run into
//! scratch (`16·oc·ic` floats, cheap next to the conv). Tiles are processed in chunks of
//! [`CHUNK`]: the input transform works on 16 neighbouring tiles at once, reading each
//! tile element as a contiguous slice of the input row's even or odd columns, so it
//! vectorizes. Errors stay at the level of a direct f32 conv (the transforms only add and
//! halve).

use super::finish_plane;
use super::geom::{Conv2d, ConvEpilogue};
use crate::gemm::{self, Epilogue, Gemm, Mat};
use crate::pool::{chunk_range, SharedMut, ThreadPool};

/// Output tiles per chunk (a multiple of 16).
pub const CHUNK: usize = 128;

/// True if this conv runs with Winograd: 3×3, stride 1, dilation 1, one group, and
/// enough channels for the 16 products to pay for the transforms.
pub fn applies(p: &Conv2d) -> bool {
    p.kh == 3
        && p.kw == 3
        && p.stride == [1, 1]
        && p.dilation == [1, 1]
        && p.groups == 1
        && p.ic >= 16
        && p.oc >= 8
        && p.oh >= 4
        && p.ow >= 4
        && p.pad[0] <= 2
        && p.pad[1] <= 2
}

/// Scratch floats at `threads` threads: the transformed weights, then per thread the
/// transformed inputs and the products of one chunk, and two split input rows.
pub fn scratch_len(p: &Conv2d, threads: usize) -> usize {
    16 * p.oc * p.ic + threads.max(1) * per_thread(p)
}

fn per_thread(p: &Conv2d) -> usize {
    16 * p.ic * CHUNK + 16 * p.oc * CHUNK + 8 * split_len(p)
}

/// Length of one parity half of a split input row (2 zeros of padding on each side).
fn split_len(p: &Conv2d) -> usize {
    p.w.div_ceil(2) + 4 + 16
}

/// `U = G·g·Gᵀ` for every (oc, ic): `u[ξ·oc·ic + o·ic + i]`.
fn transform_weights(p: &Conv2d, w: &[f32], u: &mut [f32]) {
    let (oc, ic) = (p.oc, p.ic);
    for o in 0..oc {
        for i in 0..ic {
            let g = &w[(o * ic + i) * 9..(o * ic + i) * 9 + 9];
            // t = G·g (4×3).
            let mut t = [[0f32; 3]; 4];
            for c in 0..3 {
                let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c]);
                t[0][c] = g0;
                t[1][c] = 0.5 * (g0 + g1 + g2);
                t[2][c] = 0.5 * (g0 - g1 + g2);
                t[3][c] = g2;
            }
            for (r, tr) in t.iter().enumerate() {
                let v = [
                    tr[0],
                    0.5 * (tr[0] + tr[1] + tr[2]),
                    0.5 * (tr[0] - tr[1] + tr[2]),
                    tr[2],
                ];
                for (c, &x) in v.iter().enumerate() {
                    u[(r * 4 + c) * oc * ic + o * ic + i] = x;
                }
            }
        }
    }
}

/// `out = epilogue(conv3x3(x, w))` by Winograd F(2×2, 3×3). `scratch` holds
/// [`scratch_len`] floats.
pub fn conv3x3(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let (oc, ic) = (p.oc, p.ic);
    let (th, tw) = (p.oh.div_ceil(2), p.ow.div_ceil(2));
    let tiles = th * tw;
    let chunks = tiles.div_ceil(CHUNK);
    let units = p.n * chunks;
    let threads = pool.threads().min(units).max(1);
    assert!(
        scratch.len() >= scratch_len(p, threads),
        "winograd scratch too short"
    );
    let (u, rest) = scratch.split_at_mut(16 * oc * ic);
    transform_weights(p, w, u);
    let u: &[f32] = u;
    let op = SharedMut::new(out);
    let rp = SharedMut::new(rest);
    let ohw = p.oh * p.ow;
    let task = |t: usize| {
        // SAFETY: thread slot t of the scratch after the weights belongs to task t.
        #[allow(unsafe_code)]
        let mine = unsafe { rp.slice(t * per_thread(p), per_thread(p)) };
        let (v, rest) = mine.split_at_mut(16 * ic * CHUNK);
        let (m, rows) = rest.split_at_mut(16 * oc * CHUNK);
        for unit in chunk_range(units, threads, t) {
            let (b, c) = (unit / chunks, unit % chunks);
            let t0 = c * CHUNK;
            let nt = CHUNK.min(tiles - t0);
            let xb = &x[b * ic * p.h * p.w..(b + 1) * ic * p.h * p.w];
            input_transform(p, xb, t0, nt, tw, v, rows);
            for xi in 0..16 {
                gemm::sgemm_serial(
                    Gemm {
                        m: oc,
                        n: nt,
                        k: ic,
                    },
                    Mat::rows(&u[xi * oc * ic..(xi + 1) * oc * ic], ic),
                    Mat::rows(&v[xi * ic * CHUNK..(xi + 1) * ic * CHUNK], CHUNK),
                    &mut m[xi * oc * CHUNK..(xi + 1) * oc * CHUNK],
                    CHUNK,
                    &Epilogue::default(),
                );
            }
            // SAFETY: image b's output; chunks of one image write disjoint tiles (rows and
            // columns of 2×2 blocks), and the raw slice is only written at those tiles.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(b * oc * ohw, oc * ohw) };
            output_transform(p, m, t0, nt, tw, o);
        }
    };
    pool.run(threads, &task);
    // Epilogue per output plane.
    let op = SharedMut::new(out);
    crate::ops::par_ranges(pool, p.n * oc, ohw, &|r| {
        for plane in r {
            // SAFETY: disjoint planes.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(plane * ohw, ohw) };
            finish_plane(p, ep, plane, o);
        }
    });
}

/// `V[ξ][i][t] = (Bᵀ·d·B)_ξ` for the 4×4 input patch `d` of tile `t0 + t`, channel `i`.
/// For each tile row in the chunk and channel, the four input rows it reads are split once
/// by column parity (with zero padding); then each group of 16 tiles reads every patch
/// element as a contiguous slice and transforms 16 tiles per lane.
fn input_transform(
    p: &Conv2d,
    x: &[f32],
    t0: usize,
    nt: usize,
    tw: usize,
    v: &mut [f32],
    rows: &mut [f32],
) {
    crate::simd!(input_transform_body(
        p: &Conv2d,
        x: &[f32],
        t0: usize,
        nt: usize,
        tw: usize,
        v: &mut [f32],
        rows: &mut [f32]
    ))
}

#[inline(always)]
fn input_transform_body(
    p: &Conv2d,
    x: &[f32],
    t0: usize,
    nt: usize,
    tw: usize,
    v: &mut [f32],
    rows: &mut [f32],
) {
    let (h, w) = (p.h as isize, p.w);
    let (pt, pl) = (p.pad[0] as isize, p.pad[1] as isize);
    let half = split_len(p);
    let mut t = 0;
    while t < nt {
        let (ty, tx_start) = ((t0 + t) / tw, (t0 + t) % tw);
        // Tiles of this tile row inside the chunk.
        let span = (tw - tx_start).min(nt - t);
        for i in 0..p.ic {
            let xc = &x[i * p.h * w..(i + 1) * p.h * w];
            // rows[(r·2 + parity)·half ..]: input row ty·2 − pt + r split by parity; column
            // c sits at index (c >> 1) + 2 of its parity's array.
            for r in 0..4 {
                let iy = ty as isize * 2 - pt + r as isize;
                let (ev, od) = rows[r * 2 * half..(r + 1) * 2 * half].split_at_mut(half);
                ev.fill(0.0);
                od.fill(0.0);
                if iy < 0 || iy >= h {
                    continue;
                }
                let xr = &xc[iy as usize * w..(iy as usize + 1) * w];
                let pairs = xr.chunks_exact(2);
                let last = pairs.remainder().first().copied();
                let k_end = pairs.len();
                for ((pair, e), o) in pairs.zip(&mut ev[2..]).zip(&mut od[2..]) {
                    *e = pair[0];
                    *o = pair[1];
                }
                if let Some(v0) = last {
                    ev[k_end + 2] = v0;
                }
            }
            let mut g = 0;
            while g < span {
                let n = 16.min(span - g);
                let tx0 = tx_start + g;
                let mut d = [[[0f32; 16]; 4]; 4];
                for (r, dr) in d.iter_mut().enumerate() {
                    for (j, dj) in dr.iter_mut().enumerate() {
                        let c0 = 2 * tx0 as isize - pl + j as isize;
                        let parity = c0.rem_euclid(2) as usize;
                        let base = (c0.div_euclid(2) + 2) as usize;
                        let arr = &rows[(r * 2 + parity) * half..(r * 2 + parity + 1) * half];
                        // Always 16 (a fixed-size copy: vector moves, no memmove call); the
                        // split rows carry 16 floats of slack, lanes past `n` are unused.
                        dj.copy_from_slice(&arr[base..base + 16]);
                    }
                }
                // Bᵀ·d (rows), then ·B (columns), 16 tiles per lane.
                let mut tmp = [[[0f32; 16]; 4]; 4];
                for j in 0..4 {
                    tmp[0][j] = sub(&d[0][j], &d[2][j]);
                    tmp[1][j] = add(&d[1][j], &d[2][j]);
                    tmp[2][j] = sub(&d[2][j], &d[1][j]);
                    tmp[3][j] = sub(&d[1][j], &d[3][j]);
                }
                for (r, tr) in tmp.iter().enumerate() {
                    let cols = [
                        sub(&tr[0], &tr[2]),
                        add(&tr[1], &tr[2]),
                        sub(&tr[2], &tr[1]),
                        sub(&tr[1], &tr[3]),
                    ];
                    for (c, col) in cols.iter().enumerate() {
                        let xi = r * 4 + c;
                        let at = xi * p.ic * CHUNK + i * CHUNK + t + g;
                        if n == 16 {
                            let dst: &mut [f32; 16] =
                                (&mut v[at..at + 16]).try_into().expect("16 floats");
                            *dst = *col;
                        } else {
                            v[at..at + n].copy_from_slice(&col[..n]);
                        }
                    }
                }
                g += n;
            }
        }
        t += span;
    }
}

#[inline(always)]
fn add(a: &[f32; 16], b: &[f32; 16]) -> [f32; 16] {
    std::array::from_fn(|k| a[k] + b[k])
}

#[inline(always)]
fn sub(a: &[f32; 16], b: &[f32; 16]) -> [f32; 16] {
    std::array::from_fn(|k| a[k] - b[k])
}

/// `Y = Aᵀ·m·A` per tile and output channel, 16 tiles per lane, written to the output
/// (clipped at its edge).
fn output_transform(p: &Conv2d, m: &[f32], t0: usize, nt: usize, tw: usize, o: &mut [f32]) {
    crate::simd!(output_transform_body(
        p: &Conv2d,
        m: &[f32],
        t0: usize,
        nt: usize,
        tw: usize,
        o: &mut [f32]
    ))
}

#[inline(always)]
fn output_transform_body(p: &Conv2d, m: &[f32], t0: usize, nt: usize, tw: usize, o: &mut [f32]) {
    let ohw = p.oh * p.ow;
    for oc in 0..p.oc {
        let plane = &mut o[oc * ohw..(oc + 1) * ohw];
        let mut g = 0;
        while g < nt {
            let n = 16.min(nt - g);
            let mv = |xi: usize| -> [f32; 16] {
                let src = &m[xi * p.oc * CHUNK + oc * CHUNK + g..][..n];
                let mut a = [0f32; 16];
                a[..n].copy_from_slice(src);
                a
            };
            let ms: [[f32; 16]; 16] = std::array::from_fn(mv);
            // Aᵀ·m: rows r0 = m0 + m1 + m2, r1 = m1 − m2 − m3 (per column c).
            let r0: [[f32; 16]; 4] =
                std::array::from_fn(|c| add(&add(&ms[c], &ms[4 + c]), &ms[8 + c]));
            let r1: [[f32; 16]; 4] =
                std::array::from_fn(|c| sub(&sub(&ms[4 + c], &ms[8 + c]), &ms[12 + c]));
            // ·A: y0 = c0 + c1 + c2, y1 = c1 − c2 − c3.
            let y = [
                [
                    add(&add(&r0[0], &r0[1]), &r0[2]),
                    sub(&sub(&r0[1], &r0[2]), &r0[3]),
                ],
                [
                    add(&add(&r1[0], &r1[1]), &r1[2]),
                    sub(&sub(&r1[1], &r1[2]), &r1[3]),
                ],
            ];
            for k in 0..n {
                let (ty, tx) = ((t0 + g + k) / tw, (t0 + g + k) % tw);
                for (dy, yr) in y.iter().enumerate() {
                    let oy = ty * 2 + dy;
                    if oy >= p.oh {
                        continue;
                    }
                    for (dx, yv) in yr.iter().enumerate() {
                        let ox = tx * 2 + dx;
                        if ox < p.ow {
                            plane[oy * p.ow + ox] = yv[k];
                        }
                    }
                }
            }
            g += n;
        }
    }
}
