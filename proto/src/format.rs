//! Which model format a file holds, decided by its content, never by its name: a legacy
//! Paddle program (`ProgramDesc`, protobuf), a Paddle 3 PIR program (JSON whose
//! `base_code.magic` is `"pir"`), or an ONNX `ModelProto` (protobuf). The two protobuf
//! formats are told apart by their top-level fields: a `ProgramDesc` opens with its
//! blocks (field 1, a message), a `ModelProto` with its IR version (field 1, a varint) and
//! holds its graph in field 7.

use std::fmt;

/// A model file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Paddle's legacy `ProgramDesc` (`.pdmodel`).
    PaddleProgram,
    /// Paddle 3's PIR program, JSON (`.json`).
    PaddlePir,
    /// ONNX `ModelProto` (`.onnx`).
    Onnx,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::PaddleProgram => "a Paddle program (ProgramDesc protobuf, .pdmodel)",
            Format::PaddlePir => "a Paddle 3 PIR program (JSON, .json)",
            Format::Onnx => "an ONNX model (ModelProto protobuf, .onnx)",
        })
    }
}

/// The formats Kayak knows, for messages.
pub const KNOWN: &str = "a Paddle program (.pdmodel + .pdiparams), a Paddle 3 PIR program \
                         (.json + .pdiparams), an ONNX model (.onnx)";

/// What [`sniff`] found in a file that is none of the [`Format`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognized {
    /// What the content looks like (`JSON`, `empty`, ...).
    pub looks_like: String,
    /// What is wrong, with a byte offset where there is one.
    pub detail: String,
}

/// How many bytes of a JSON file are searched for the PIR magic: Paddle writes
/// `base_code` first.
const JSON_HEAD: usize = 4096;

/// Decides the format of a model file from its bytes.
pub fn sniff(bytes: &[u8]) -> Result<Format, Unrecognized> {
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(Unrecognized {
            looks_like: "an empty file".into(),
            detail: format!("{} bytes, none but whitespace", bytes.len()),
        });
    };
    if bytes[first] == b'{' {
        return sniff_json(&bytes[first..bytes.len().min(first + JSON_HEAD)]);
    }
    if let Some(other) = known_other(bytes) {
        return Err(other);
    }
    sniff_protobuf(bytes).map_err(|e| {
        if is_text(bytes) {
            Unrecognized {
                looks_like: "text".into(),
                detail: "not JSON (it does not start with `{`) nor a protobuf message".into(),
            }
        } else {
            e
        }
    })
}

/// Files users hand over by mistake that are not models: named so the message says what
/// the file is.
fn known_other(b: &[u8]) -> Option<Unrecognized> {
    let is = |looks_like: &str, detail: &str| {
        Some(Unrecognized {
            looks_like: looks_like.into(),
            detail: detail.into(),
        })
    };
    if b.starts_with(b"\x93NUMPY") {
        return is(
            "a NumPy array (.npy)",
            "an input or output tensor, not a model",
        );
    }
    if b.starts_with(b"PK\x03\x04") {
        return is(
            "a zip archive",
            "unpack it and pass the model file or its directory",
        );
    }
    // A `.pdiparams` file opens with a record's u32 version 0 (a protobuf tag cannot be 0).
    if b.len() >= 4 && b[..4] == [0, 0, 0, 0] {
        return is(
            "a Paddle params file (.pdiparams)",
            "it holds the weights; pass the program (.pdmodel or .json) beside it",
        );
    }
    None
}

/// Whether the head of `b` reads as text (UTF-8, no control characters but whitespace).
fn is_text(b: &[u8]) -> bool {
    std::str::from_utf8(&b[..b.len().min(JSON_HEAD)])
        .is_ok_and(|t| t.chars().all(|c| !c.is_control() || c.is_whitespace()))
}

