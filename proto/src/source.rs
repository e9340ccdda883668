//! Where a model comes from: a directory, a `.pdmodel` path, two paths, or two buffers.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The model files a directory is searched for, in this order (the format of the one
/// taken is then decided by its content).
pub const DIR_CANDIDATES: &[&str] = &[
    "inference.pdmodel",
    "model.pdmodel",
    "inference.json",
    "model.json",
    "inference.onnx",
    "model.onnx",
];

/// A model's location.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A directory holding one of [`DIR_CANDIDATES`] (or exactly one `.pdmodel`) and, for a
    /// Paddle program, its `.pdiparams`.
    Dir(PathBuf),
    /// A `.pdmodel` file; the params are the `.pdiparams` with the same stem.
    ModelFile(PathBuf),
    /// Explicit program and params paths.
    Paths {
        /// Program (`.pdmodel`).
        model: PathBuf,
        /// Params (`.pdiparams`).
        params: PathBuf,
    },
    /// Program and params already in memory.
    Buffers {
        /// Program bytes.
        model: Vec<u8>,
        /// Params bytes (may be empty for a model without parameters).
        params: Vec<u8>,
    },
}

/// A model's bytes with names for messages.
#[derive(Debug, Clone)]
pub struct ModelBytes {
    /// Program bytes.
    pub model: Vec<u8>,
    /// Params bytes (empty when `params_file` is set).
    pub params: Vec<u8>,
    /// The params file, read by the importer record by record (so the file and its
    /// tensors are never in memory together). `None` for buffers.
    pub params_file: Option<PathBuf>,
    /// Name of the program (its path, or `<buffer>`).
    pub model_name: String,
    /// Name of the params (its path, or `<buffer>`).
    pub params_name: String,
    /// The params file was looked for and not found (a program without parameters needs
    /// none; the importer reports it if parameters are declared).
    pub params_missing: bool,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

impl ModelSource {
    /// Guesses the kind of a path: a directory or a `.pdmodel` file.
    pub fn from_path(p: impl AsRef<Path>) -> ModelSource {
        let p = p.as_ref();
        if p.is_dir() {
            ModelSource::Dir(p.to_path_buf())
        } else {
            ModelSource::ModelFile(p.to_path_buf())
        }
    }

    /// The model file a directory holds: the first of [`DIR_CANDIDATES`] present, else the
    /// only `.pdmodel`; with the other candidates present (the CLI names what it took).
    pub fn model_in_dir(d: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
        if !d.is_dir() {
            return Err(Error::ModelNotFound {
                path: d.display().to_string(),
                reason: "not a directory".into(),
            });
        }
        let mut present: Vec<PathBuf> = DIR_CANDIDATES
            .iter()
            .map(|n| d.join(n))
            .filter(|p| p.is_file())
            .collect();
        if !present.is_empty() {
            let first = present.remove(0);
            return Ok((first, present));
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|source| Error::Io {
                path: d.display().to_string(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pdmodel"))
            .collect();
        found.sort();
        match found.len() {
            1 => Ok((found.remove(0), vec![])),
            0 => Err(Error::ModelNotFound {
                path: d.display().to_string(),
                reason: format!("none of {} nor another .pdmodel", DIR_CANDIDATES.join(", ")),
            }),
            n => Err(Error::ModelNotFound {
                path: d.display().to_string(),
                reason: format!("{n} .pdmodel files; name one"),
            }),
        }
    }

    /// Resolves to the program and params paths (buffers: `None`).
    pub fn paths(&self) -> Result<Option<(PathBuf, PathBuf)>> {
        match self {
            ModelSource::Dir(d) => {
                let model = ModelSource::model_in_dir(d)?.0;
                ModelSource::ModelFile(model).paths()
            }
            ModelSource::ModelFile(m) => {
                if !m.is_file() {
                    return Err(Error::ModelNotFound {
                        path: m.display().to_string(),
                        reason: "no such file".into(),
                    });
                }
                // `x.pdmodel` → `x.pdiparams` (never `x.pdiparams.info`). It may be absent
                // for a program without parameters.
                Ok(Some((m.clone(), m.with_extension("pdiparams"))))
            }
            ModelSource::Paths { model, params } => Ok(Some((model.clone(), params.clone()))),
            ModelSource::Buffers { .. } => Ok(None),
        }
    }

    /// Reads the bytes.
    pub fn load(&self) -> Result<ModelBytes> {
        match self.paths()? {
            Some((m, p)) => {
                let params_missing = !p.exists();
                Ok(ModelBytes {
                    model: read(&m)?,
                    params: vec![],
                    params_file: (!params_missing).then(|| p.clone()),
                    model_name: m.display().to_string(),
                    params_name: p.display().to_string(),
                    params_missing,
                })
            }
            None => match self {
                ModelSource::Buffers { model, params } => Ok(ModelBytes {
                    model: model.clone(),
                    params: params.clone(),
                    params_file: None,
                    model_name: "<model buffer>".into(),
                    params_name: "<params buffer>".into(),
                    params_missing: false,
                }),
                _ => unreachable!("paths() is None only for buffers"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_and_file_resolution_skips_info_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("inference.pdmodel"), b"m").unwrap();
        std::fs::write(d.path().join("inference.pdiparams.info"), b"i").unwrap();
        let b = ModelSource::Dir(d.path().into()).load().unwrap();
        assert!(b.params_missing && b.params_name.ends_with("inference.pdiparams"));
        std::fs::write(d.path().join("inference.pdiparams"), b"p").unwrap();
        let (m, p) = ModelSource::Dir(d.path().into()).paths().unwrap().unwrap();
        assert!(m.ends_with("inference.pdmodel") && p.ends_with("inference.pdiparams"));
        let (_, p) = ModelSource::from_path(d.path().join("inference.pdmodel"))
            .paths()
            .unwrap()
            .unwrap();
        assert!(p.ends_with("inference.pdiparams"));
        assert!(ModelSource::Dir(d.path().join("nope")).paths().is_err());
    }
}
