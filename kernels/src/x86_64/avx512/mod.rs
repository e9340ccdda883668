//! AVX-512F kernels: the GEMM's micro-kernels and matrix-vector rows ([`gemm`]), the
//! depthwise plane 16 lanes wide ([`depthwise`]), the blocked depthwise kernel
//! ([`blocked`]), the direct few-tap convolution ([`direct`]), a stride-2 deinterleave
//! ([`im2col`]) and the SE gating ([`se`]). Every function needing the features is an
//! `unsafe fn`.

pub(crate) mod blocked;
pub(crate) mod depthwise;
pub(crate) mod direct;
pub(crate) mod gemm;
pub(crate) mod im2col;
pub(crate) mod se;