/// A JSON object: PIR when its head has `"magic": "pir"`.
fn sniff_json(head: &[u8]) -> Result<Format, Unrecognized> {
    let text = String::from_utf8_lossy(head);
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if squeezed.contains("\"magic\":\"pir\"") {
        return Ok(Format::PaddlePir);
    }
    Err(Unrecognized {
        looks_like: "JSON".into(),
        detail: format!(
            "no `base_code.magic` of \"pir\" in its first {} bytes, so not a Paddle PIR program",
            head.len()
        ),
    })
}

/// Reads a protobuf varint at `*pos`, moving past it; `None` if it runs off the end or
/// past 10 bytes.
fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Classifies protobuf bytes by their top-level fields (see the module's note).
fn sniff_protobuf(b: &[u8]) -> Result<Format, Unrecognized> {
    let not = |detail: String| Unrecognized {
        looks_like: "binary data that is not a protobuf message of a known model format".into(),
        detail,
    };
    let mut pos = 0;
    let Some(tag) = varint(b, &mut pos) else {
        return Err(not("no protobuf field tag at byte 0".into()));
    };
    let (field, wire) = (tag >> 3, tag & 7);
    match (field, wire) {
        // ProgramDesc.blocks: a length-delimited message. A truncated program is still a
        // program (its decode error then says where it breaks).
        (1, 2) => Ok(Format::PaddleProgram),
        // ModelProto.ir_version: a varint; other ModelProto fields (producer, opset, graph)
        // may come first in files written by other tools.
        (1, 0) | (2..=8, 2) | (14, 2) | (20, 2) | (25, 2) => Ok(Format::Onnx),
        _ => Err(not(format!(
            "the first field tag at byte 0 is field {field}, wire type {wire}: neither a \
             ProgramDesc (field 1, a message) nor an ONNX ModelProto (field 1, a varint, \
             or one of its message fields)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_content() {
        // ProgramDesc: field 1, wire type 2 (tag 0x0a), then a length.
        assert_eq!(sniff(&[0x0a, 0x02, 0x08, 0x00]), Ok(Format::PaddleProgram));
        // ModelProto: ir_version = 8 (tag 0x08), then producer_name (tag 0x12).
        assert_eq!(sniff(&[0x08, 0x08, 0x12, 0x01, b'x']), Ok(Format::Onnx));
        // A ModelProto that opens with its graph (field 7, tag 0x3a).
        assert_eq!(sniff(&[0x3a, 0x00]), Ok(Format::Onnx));
        let pir =
            br#"  {"base_code": {"magic": "pir", "trainable": true, "version": 4}, "program": {}}"#;
        assert_eq!(sniff(pir), Ok(Format::PaddlePir));
    }

    #[test]
    fn other_content_says_what_it_looks_like() {
        let e = sniff(b"").unwrap_err();
        assert!(e.looks_like.contains("empty"), "{e:?}");
        let e = sniff(b" \n\t").unwrap_err();
        assert!(e.looks_like.contains("empty"), "{e:?}");
        let e = sniff(br#"{"name": "not a model"}"#).unwrap_err();
        assert_eq!(e.looks_like, "JSON");
        assert!(e.detail.contains("magic"), "{e:?}");
        // Field 15, wire type 5 (a fixed32): neither format opens so.
        let e = sniff(&[0x7d, 0, 0, 0, 0]).unwrap_err();
        assert!(e.detail.contains("field 15, wire type 5"), "{e:?}");
        // A varint that never ends.
        let e = sniff(&[0xff; 12]).unwrap_err();
        assert!(e.detail.contains("byte 0"), "{e:?}");
        // A PNG is not a model.
        assert!(sniff(b"\x89PNG\r\n\x1a\n").is_err());
        // Files passed by mistake are named.
        let e = sniff(b"\x93NUMPY\x01\x00v\x00{'descr'").unwrap_err();
        assert!(e.looks_like.contains("NumPy"), "{e:?}");
        let e = sniff(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(e.looks_like.contains(".pdiparams"), "{e:?}");
        let e = sniff(b"# Models\n\nSome text.\n").unwrap_err();
        assert_eq!(e.looks_like, "text");
        let e = sniff(b"PK\x03\x04\x14\x00").unwrap_err();
        assert!(e.looks_like.contains("zip"), "{e:?}");
    }
}
