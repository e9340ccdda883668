//! The optimized-graph cache on disk (like Paddle's `SetOptimCacheDir`).
//!
//! An entry holds the optimized graph with its folded weights, keyed by a hash of the
//! model and params bytes, the rules in force, the kept variables and the Kayak version.
//! File layout: `KAYAKOPT`, format version (u32), key (u64), payload length (u64),
//! payload checksum (u64), payload (bincode). A truncated, corrupt or stale entry is
//! detected and rebuilt, never trusted.

use kayak_ir::{Graph, ValueId};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"KAYAKOPT";
/// Bumped whenever the serialized graph changes shape (bincode is not self-describing):
/// 2 — every op variant holds one attribute struct (the op table of `kayak_ir::ops`).
const FORMAT: u32 = 2;

/// A cached optimization.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry {
    pub graph: Graph,
    pub keep: Vec<ValueId>,
    pub report: kayak_rewrite::Report,
}

fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.len().hash(&mut h);
        p.hash(&mut h);
    }
    h.finish()
}

/// A digest of the params: the buffer's bytes, or the file's, streamed.
pub(crate) fn params_digest(b: &kayak_proto::ModelBytes) -> std::io::Result<u64> {
    use std::io::Read;
    let Some(path) = &b.params_file else {
        return Ok(hash64(&[&b.params]));
    };
    let mut f = std::fs::File::open(path)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        buf[..n].hash(&mut h);
    }
    Ok(h.finish())
}

/// The key of an optimization.
pub(crate) fn key(model: &[u8], params: u64, rules: &str, keep: &[String]) -> u64 {
    let keep = keep.join("\u{1}");
    hash64(&[
        model,
        &params.to_le_bytes(),
        rules.as_bytes(),
        keep.as_bytes(),
        env!("CARGO_PKG_VERSION").as_bytes(),
    ])
}

/// The file of a key.
pub(crate) fn path(dir: &Path, key: u64) -> PathBuf {
    dir.join(format!("{key:016x}.kayak-opt"))
}

/// Why an entry was not used.
#[derive(Debug)]
pub(crate) enum Miss {
    /// No file.
    Absent,
    /// A file that is not a valid entry for this key.
    Invalid(String),
}

/// Reads an entry, verifying magic, format, key, length and checksum.
pub(crate) fn load(path: &Path, key: u64) -> Result<Entry, Miss> {
    let buf = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
        Err(e) => return Err(Miss::Invalid(e.to_string())),
    };
    let bad = |why: &str| Miss::Invalid(format!("{}: {why}", path.display()));
    if buf.len() < 36 || &buf[..8] != MAGIC {
        return Err(bad("not a Kayak cache entry"));
    }
    let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
    if u32_at(8) != FORMAT {
        return Err(bad("another format version"));
    }
    if u64_at(12) != key {
        return Err(bad("stale: made for another model, rule set or version"));
    }
    let len = u64_at(20) as usize;
    let payload = &buf[36..];
    if payload.len() != len {
        return Err(bad("truncated"));
    }
    if hash64(&[payload]) != u64_at(28) {
        return Err(bad("checksum mismatch"));
    }
    bincode::deserialize(payload).map_err(|e| bad(&format!("undecodable: {e}")))
}

/// Writes an entry atomically (a temporary file renamed into place).
pub(crate) fn store(path: &Path, key: u64, e: &Entry) -> std::io::Result<()> {
    let payload = bincode::serialize(e).map_err(std::io::Error::other)?;
    let mut buf = Vec::with_capacity(36 + payload.len());
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&FORMAT.to_le_bytes());
    buf.extend_from_slice(&key.to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    buf.extend_from_slice(&hash64(&[&payload]).to_le_bytes());
    buf.extend_from_slice(&payload);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &buf)?;
    std::fs::rename(&tmp, path)
}
