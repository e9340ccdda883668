//! Multi-head attention on packed heads.

use super::norm::softmax_row;
use crate::pool::{chunk_range, SharedMut, ThreadPool};

/// Geometry of multi-head attention on packed heads: Q is `[b, s, ·]`, K and V `[b, t, ·]`;
/// head `h` of a row occupies `h·d .. (h+1)·d` after the operand's offset. Row strides let
/// Q, K and V live in one packed `[b, s, 3·H·D]` tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttnGeom {
    /// Batch.
    pub b: usize,
    /// Query length.
    pub s: usize,
    /// Key length.
    pub t: usize,
    /// Heads.
    pub heads: usize,
    /// Head size.
    pub d: usize,
    /// Logit multiplier.
    pub scale: f32,
    /// Row stride of Q, K and V (elements).
    pub row: usize,
    /// Offsets of Q, K and V within a row.
    pub off: [usize; 3],
    /// Strides of the mask over (b, h, s, t); all zero without a mask.
    pub mask_strides: [usize; 4],
}

/// Scratch floats [`attention`] needs at `threads` threads: per thread one head's logits
/// (`s × t`) and its transposed keys (`d × t`).
pub fn attention_scratch(g: &AttnGeom, threads: usize) -> usize {
    threads.max(1) * (g.s * g.t + g.d * g.t)
}

/// `out[b, s, h·D + d] = Σ_t softmax_t(scale·q·k + mask) · v`, out `[b, s, H·D]`. `q`, `k`,
/// `v` may be the same slice (packed). Per (batch, head): the logits `scale·Q·Kᵀ` as one
/// product (keys transposed into scratch so the register-tiled kernel runs), the mask and
/// a softmax per row, then `P·V` as a second product written straight into the head's
/// columns of the output. (Batch, head) pairs are split over the pool.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    pool: &ThreadPool,
    g: &AttnGeom,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    use crate::gemm::{sgemm_serial, Epilogue, Gemm, Mat};
    let hd = g.heads * g.d;
    let units = g.b * g.heads;
    let threads = if units * g.s * g.t * g.d < 1 << 15 {
        1
    } else {
        pool.threads().min(units).max(1)
    };
    let per = g.s * g.t + g.d * g.t;
    assert!(
        scratch.len() >= threads * per,
        "attention scratch too short"
    );
    if g.s == 0 || g.t == 0 || g.d == 0 {
        return;
    }
    let op = SharedMut::new(out);
    let sp = SharedMut::new(scratch);
    let task = |th: usize| {
        // SAFETY: each task has its own scratch slot.
        #[allow(unsafe_code)]
        let mine = unsafe { sp.slice(th * per, per) };
        let (logits, kt) = mine.split_at_mut(g.s * g.t);
        for u in chunk_range(units, threads, th) {
            let (bi, hi) = (u / g.heads, u % g.heads);
            // Kᵀ of this head: kt[d][t].
            for ti in 0..g.t {
                let kr = &k[(bi * g.t + ti) * g.row + g.off[1] + hi * g.d..][..g.d];
                for (di, &x) in kr.iter().enumerate() {
                    kt[di * g.t + ti] = x;
                }
            }
            let qh = Mat {
                data: &q[bi * g.s * g.row + g.off[0] + hi * g.d..],
                rs: g.row,
                cs: 1,
            };
            sgemm_serial(
                Gemm {
                    m: g.s,
                    n: g.t,
                    k: g.d,
                },
                qh,
                Mat::rows(kt, g.t),
                logits,
                g.t,
                &Epilogue {
                    alpha: g.scale,
                    ..Epilogue::default()
                },
            );
            for (si, row) in logits.chunks_exact_mut(g.t).enumerate() {
                if let Some(m) = mask {
                    let [ma, mb, mc, md] = g.mask_strides;
                    let base = bi * ma + hi * mb + si * mc;
                    if md == 1 {
                        row.iter_mut()
                            .zip(&m[base..base + g.t])
                            .for_each(|(l, x)| *l += x);
                    } else {
                        row.iter_mut()
                            .enumerate()
                            .for_each(|(ti, l)| *l += m[base + ti * md]);
                    }
                }
                softmax_row(row);
            }
            // SAFETY: unit (b, h) owns rows b·s .. (b+1)·s, columns h·D .. (h+1)·D of the
            // output; units are disjoint, and the slice is only written at those elements.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(bi * g.s * hd + hi * g.d, (g.s - 1) * hd + g.d) };
            sgemm_serial(
                Gemm {
                    m: g.s,
                    n: g.d,
                    k: g.t,
                },
                Mat::rows(logits, g.t),
                Mat {
                    data: &v[bi * g.t * g.row + g.off[2] + hi * g.d..],
                    rs: g.row,
                    cs: 1,
                },
                o,
                hd,
                &Epilogue::default(),
            );
        }
    };
    pool.run(threads, &task);
}
