//! The CPU kernels of each op family, one file a family: its binder (`bind`) and its
//! kernel types.

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod data;
pub(crate) mod elementwise;
pub(crate) mod embedding;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod reduce;
