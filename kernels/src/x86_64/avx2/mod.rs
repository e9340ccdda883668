//! AVX2+FMA kernels: the GEMM's micro-kernels ([`gemm`]), the transcendental activations
//! ([`act`]), the depthwise plane ([`depthwise`]) and a stride-2 deinterleave
//! ([`im2col`]). Every function needing the features is an `unsafe fn`.

pub(crate) mod act;
pub(crate) mod depthwise;
pub(crate) mod gemm;
pub(crate) mod im2col;
