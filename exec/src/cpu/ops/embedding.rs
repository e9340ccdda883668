//! Embedding lookups on the CPU: `embedding`, and summed lookups feeding a layer norm
//! (`embedding_layer_norm`, the input layer of BERT/ERNIE encoders). An id out of its
//! table's range is a typed error naming the lookup and the position.

use super::super::{CpuKernel, Ins, Outs, Ty};
use crate::Result;
use kayak_ir::{DType, Op, Tensor};
use kayak_kernels::ops as kops;

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    _: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    let out = outs[0];
    Some(match op {
        Op::Embedding(e) => {
            let t = ins.get(1)?;
            if ins.len() != 2
                || !matches!(ins[0].0, DType::I64 | DType::I32)
                || t.0 != DType::F32
                || t.1.len() != 2
            {
                return None;
            }
            let vocab = t.1[0];
            Box::new(EmbeddingK {
                vocab,
                d: t.1[1],
                padding: e
                    .padding_idx
                    .map(|p| if p < 0 { p + vocab as i64 } else { p }),
            })
        }
        Op::EmbeddingLayerNorm(e) => {
            let n = e.padding_idx.len();
            if n == 0 || n > 4 || out.0 != DType::F32 {
                return None;
            }
            let cols = *out.1.last()?;
            let lead_dims = &out.1[..out.1.len() - 1];
            if lead_dims.len() > 4
                || ins.len() != 2 * n + usize::from(e.ln.has_scale) + usize::from(e.ln.has_bias)
            {
                return None;
            }
            let mut lead = [1usize; 4];
            lead[4 - lead_dims.len()..].copy_from_slice(lead_dims);
            let mut id_strides = Vec::with_capacity(n);
            for t in &ins[..n] {
                if t.0 != DType::I64 || t.1.len() > lead_dims.len() {
                    return None;
                }
                // Numpy broadcast, right-aligned, to the leading dims.
                let mut st = [0usize; 4];
                let mut run = 1;
                for (i, &d) in t.1.iter().enumerate().rev() {
                    let k = 4 - t.1.len() + i;
                    if d == lead[k] && d != 1 {
                        st[k] = run;
                    } else if d != 1 {
                        return None;
                    }
                    run *= d;
                }
                id_strides.push(st);
            }
            let mut vocab = Vec::with_capacity(n);
            for t in &ins[n..2 * n] {
                if t.0 != DType::F32 || t.1.len() != 2 || t.1[1] != cols {
                    return None;
                }
                vocab.push(t.1[0]);
            }
            if e.ln.begin_norm_axis + 1 != out.1.len() {
                return None;
            }
            // A negative padding id counts from the end of its table (as the reference does).
            let padding = e
                .padding_idx
                .iter()
                .zip(&vocab)
                .map(|(p, &v)| p.map(|p| if p < 0 { p + v as i64 } else { p }))
                .collect();
            Box::new(EmbeddingLayerNormK {
                vocab,
                id_strides,
                lead,
                padding,
                cols,
                scale: e.ln.has_scale,
                bias: e.ln.has_bias,
                eps: e.ln.epsilon,
            })
        }
        _ => return None,
    })
}

/// An embedding lookup (`ids` i64 or i32).
#[derive(Debug)]
struct EmbeddingK {
    /// Table rows.
    vocab: usize,
    /// Row size.
    d: usize,
    /// The id whose rows read as zeros (normalized: never negative).
    padding: Option<i64>,
}

impl CpuKernel for EmbeddingK {
    fn name(&self) -> &'static str {
        "embedding"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let table = ins.f32(1)?;
        let o = outs.f32(0)?;
        let dims = (self.vocab, self.d);
        let r = match ins.dtype(0)? {
            DType::I64 => kops::embedding(ins.get::<i64>(0)?, table, dims, self.padding, o),
            _ => kops::embedding(ins.get::<i32>(0)?, table, dims, self.padding, o),
        };
        r.map_err(|(i, id)| {
            ins.error(kayak_ir::Error::OutOfRange {
                op: "embedding",
                reason: format!(
                    "id {id} at position {i} out of range for a table of {} rows",
                    self.vocab
                ),
            })
        })
    }
}

/// Embedding lookups summed, then layer norm.
#[derive(Debug)]
struct EmbeddingLayerNormK {
    /// Vocabulary size of each table.
    vocab: Vec<usize>,
    /// Per lookup, the strides of its ids over the output's leading dims (0: broadcast).
    id_strides: Vec<[usize; 4]>,
    /// The output's leading dims, left-padded to 4.
    lead: [usize; 4],
    /// Padding id of each lookup.
    padding: Vec<Option<i64>>,
    /// Hidden size.
    cols: usize,
    /// Scale input present.
    scale: bool,
    /// Bias input present.
    bias: bool,
    eps: f32,
}

impl CpuKernel for EmbeddingLayerNormK {
    fn name(&self) -> &'static str {
        "embedding_layer_norm"
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let n = self.vocab.len();
        let mut ids: [&[i64]; 4] = [&[]; 4];
        let mut tables: [(&[f32], usize); 4] = [(&[], 0); 4];
        for l in 0..n {
            ids[l] = ins.get::<i64>(l)?;
            tables[l] = (ins.f32(n + l)?, self.vocab[l]);
        }
        let s = self.scale.then(|| ins.f32(2 * n)).transpose()?;
        let b = self
            .bias
            .then(|| ins.f32(2 * n + self.scale as usize))
            .transpose()?;
        kops::embedding_layer_norm(
            &ids[..n],
            &self.id_strides,
            self.lead,
            &tables[..n],
            &self.padding,
            self.cols,
            s,
            b,
            self.eps,
            outs.f32(0)?,
        )
        .map_err(|(l, r, id)| {
            ins.error(kayak_ir::Error::OutOfRange {
                op: "embedding_layer_norm",
                reason: format!(
                    "lookup {l}: id {id} at position {r} out of range for a table of {} rows",
                    self.vocab[l]
                ),
            })
        })
    }
}
