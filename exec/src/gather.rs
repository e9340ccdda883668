//! Data movement as gathers, shared by the CPU and GPU backends: the index of the input
//! element each output element copies (found by running the reference op on index
//! tensors), and its decomposition into one small table per axis.

/// Per-axis tables whose sum over an output element's coordinates is `idx` at that element
/// (`idx` row-major over `shape`), if the mapping is separable that way; every element is
/// checked.
pub(crate) fn separable(idx: &[f64], shape: &[usize]) -> Option<Vec<Vec<i64>>> {
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
