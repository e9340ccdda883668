//! Data movement as gathers, shared by the CPU and GPU backends: the index of the input
//! element each output element copies (found by running the reference op on index
//! tensors), and its decomposition into one small table per axis.

use kayak_ir::{DType, Op, Tensor};

/// Per-axis tables whose sum over an output element's coordinates is `idx` at that element
/// (`idx` row-major over `shape`), if the mapping is separable that way; every element is
/// checked.
pub fn separable(idx: &[f64], shape: &[usize]) -> Option<Vec<Vec<i64>>> {
    let r = shape.len();
    if r == 0 || idx.is_empty() {
        return None;
    }
    let mut strides = vec![1usize; r];
    for k in (0..r - 1).rev() {
        strides[k] = strides[k + 1] * shape[k + 1];
    }
    let base = idx[0] as i64;
    let tables: Vec<Vec<i64>> = (0..r)
        .map(|k| {
            (0..shape[k])
                .map(|j| idx[j * strides[k]] as i64 - if k + 1 < r { base } else { 0 })
                .collect()
        })
        .collect();
    let mut coord = vec![0usize; r];
    for &v in idx {
        let sum: i64 = (0..r).map(|k| tables[k][coord[k]]).sum();
        if sum != v as i64 {
            return None;
        }
        for k in (0..r).rev() {
            coord[k] += 1;
            if coord[k] < shape[k] {
                break;
            }
            coord[k] = 0;
        }
    }
    Some(tables)
}

/// An output of a probed op: its shape, and per element the data element it is.
pub type Probed = (Vec<usize>, Vec<f64>);

/// An input of an op probed by [`probe`].
pub enum ProbeInput<'a> {
    /// Data of this shape: its elements are numbered after the data inputs before it.
    Data(&'a [usize]),
    /// A parameter (shape, starts, sizes...), given as it is.
    Param(&'a Tensor),
}

/// Runs `op` on index tensors: each data input's elements numbered one after another
/// across the data inputs (the first from 0), the parameters as they are. Returns, per
/// output, its shape and the index of the input element each output element is — or
/// `None` if the op does not run on index tensors, or an
/// output element is not exactly one input element. Indices are tried as i64, then f64,
/// then (below 2^24) f32, for ops that take only some dtypes.
pub fn probe(op: &Op, inputs: &[ProbeInput<'_>]) -> Option<Vec<Probed>> {
    let total: usize = inputs
        .iter()
        .map(|i| match i {
            ProbeInput::Data(s) => s.iter().product(),
            ProbeInput::Param(_) => 0,
        })
        .sum();
    if total == 0 || total >= 1 << 30 {
        return None;
    }
    let results = [DType::I64, DType::F64, DType::F32]
        .into_iter()
        .filter(|&dt| dt != DType::F32 || total < 1 << 24)
        .find_map(|dt| {
            let mut next = 0usize;
            let owned: Vec<Option<Tensor>> = inputs
                .iter()
                .map(|i| match i {
                    ProbeInput::Data(s) => {
                        let len: usize = s.iter().product();
                        let iota = (next..next + len).map(|j| j as f64).collect();
                        next += len;
                        Some(Tensor::F64(kayak_ir::ndarray_from(s, iota)).cast(dt))
                    }
                    ProbeInput::Param(_) => None,
                })
                .collect();
            let args: Vec<&Tensor> = inputs
                .iter()
                .zip(&owned)
                .map(|(i, o)| match i {
                    ProbeInput::Param(t) => *t,
                    ProbeInput::Data(_) => o.as_ref().expect("made above"),
                })
                .collect();
            op.eval(&args).ok()
        })?;
    let mut outs = Vec::with_capacity(results.len());
    for t in results {
        let idx = t.to_f64_vec();
        if idx
            .iter()
            .any(|&j| j < 0.0 || j.fract() != 0.0 || j >= total as f64)
        {
            return None;
        }
        outs.push((t.shape().to_vec(), idx));
    }
    Some(outs)
}
