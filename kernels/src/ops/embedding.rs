//! Embedding lookups: plain, and summed over several tables with a layer norm.

use super::norm::layer_norm_row;

/// `out[r, :] = layer_norm(Σᵢ tableᵢ[idsᵢ[r], :])` for the token rows `r` of the output's
/// leading dims `lead` (left-padded to 4). Lookup `i` reads its id for row
/// `(r₀, r₁, r₂, r₃)` at `Σ rₖ·strides[i][k]` (stride 0 where its ids broadcast). An id
/// outside its table is reported as `Err((lookup, row, id))`; a row whose id is its
/// lookup's `padding_idx` reads as zeros.
#[allow(clippy::too_many_arguments)]
pub fn embedding_layer_norm(
    ids: &[&[i64]],
    strides: &[[usize; 4]],
    lead: [usize; 4],
    tables: &[(&[f32], usize)],
    padding: &[Option<i64>],
    cols: usize,
    scale: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) -> Result<(), (usize, usize, i64)> {
    let rows = out.len() / cols.max(1);
    for r in 0..rows {
        let o = &mut out[r * cols..(r + 1) * cols];
        o.fill(0.0);
        let mut idx = [0usize; 4];
        let mut rem = r;
        for k in (0..4).rev() {
            idx[k] = rem % lead[k].max(1);
            rem /= lead[k].max(1);
        }
        for (l, ((ids, (table, vocab)), pad)) in ids.iter().zip(tables).zip(padding).enumerate() {
            let at: usize = (0..4).map(|k| idx[k] * strides[l][k]).sum();
            let id = ids[at];
            if id < 0 || id as usize >= *vocab {
                return Err((l, r, id));
            }
            if Some(id) == *pad {
                continue;
            }
            let t = &table[id as usize * cols..(id as usize + 1) * cols];
            o.iter_mut().zip(t).for_each(|(v, x)| *v += x);
        }
        layer_norm_row(o, scale, bias, eps);
    }
    Ok(())
}

/// Embedding lookup: row `ids[i]` of `table` (`[vocab, d]`) into `out[i, :]`; the
/// `padding` id's rows read as zeros. An id outside the table is `Err((position, id))`.
pub fn embedding<I: Copy + Into<i64>>(
    ids: &[I],
    table: &[f32],
    (vocab, d): (usize, usize),
    padding: Option<i64>,
    out: &mut [f32],
) -> Result<(), (usize, i64)> {
    for (i, (&id, o)) in ids.iter().zip(out.chunks_exact_mut(d.max(1))).enumerate() {
        let id: i64 = id.into();
        if id < 0 || id as usize >= vocab {
            return Err((i, id));
        }
        if Some(id) == padding {
            o.fill(0.0);
        } else {
            o.copy_from_slice(&table[id as usize * d..(id as usize + 1) * d]);
        }
    }
    Ok(())
}
