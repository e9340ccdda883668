//! The `.pdiparams` reader.
//!
//! The file is the persistable variables' tensors back to back, in sorted order of variable
//! name. Each record is:
//!
//! | field | type |
//! |---|---|
//! | version | u32 (0) |
//! | LoD level count | u64, then per level: u64 byte size + that many bytes |
//! | tensor version | u32 (0) |
//! | desc size | i32 |
//! | `VarType.TensorDesc` | protobuf, desc size bytes |
//! | data | element count × element size, little-endian |

use crate::framework::var_type::TensorDesc;
use crate::{Error, Result};
use kayak_ir::{DType, Elem, Tensor};
use prost::Message;
use std::io::Read;

/// Maps Paddle's `VarType.Type` number to a dtype (`None`: not a tensor dtype Kayak holds).
pub fn dtype_from_paddle(t: i32) -> Option<DType> {
    Some(match t {
        0 => DType::Bool,
        2 => DType::I32,
        3 => DType::I64,
        4 => DType::F16,
        5 => DType::F32,
        6 => DType::F64,
        20 => DType::U8,
        21 => DType::I8,
        22 => DType::BF16,
        _ => return None,
    })
}

/// Reads records from any byte source, tracking the offset for messages. Small fields go
/// through a reused buffer; tensor data streams straight into the tensor (so reading a
/// params file never holds the file and its tensors at once).
struct Cursor<'a, R: Read> {
    r: R,
    pos: u64,
    len: u64,
    file: &'a str,
    var: &'a str,
    buf: Vec<u8>,
}

impl<R: Read> Cursor<'_, R> {
    fn truncated(&self) -> Error {
        Error::ParamsTruncated {
            file: self.file.to_string(),
            var: self.var.to_string(),
            offset: self.len as usize,
        }
    }
    fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        if self.pos + out.len() as u64 > self.len {
            return Err(self.truncated());
        }
        self.r.read_exact(out).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.truncated(),
            _ => Error::Io {
                path: self.file.to_string(),
                source: e,
            },
        })?;
        self.pos += out.len() as u64;
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.pos + n as u64 > self.len {
            return Err(self.truncated());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(n, 0);
        let r = self.fill(&mut buf);
        self.buf = buf;
        r?;
        Ok(&self.buf[..n])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    /// Reads `dims` elements of `T` into a new tensor, 64 KiB at a time.
    fn tensor<T: Elem>(&mut self, dims: &[usize]) -> Result<Tensor> {
        let size = std::mem::size_of::<T>();
        let n: usize = dims.iter().product();
        let mut data: Vec<T> = Vec::with_capacity(n);
        let mut chunk = vec![0u8; 1 << 18];
        let per = chunk.len() / size;
        let mut left = n;
        while left > 0 {
            let k = left.min(per);
            self.fill(&mut chunk[..k * size])?;
            data.extend(chunk[..k * size].chunks_exact(size).map(T::read_le));
            left -= k;
        }
        Ok(T::wrap(kayak_ir::ndarray_from(dims, data)))
    }
}

/// What the program says a parameter is.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    /// Variable name.
    pub name: String,
    /// Declared dtype.
    pub dtype: DType,
    /// Declared dims.
    pub dims: Vec<i64>,
}

/// Reads every record of a params file, in the order of `specs` (which must be the sorted
/// persistable variables), checking each against its declaration and that the file is
/// consumed exactly.
pub fn read_params(buf: &[u8], specs: &[ParamSpec], file: &str) -> Result<Vec<Tensor>> {
    read_params_from(buf, buf.len() as u64, specs, file)
}

