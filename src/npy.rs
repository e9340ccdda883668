//! Reading and writing NumPy `.npy` files (format versions 1–3, little-endian, C order).

use crate::{Error, Result};
use kayak_ir::{DType, Tensor};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

fn err(path: &str, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn descr(d: DType) -> &'static str {
    match d {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::BF16 => "<V2",
        DType::F64 => "<f8",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::Bool => "|b1",
    }
}

fn parse_descr(s: &str) -> Option<DType> {
    Some(match s {
        "<f4" | "f4" => DType::F32,
        "<f2" | "f2" => DType::F16,
        "<f8" | "f8" => DType::F64,
        "|i1" | "i1" | "<i1" => DType::I8,
        "|u1" | "u1" | "<u1" => DType::U8,
        "<i4" | "i4" => DType::I32,
        "<i8" | "i8" => DType::I64,
        "|b1" | "b1" | "?" | "|?" => DType::Bool,
        _ => return None,
    })
}

/// Parses `.npy` bytes; `name` labels errors.
pub fn from_bytes(buf: &[u8], name: &str) -> Result<Tensor> {
    if buf.len() < 10 || &buf[..6] != MAGIC {
        return Err(err(name, "not a .npy file (bad magic)"));
    }
    let major = buf[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([buf[8], buf[9]]) as usize, 10),
        2 | 3 => {
            if buf.len() < 12 {
                return Err(err(name, "truncated header"));
            }
            (
                u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize,
                12,
            )
        }
        v => return Err(err(name, format!("unsupported .npy version {v}"))),
    };
    let header = buf
        .get(start..start + hlen)
        .ok_or_else(|| err(name, "truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| err(name, "header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))?;
        let rest = &header[i + key.len() + 2..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let d = field("descr").ok_or_else(|| err(name, "header has no descr"))?;
    let d = d
        .strip_prefix('\'')
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| err(name, "bad descr"))?;
    let dtype = parse_descr(d).ok_or_else(|| {
        err(
            name,
            format!("unsupported dtype `{d}` (big-endian or exotic)"),
        )
    })?;
    let fo = field("fortran_order").ok_or_else(|| err(name, "header has no fortran_order"))?;
    if fo.starts_with("True") {
        return Err(err(name, "Fortran-ordered arrays are not supported"));
    }
    let sh = field("shape").ok_or_else(|| err(name, "header has no shape"))?;
    let sh = sh
        .strip_prefix('(')
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| err(name, "bad shape"))?;
    let shape: Vec<usize> = sh
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| err(name, format!("bad shape entry `{s}`")))
        })
        .collect::<Result<_>>()?;
    let data = &buf[start + hlen..];
    Tensor::from_le_bytes(dtype, &shape, data).map_err(|e| err(name, e.to_string()))
}

/// Reads a `.npy` file.
pub fn read(path: impl AsRef<Path>) -> Result<Tensor> {
    let p = path.as_ref();
    let name = p.display().to_string();
    let buf = std::fs::read(p).map_err(|e| err(&name, e.to_string()))?;
    from_bytes(&buf, &name)
}

/// Serializes a tensor as `.npy` (version 1) bytes.
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t.dtype())
    );
    let total = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + t.byte_len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&t.to_le_bytes());
    out
}

/// Writes a `.npy` file.
pub fn write(path: impl AsRef<Path>, t: &Tensor) -> Result<()> {
    let p = path.as_ref();
    std::fs::write(p, to_bytes(t)).map_err(|e| err(&p.display().to_string(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_files() {
        for t in [
            Tensor::from_f32s(&[2, 3], (0..6).map(|v| v as f32).collect()).unwrap(),
            Tensor::from_i64s(&[7]),
            Tensor::full(DType::Bool, &[], 1.0),
        ] {
            let b = to_bytes(&t);
            assert_eq!((b.len() - t.byte_len()) % 64, 0);
            assert_eq!(from_bytes(&b, "t").unwrap(), t);
        }
        assert!(from_bytes(b"hello", "x").is_err());
        let mut b = to_bytes(&Tensor::from_i64s(&[1, 2]));
        b.pop();
        assert!(matches!(from_bytes(&b, "x"), Err(Error::Npy { .. })));
    }
}
