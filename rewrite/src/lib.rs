//! Kayak's graph optimizer: the e-graph language derived from `kayak-ir`'s op set, rule
//! files, saturation, cost-based extraction and rule verification.
//!
//! **Status: not built yet.** This crate holds no rewrite today; graphs run exactly as
//! imported. The optimizer lands with its own issue (the e-graph optimizer) and the
//! facade's IR-optimization switch is a no-op until then — see `kayak::Config::ir_optim`.
#![warn(missing_docs)]
