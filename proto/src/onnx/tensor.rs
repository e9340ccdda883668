//! ONNX `TensorProto` → [`Tensor`]: raw little-endian data, the typed repeated fields, or
//! external data (a file beside the model, at an offset).

use super::pb::{data_type as dt, TensorProto};
use kayak_ir::{DType, Tensor};
use std::path::Path;

/// The IR dtype of an ONNX element type; `Err` names the ONNX type.
pub(crate) fn dtype(t: i32) -> Result<DType, String> {
    Ok(match t {
        dt::FLOAT => DType::F32,
        dt::UINT8 => DType::U8,
        dt::INT8 => DType::I8,
        dt::INT32 => DType::I32,
        dt::INT64 => DType::I64,
        dt::BOOL => DType::Bool,
        dt::FLOAT16 => DType::F16,
        dt::DOUBLE => DType::F64,
        dt::BFLOAT16 => DType::BF16,
        other => return Err(elem_name(other)),
    })
}

/// ONNX's name of an element type.
pub(crate) fn elem_name(t: i32) -> String {
    match t {
        0 => "UNDEFINED",
        dt::UINT16 => "UINT16",
        dt::INT16 => "INT16",
        dt::STRING => "STRING",
        dt::UINT32 => "UINT32",
        dt::UINT64 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        17..=20 => "FLOAT8",
        21 => "UINT4",
        22 => "INT4",
        23 => "FLOAT4E2M1",
        _ => return format!("element type {t}"),
    }
    .to_string()
}

/// Reads a tensor. `dir`: the model's directory, for external data (`None`: a model given
/// as a buffer, which cannot have any).
pub(crate) fn read(t: &TensorProto, dir: Option<&Path>) -> Result<Tensor, String> {
    read_with(t, dir, None)
}

/// [`read`], taking the raw data out of `t` (an initializer read once: no copy of it).
pub(crate) fn read_owned(t: &mut TensorProto, dir: Option<&Path>) -> Result<Tensor, String> {
    let raw = std::mem::take(&mut t.raw_data);
    read_with(t, dir, Some(raw))
}

fn read_with(t: &TensorProto, dir: Option<&Path>, raw: Option<Vec<u8>>) -> Result<Tensor, String> {
    let raw = raw.unwrap_or_else(|| t.raw_data.clone());
    let dtype = dtype(t.data_type)?;
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dim in {:?}", t.dims)))
        .collect::<Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("dims {:?} overflow", t.dims))?;
    let bytes = if t.data_location == 1 {
        external(t, dir, n * dtype.size_of())?
    } else if !raw.is_empty() || n == 0 {
        raw
    } else {
        typed_bytes(t, dtype, n)?
    };
    Tensor::from_le_bytes(dtype, &shape, &bytes).map_err(|e| e.to_string())
}

/// The typed repeated field's values as little-endian bytes of `dtype`.
fn typed_bytes(t: &TensorProto, dtype: DType, n: usize) -> Result<Vec<u8>, String> {
    let count = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(format!("{len} values for {n} elements"))
        }
    };
    let mut out = Vec::with_capacity(n * dtype.size_of());
    match dtype {
        DType::F32 => {
            count(t.float_data.len())?;
            t.float_data
                .iter()
                .for_each(|v| out.extend(v.to_le_bytes()));
        }
        DType::F64 => {
            count(t.double_data.len())?;
            t.double_data
                .iter()
                .for_each(|v| out.extend(v.to_le_bytes()));
        }
        DType::I64 => {
            count(t.int64_data.len())?;
            t.int64_data
                .iter()
                .for_each(|v| out.extend(v.to_le_bytes()));
        }
        DType::I32 => {
            count(t.int32_data.len())?;
            t.int32_data
                .iter()
                .for_each(|v| out.extend(v.to_le_bytes()));
        }
        // Narrow types live in int32_data, one value (or bit pattern) per entry.
        DType::I8 | DType::U8 | DType::Bool => {
            count(t.int32_data.len())?;
            t.int32_data.iter().for_each(|&v| out.push(v as u8));
        }
        DType::F16 | DType::BF16 => {
            count(t.int32_data.len())?;
            t.int32_data
                .iter()
                .for_each(|&v| out.extend((v as u16).to_le_bytes()));
        }
    }
    Ok(out)
}

/// External data: `location` (relative to the model's directory, never outside it),
/// `offset` and `length`.
fn external(t: &TensorProto, dir: Option<&Path>, want: usize) -> Result<Vec<u8>, String> {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| &e.value)
    };
    let loc = get("location").ok_or("external data without a `location`")?;
    let dir =
        dir.ok_or("external data in a model given as a buffer (no directory to read it from)")?;
    let rel = Path::new(loc);
    if rel.is_absolute()
        || rel.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        return Err(format!(
            "external data location `{loc}` is not a plain path inside the model's directory"
        ));
    }
    let num = |k: &str| -> Result<Option<u64>, String> {
        get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("external data `{k}` = `{v}`"))
            })
            .transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let length = num("length")?;
    if let Some(l) = length {
        if l != want as u64 {
            return Err(format!(
                "external data length {l}, the tensor needs {want} bytes"
            ));
        }
    }
    let path = dir.join(rel);
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    if offset.checked_add(want as u64).is_none_or(|end| end > size) {
        return Err(format!(
            "{}: {want} bytes at offset {offset} run past its end ({size} bytes)",
            path.display()
        ));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; want];
    f.read_exact(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(buf)
}
