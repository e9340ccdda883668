//! Built engines (TensorRT plans and the like) kept on disk, so that a subgraph is built
//! once per machine: an entry is found by the subgraph's key
//! (`kayak_ir::partition::Subgraph::key`, a hash of its ops, types and weights) and by
//! everything else a built engine depends on ([`EngineParams`]: precision, the dynamic
//! shape profile, the device's compute capability, the builder's version). Entries are
//! written atomically (a temporary file renamed into place), and an entry is read back
//! only if its header names the same key and parameters and its length and checksum hold;
//! anything else is a miss, never a wrong engine.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The arithmetic an engine was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
    /// 8-bit integers (calibrated or quantized models).
    Int8,
}

/// What a built engine depends on besides its subgraph.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineParams {
    /// Arithmetic.
    pub precision: Precision,
    /// Per input (by name): the minimum, optimal and maximum shapes of its dynamic-shape
    /// profile.
    pub profile: Vec<(String, [Vec<usize>; 3])>,
    /// The device's compute capability (an engine runs only where it was built).
    pub compute_capability: (i32, i32),
    /// The builder and its version (e.g. `TensorRT 10.3.0`).
    pub builder: String,
}

impl EngineParams {
    /// The parameters' hash (FNV-1a over their `Debug` form, stable across runs).
    fn hash(&self) -> u64 {
        fnv(format!("{self:?}").as_bytes())
    }
}

/// What can go wrong reading or writing the cache (a miss is not an error).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file system refused.
    #[error("engine cache {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Engines on disk in one folder.
#[derive(Debug, Clone)]
pub struct EngineCache {
    dir: PathBuf,
}

/// The header's first bytes.
const MAGIC: &[u8; 8] = b"KAYAKENG";
/// The header's layout version.
const VERSION: u32 = 1;
/// Header bytes: magic, version, key, parameters' hash, payload length, payload checksum.
const HEADER: usize = 8 + 4 + 8 + 8 + 8 + 8;

impl EngineCache {
    /// A cache in `dir` (made when the first engine is stored).
    pub fn new(dir: impl Into<PathBuf>) -> EngineCache {
        EngineCache { dir: dir.into() }
    }

    /// The file an engine for `key` built with `params` lives in.
    pub fn path(&self, key: u64, params: &EngineParams) -> PathBuf {
        self.dir
            .join(format!("{key:016x}-{:016x}.engine", params.hash()))
    }

    /// The engine stored for `key` and `params`, if there is a whole one.
    ///
    /// # Errors
    /// If the file exists but cannot be read.
    pub fn get(&self, key: u64, params: &EngineParams) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.path(key, params);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        Ok(parse(&bytes, key, params.hash()).map(<[u8]>::to_vec))
    }

    /// Stores `engine` for `key` and `params`, replacing any entry: written to a
    /// temporary file in the folder, then renamed into place, so a reader sees the old
    /// entry or the new one, never half of one.
    ///
    /// # Errors
    /// If the folder cannot be made or the file written.
    pub fn put(&self, key: u64, params: &EngineParams, engine: &[u8]) -> Result<(), CacheError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path(key, params);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&key.to_le_bytes());
        header.extend_from_slice(&params.hash().to_le_bytes());
        header.extend_from_slice(&(engine.len() as u64).to_le_bytes());
        header.extend_from_slice(&fnv(engine).to_le_bytes());
        f.write_all(&header)
            .and_then(|()| f.write_all(engine))
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }
}

/// The payload of an entry whose header matches, or `None`.
fn parse(bytes: &[u8], key: u64, params: u64) -> Option<&[u8]> {
    let (h, payload) = bytes.split_at_checked(HEADER)?;
    let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
    let ok = &h[..8] == MAGIC
        && h[8..12] == VERSION.to_le_bytes()
        && word(12) == key
        && word(20) == params
        && word(28) == payload.len() as u64
        && word(36) == fnv(payload);
    ok.then_some(payload)
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> EngineParams {
        EngineParams {
            precision: Precision::F16,
            profile: vec![(
                "x".into(),
                [vec![1, 3, 32, 32], vec![1, 3, 48, 320], vec![8, 3, 48, 960]],
            )],
            compute_capability: (9, 0),
            builder: "TensorRT 10.3.0".into(),
        }
    }

    /// An engine stored comes back for the same key and parameters only; another key,
    /// precision, profile, device or builder is a miss.
    #[test]
    fn an_engine_comes_back_for_its_key_and_parameters_only() {
        let dir = tempfile_dir("match");
        let cache = EngineCache::new(&dir);
        let p = params();
        assert_eq!(cache.get(7, &p).unwrap(), None);
        cache.put(7, &p, b"engine bytes").unwrap();
        assert_eq!(
            cache.get(7, &p).unwrap().as_deref(),
            Some(&b"engine bytes"[..])
        );
        assert_eq!(cache.get(8, &p).unwrap(), None);
        let mut other = p.clone();
        other.precision = Precision::F32;
        assert_eq!(cache.get(7, &other).unwrap(), None);
        let mut other = p.clone();
        other.profile[0].1[2][0] = 16;
        assert_eq!(cache.get(7, &other).unwrap(), None);
        let mut other = p.clone();
        other.compute_capability = (8, 9);
        assert_eq!(cache.get(7, &other).unwrap(), None);
        let mut other = p.clone();
        other.builder = "TensorRT 10.4.0".into();
        assert_eq!(cache.get(7, &other).unwrap(), None);
        // Replacing an entry.
        cache.put(7, &p, b"rebuilt").unwrap();
        assert_eq!(cache.get(7, &p).unwrap().as_deref(), Some(&b"rebuilt"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A truncated, corrupted or foreign file under an entry's name is a miss, not an
    /// engine; no temporary file stays behind a store.
    #[test]
    fn damaged_entries_are_misses() {
        let dir = tempfile_dir("damaged");
        let cache = EngineCache::new(&dir);
        let p = params();
        cache.put(3, &p, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let path = cache.path(3, &p);
        let whole = std::fs::read(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // Other entries' files under this name: another key, other parameters.
        let mut q = p.clone();
        q.precision = Precision::Int8;
        cache.put(4, &p, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        cache.put(3, &q, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let other_key = std::fs::read(cache.path(4, &p)).unwrap();
        let other_params = std::fs::read(cache.path(3, &q)).unwrap();
        for (what, bytes) in [
            ("truncated", whole[..whole.len() - 1].to_vec()),
            ("header only", whole[..HEADER].to_vec()),
            ("empty", Vec::new()),
            ("another key's entry", other_key),
            ("other parameters' entry", other_params),
            ("flipped payload", {
                let mut b = whole.clone();
                *b.last_mut().unwrap() ^= 1;
                b
            }),
            ("other magic", {
                let mut b = whole.clone();
                b[0] = b'X';
                b
            }),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(cache.get(3, &p).unwrap(), None, "{what}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("kayak-engine-cache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
