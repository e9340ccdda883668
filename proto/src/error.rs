//! The format layer's error type.

use std::fmt;

/// Where in a program an op sits: file, block, op index and op type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpLoc {
    /// Model file.
    pub file: String,
    /// Block index.
    pub block: usize,
    /// Op index within the block.
    pub index: usize,
    /// The format's op type (`conv2d`, `reshape2`, ...).
    pub op_type: String,
}

impl fmt::Display for OpLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "op `{}` (block {}, op #{}) in {}",
            self.op_type, self.block, self.index, self.file
        )
    }
}

fn unknown_ops(ops: &[OpLoc]) -> String {
    match ops {
        [one] => format!("unknown op type: {one}"),
        _ => {
            let list: Vec<String> = ops
                .iter()
                .map(|l| format!("`{}` (block {}, op #{})", l.op_type, l.block, l.index))
                .collect();
            let file = ops.first().map(|l| l.file.as_str()).unwrap_or("");
            format!(
                "{} unknown op types in {file}: {}",
                ops.len(),
                list.join(", ")
            )
        }
    }
}

/// Collects the distinct unknown op types of one import, in program order.
#[derive(Default)]
pub(crate) struct Unknown(Vec<OpLoc>);

impl Unknown {
    /// Notes an op whose type the importer does not know.
    pub fn note(&mut self, at: OpLoc) {
        if !self.0.iter().any(|l| l.op_type == at.op_type) {
            self.0.push(at);
        }
    }

    /// True once an unknown op was seen (later conversions may lack their inputs).
    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// The error listing them all, if any.
    pub fn check(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::UnknownOps(self.0))
        }
    }
}

/// Everything that can go wrong reading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// No model could be found where one was asked for.
    #[error("no model at {path}: {reason}")]
    ModelNotFound {
        /// Path given.
        path: String,
        /// What was looked for.
        reason: String,
    },
    /// The model file is none of the formats Kayak reads (decided by content).
    #[error(
        "{file} is not a model file Kayak knows: it looks like {looks_like} ({detail}); \
             the formats are {}",
        crate::format::KNOWN
    )]
    UnknownFormat {
        /// Model file.
        file: String,
        /// What the content looks like.
        looks_like: String,
        /// What is wrong, and where.
        detail: String,
    },
    /// The model file is a known format that this build has no importer for.
    #[error("{file} is {format}, which Kayak cannot import")]
    FormatNotSupported {
        /// Model file.
        file: String,
        /// The format found.
        format: crate::Format,
    },
    /// The model file does not decode as the format its first bytes announce.
    #[error("{file} is not a valid {format} (truncated or corrupt): {source}")]
    Decode {
        /// Model file.
        file: String,
        /// The format it was read as.
        format: &'static str,
        /// Protobuf error.
        #[source]
        source: prost::DecodeError,
    },
    /// A PIR (JSON) program that is not well formed: what is wrong and where.
    #[error("{file} is not a valid PIR program: at {path}: {reason}")]
    Json {
        /// Model file.
        file: String,
        /// JSON path (`$.program.regions[0].blocks[0].ops[12].A[3]`) or line and column.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The params file ended inside a record.
    #[error("{file} is truncated: it ends at byte {offset} inside the record of `{var}`")]
    ParamsTruncated {
        /// Params file.
        file: String,
        /// Variable whose record was being read.
        var: String,
        /// Where the data ran out.
        offset: usize,
    },
    /// The params file has more data than the program's persistable variables.
    #[error("{file} has {bytes} bytes left after the last of {count} parameters: params file does not match the program")]
    ParamsTrailing {
        /// Params file.
        file: String,
        /// Bytes left over.
        bytes: usize,
        /// Parameters read.
        count: usize,
    },
    /// A params record is malformed or disagrees with the program's variable.
    #[error("{file}: parameter `{var}`: {reason}")]
    ParamsMismatch {
        /// Params file.
        file: String,
        /// Variable name.
        var: String,
        /// What disagrees.
        reason: String,
    },
    /// An attribute-like operand (a shape, axes, pads, a bound) that is computed at run
    /// time from graph inputs: the model runs specialized on those inputs' values
    /// ([`crate::import_specialized`]); the predictor does that by itself.
    #[error(
        "{what}, at {at}, is computed at run time from the input(s) {inputs:?}: \
             import it specialized on their values"
    )]
    NeedsInputValues {
        /// The graph inputs the operand depends on (directly, or through ops).
        inputs: Vec<String>,
        /// Which operand of which op.
        what: String,
        /// Where.
        at: OpLoc,
    },
    /// Op types the importer does not know: every distinct one of the program, each at its
    /// first occurrence, in program order (never empty).
    #[error("{}", unknown_ops(.0))]
    UnknownOps(Vec<OpLoc>),
    /// A feature of the format that is not supported yet (control flow, LoD, ...).
    #[error("not supported yet: {what}, at {at}")]
    Unsupported {
        /// What is unsupported.
        what: String,
        /// Where.
        at: OpLoc,
    },
    /// An attribute missing, of the wrong type, or with an absurd value.
    #[error("bad attribute `{attr}` of {at}: {reason}")]
    BadAttribute {
        /// Attribute name.
        attr: String,
        /// What is wrong.
        reason: String,
        /// Where.
        at: OpLoc,
    },
    /// An op reads a variable nothing defines.
    #[error("{at} reads variable `{var}`, which no op or parameter defines")]
    UndefinedVar {
        /// Variable name.
        var: String,
        /// Where.
        at: OpLoc,
    },
    /// The program's structure is wrong (no feed/fetch, a missing variable description).
    #[error("{file}: {reason}")]
    Program {
        /// Model file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Shape or dtype inference failed on an op.
    #[error("{at}: {source}")]
    Ir {
        /// Where.
        at: OpLoc,
        /// The IR's error.
        #[source]
        source: kayak_ir::Error,
    },
}

/// Result with the format layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