/// [`read_params`] from a reader of `len` bytes (a file streamed record by record).
pub fn read_params_from(
    r: impl Read,
    len: u64,
    specs: &[ParamSpec],
    file: &str,
) -> Result<Vec<Tensor>> {
    let mut out = Vec::with_capacity(specs.len());
    let mut cur = Cursor {
        r,
        pos: 0,
        len,
        file,
        var: "",
        buf: Vec::new(),
    };
    let mismatch = |var: &str, reason: String| Error::ParamsMismatch {
        file: file.to_string(),
        var: var.to_string(),
        reason,
    };
    for spec in specs {
        cur.var = &spec.name;
        let version = cur.u32()?;
        if version != 0 {
            return Err(mismatch(
                &spec.name,
                format!("unsupported record version {version}"),
            ));
        }
        let lod_levels = cur.u64()?;
        if lod_levels > 16 {
            return Err(mismatch(
                &spec.name,
                format!("absurd LoD level count {lod_levels}"),
            ));
        }
        for _ in 0..lod_levels {
            let n = cur.u64()?;
            cur.take(
                usize::try_from(n)
                    .map_err(|_| mismatch(&spec.name, "LoD size overflows".into()))?,
            )?;
        }
        let tversion = cur.u32()?;
        if tversion != 0 {
            return Err(mismatch(
                &spec.name,
                format!("unsupported tensor version {tversion}"),
            ));
        }
        let desc_len = cur.i32()?;
        if desc_len < 0 {
            return Err(mismatch(
                &spec.name,
                format!("negative descriptor size {desc_len}"),
            ));
        }
        let desc = TensorDesc::decode(cur.take(desc_len as usize)?)
            .map_err(|e| mismatch(&spec.name, format!("corrupt tensor descriptor: {e}")))?;
        let dtype = dtype_from_paddle(desc.data_type).ok_or_else(|| {
            mismatch(
                &spec.name,
                format!("unsupported data type {}", desc.data_type),
            )
        })?;
        if dtype != spec.dtype {
            return Err(mismatch(
                &spec.name,
                format!("file holds {dtype}, program declares {}", spec.dtype),
            ));
        }
        if desc.dims.iter().any(|&d| d < 0) {
            return Err(mismatch(
                &spec.name,
                format!("negative dims {:?}", desc.dims),
            ));
        }
        // A 0-D tensor may be declared as [1] (Paddle writes scalars either way).
        let scalar_alias =
            |a: &[i64], b: &[i64]| (a.is_empty() && b == [1]) || (b.is_empty() && a == [1]);
        let decl_ok = (spec.dims.len() == desc.dims.len()
            && spec
                .dims
                .iter()
                .zip(&desc.dims)
                .all(|(&a, &b)| a < 0 || a == b))
            || scalar_alias(&spec.dims, &desc.dims);
        if !decl_ok {
            return Err(mismatch(
                &spec.name,
                format!(
                    "file holds shape {:?}, program declares {:?}",
                    desc.dims, spec.dims
                ),
            ));
        }
        let dims: Vec<usize> = desc.dims.iter().map(|&d| d as usize).collect();
        let numel = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| mismatch(&spec.name, "size overflows".into()))?;
        let bytes = numel
            .checked_mul(dtype.size_of())
            .ok_or_else(|| mismatch(&spec.name, "size overflows".into()))?;
        let _ = bytes;
        let t = match dtype {
            DType::F32 => cur.tensor::<f32>(&dims)?,
            DType::F16 => cur.tensor::<half::f16>(&dims)?,
            DType::BF16 => cur.tensor::<half::bf16>(&dims)?,
            DType::F64 => cur.tensor::<f64>(&dims)?,
            DType::I8 => cur.tensor::<i8>(&dims)?,
            DType::U8 => cur.tensor::<u8>(&dims)?,
            DType::I32 => cur.tensor::<i32>(&dims)?,
            DType::I64 => cur.tensor::<i64>(&dims)?,
            DType::Bool => cur.tensor::<bool>(&dims)?,
        };
        out.push(t);
    }
    if cur.pos != cur.len {
        return Err(Error::ParamsTrailing {
            file: file.to_string(),
            bytes: (cur.len - cur.pos) as usize,
            count: specs.len(),
        });
    }
    Ok(out)
}

/// Writes one params record (the inverse of [`read_params`] for one tensor): used by tests
/// and tools that make small models.
pub fn write_record(t: &Tensor, out: &mut Vec<u8>) {
    let code = match t.dtype() {
        DType::Bool => 0,
        DType::I32 => 2,
        DType::I64 => 3,
        DType::F16 => 4,
        DType::F32 => 5,
        DType::F64 => 6,
        DType::U8 => 20,
        DType::I8 => 21,
        DType::BF16 => 22,
    };
    let desc = TensorDesc {
        data_type: code,
        dims: t.shape().iter().map(|&d| d as i64).collect(),
    };
    let d = desc.encode_to_vec();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(d.len() as i32).to_le_bytes());
    out.extend_from_slice(&d);
    out.extend_from_slice(&t.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dims: &[i64]) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            dtype: DType::F32,
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn round_trip_and_exact_consumption() {
        let a = Tensor::from_f32s(&[2, 2], vec![1., 2., 3., 4.]).unwrap();
        let b = Tensor::from_f32s(&[3], vec![5., 6., 7.]).unwrap();
        let mut buf = Vec::new();
        write_record(&a, &mut buf);
        write_record(&b, &mut buf);
        let got = read_params(&buf, &[spec("a", &[2, 2]), spec("b", &[3])], "p").unwrap();
        assert_eq!(got, vec![a.clone(), b]);
        // Truncated: names the variable being read.
        let err = read_params(
            &buf[..buf.len() - 3],
            &[spec("a", &[2, 2]), spec("b", &[3])],
            "p",
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::ParamsTruncated { ref var, .. } if var == "b"),
            "{err}"
        );
        // Trailing data: more records than declared parameters.
        let err = read_params(&buf, &[spec("a", &[2, 2])], "p").unwrap_err();
        assert!(
            matches!(err, Error::ParamsTrailing { count: 1, .. }),
            "{err}"
        );
        // Shape disagreement with the program.
        let err = read_params(&buf, &[spec("a", &[4]), spec("b", &[3])], "p").unwrap_err();
        assert!(
            matches!(err, Error::ParamsMismatch { ref var, .. } if var == "a"),
            "{err}"
        );
    }
}
