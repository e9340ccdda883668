//! Kayak's compute kernels: functions over slices and small parameter structs, chosen by
//! CPU features at run time, that write into buffers the caller owns and allocate nothing
//! (but the packed GEMM's per-thread buffer, allocated once per thread).
//!
//! - [`pool`]: the thread pool kernels split work over (no allocation per dispatch; an
//!   inline mode that runs a dispatch's tasks on the caller, cut the same way;
//!   `claim_lines` for output lines another core last held).
//! - [`gemm`]: f32 matrix products with fused epilogues, AVX-512 / AVX2+FMA (micro-kernels
//!   written with intrinsics, in `x86_64::avx512::gemm` and `x86_64::avx2::gemm`) or
//!   generic; B packed once into strips for constant weights (`pack_b`, `sgemm_packed`);
//!   both operands packed BLIS-style when B's rows alias in the cache.
//! - [`conv`]: 2-D convolution (implicit im2col into a caller-given panel, 1×1 as a plain
//!   product, depthwise direct — with AVX2, `x86_64::avx2::depthwise` accumulates every
//!   tap in registers; `x86_64::avx512::depthwise` does it 16 lanes wide;
//!   `x86_64::avx512::blocked` runs blocks of 16 channels, one pixel per vector, on
//!   AVX-512, and can sum each channel of its output for an SE block (`depthwise_means`)
//!   or take its input already blocked —, 3×3 stride 1 by [`winograd`]) with the same
//!   epilogues; a pointwise conv and the depthwise conv reading its output in one
//!   dispatch (`expand_depthwise_blocked`, its product written in the blocked layout;
//!   `expand_depthwise_chunked`, a chunk of channels per thread). The AVX-512 GEMM tiles
//!   apply piecewise-linear epilogues in registers.
//! - [`act`]: activations (transcendentals vectorized; on AVX2 the FMA forms of
//!   `x86_64::avx2::act`).
//! - [`ops`]: pooling, normalization, softmax, attention, SE blocks, elementwise with
//!   broadcasting, layout moves. Reductions run in 16 lanes (a plain `sum` is one chain
//!   of dependent adds).
//!
//! Layout: the public modules above hold the API and the portable code. The instruction
//! set is detected once (`isa`), and its dispatch table (`isa::Table`) holds the best
//! implementation of every routine written with intrinsics (`x86_64::{avx2, avx512}`) and
//! the tuning that depends on the instruction set; `simd!` compiles portable loops for
//! each instruction set. Dependencies run one way: the types and geometry the kernels
//! share (`gemm::types`, `conv::geom`, `act::portable`, `consts`, [`pool`]) ← the ISA
//! modules ← the table ← the public API.
//!
//! Every kernel is tested against a naive loop here and against `kayak-ir`'s reference ops
//! through the executor's tests.
//!
//! Architecture invariant: this crate never sees a graph or an e-graph.
#![warn(missing_docs)]

/// Calls `$body($args)` through a wrapper compiled for the best instruction set `isa()`
/// found (AVX-512, AVX2+FMA, or portable), so that loops written plainly in `$body` (an
/// `#[inline(always)]` fn) are vectorized for the CPU at hand. `$name(arg: Type, ...)`
/// spells the wrapper's signature, with `-> Type` when `$body` returns a value.
macro_rules! simd {
    ($body:ident($($arg:ident: $ty:ty),*)) => {
        crate::simd!($body($($arg: $ty),*) -> ())
    };
    ($body:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        match crate::isa::isa() {
            crate::isa::Isa::Avx512 => {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn go($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                // SAFETY: `isa()` detected the features.
                #[allow(unsafe_code)]
                unsafe {
                    go($($arg),*)
                }
            }
            crate::isa::Isa::Avx2 => {
                #[target_feature(enable = "avx2,fma")]
                fn go($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                // SAFETY: as above.
                #[allow(unsafe_code)]
                unsafe {
                    go($($arg),*)
                }
            }
            crate::isa::Isa::Generic => $body($($arg),*),
        }
        #[cfg(not(target_arch = "x86_64"))]
        $body($($arg),*)
    }};
}
pub(crate) use simd;

pub mod act;
mod consts;
pub mod conv;
pub mod gemm;
mod isa;
pub mod ops;
pub mod pool;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// Winograd F(2×2, 3×3) convolution for 3×3, stride-1, undilated, ungrouped convs (NCHW):
/// 16 products of `[oc × ic]` by `[ic × tiles]` per chunk of 2×2 output tiles, 2.25×
/// fewer multiplies than the direct conv (its code is in `conv::winograd`).
pub mod winograd {
    pub use crate::conv::winograd::{applies, conv3x3, scratch_len, CHUNK};
}

pub use act::Act;

pub use pool::ThreadPool;
