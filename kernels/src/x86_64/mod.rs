//! The x86-64 kernels written with intrinsics, one folder per instruction set. Each
//! implements only what the generic side declares (the kernel signatures and geometry in
//! `gemm::types`, `conv::geom`, `act::portable`) and reaches nothing above that: the
//! dispatch table (`crate::isa`) picks them, and hands a kernel whatever else it needs
//! (another instruction set's kernel, a pass that dispatches) as an argument.

pub(crate) mod avx2;
pub(crate) mod avx512;
