//! Fast compute kernels over slices and parameter structs, by architecture
//! (`generic/`, `x86_64/`, ...), chosen once by CPU feature detection.
//!
//! **Status: empty.** Today the CPU backend runs `kayak-ir`'s reference semantics for every
//! op. Kernels arrive with the CPU performance issue, each property-tested against the
//! reference op.
//!
//! Architecture invariant: this crate never sees a graph or an e-graph.
#![warn(missing_docs)]
