//! The device interface the GPU executor runs on: memory, copies, kernels compiled from
//! CUDA C source, and GEMM.
//!
//! Two implementations: [`crate::emulator::Emulator`] runs the same kernel source on the
//! CPU (compiled by the system C++ compiler with a prelude that defines CUDA's thread
//! indices, each launch looping over its blocks and threads), so every kernel and the
//! executor above it are tested on machines without a GPU; `CudaDevice` (feature `cuda`)
//! compiles with NVRTC and runs on an NVIDIA GPU, GEMMs through cuBLAS.
//!
//! Kernels are described as [`KernelSpec`]s — a name, typed parameters and a body — rather
//! than free text, so each backend renders the signature it needs and every launch is
//! checked against it ([`check_args`]) before anything runs.

use crate::GpuError;

/// A device address (CUDA's `CUdeviceptr`; the emulator's host address).
pub type DevPtr = u64;

/// A kernel parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    /// `float*` (written).
    Out,
    /// `const float*`.
    In,
    /// `const int*` (index tables).
    Idx,
    /// `int`.
    I32,
    /// `float`.
    F32,
}

impl Param {
    fn c_type(self) -> &'static str {
        match self {
            Param::Out => "float* __restrict__",
            Param::In => "const float* __restrict__",
            Param::Idx => "const int* __restrict__",
            Param::I32 => "int",
            Param::F32 => "float",
        }
    }
}

/// A kernel argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    /// A device address (for [`Param::Out`], [`Param::In`] and [`Param::Idx`]).
    Ptr(DevPtr),
    /// An `int`.
    I32(i32),
    /// A `float`.
    F32(f32),
}

/// One kernel: `extern "C" __global__ void name(p0, p1, ...) { body }`; the body names its
/// parameters `p0`, `p1`, … and uses CUDA's `blockIdx`, `blockDim`, `threadIdx` and
/// `gridDim` (no shared memory, no synchronization between threads).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    /// The kernel's name (a C identifier, unique in its module).
    pub name: String,
    /// Its parameters in order.
    pub params: Vec<Param>,
    /// The statements of its body.
    pub body: String,
}

impl KernelSpec {
    /// The kernel's CUDA C signature.
    pub fn signature(&self) -> String {
        let ps: Vec<String> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{} p{i}", p.c_type()))
            .collect();
        format!(
            "extern \"C\" __global__ void {}({})",
            self.name,
            ps.join(", ")
        )
    }
}

/// A module: device helper functions and kernels, compiled together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Source {
    /// `__device__` functions the kernels call.
    pub helpers: String,
    /// The kernels.
    pub kernels: Vec<KernelSpec>,
}

impl Source {
    /// The module as CUDA C (what NVRTC compiles).
    pub fn cuda(&self) -> String {
        let mut s = String::new();
        s.push_str(&self.helpers);
        s.push('\n');
        for k in &self.kernels {
            s.push_str(&k.signature());
            s.push_str(" {\n");
            s.push_str(&k.body);
            s.push_str("\n}\n");
        }
        s
    }

    /// The index of kernel `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.kernels.iter().position(|k| k.name == name)
    }
}

/// Checks `args` against kernel `k`'s parameters: their number, and pointers only where
/// the kernel takes pointers.
///
/// # Errors
/// [`GpuError::Launch`] naming the kernel and the first mismatch.
pub fn check_args(k: &KernelSpec, args: &[Arg]) -> Result<(), GpuError> {
    if args.len() != k.params.len() {
        return Err(GpuError::Launch(format!(
            "kernel {} takes {} arguments, got {}",
            k.name,
            k.params.len(),
            args.len()
        )));
    }
    for (i, (p, a)) in k.params.iter().zip(args).enumerate() {
        let ok = matches!(
            (p, a),
            (Param::Out | Param::In | Param::Idx, Arg::Ptr(_))
                | (Param::I32, Arg::I32(_))
                | (Param::F32, Arg::F32(_))
        );
        if !ok {
            return Err(GpuError::Launch(format!(
                "kernel {} argument {i}: {a:?} for a {p:?} parameter",
                k.name
            )));
        }
    }
    Ok(())
}

/// Kernel `index` of `source` and its arguments packed for a launch, after checking them
/// against its parameters.
///
/// # Errors
/// [`GpuError::Launch`]: no such kernel, or mismatched arguments.
pub(crate) fn pack<'a>(
    source: &'a Source,
    index: usize,
    args: &[Arg],
) -> Result<(&'a KernelSpec, Vec<u64>), GpuError> {
    let k = source
        .kernels
        .get(index)
        .ok_or_else(|| GpuError::Launch(format!("no kernel {index} in the module")))?;
    check_args(k, args)?;
    Ok((k, arg_slots(args)))
}

/// One pointer per slot, as `cuLaunchKernel`'s `kernelParams` (valid while `slots` lives
/// and is not moved).
pub(crate) fn slot_pointers(slots: &mut [u64]) -> Vec<*mut std::ffi::c_void> {
    slots
        .iter_mut()
        .map(|s| s as *mut u64 as *mut std::ffi::c_void)
        .collect()
}

/// Each argument's value in an 8-byte slot, as `cuLaunchKernel` reads them (through one
/// pointer per parameter, `sizeof` the parameter's type from each).
pub(crate) fn arg_slots(args: &[Arg]) -> Vec<u64> {
    args.iter()
        .map(|a| match *a {
            Arg::Ptr(p) => p,
            Arg::I32(v) => v as u32 as u64,
            Arg::F32(v) => v.to_bits() as u64,
        })
        .collect()
}

/// A launch's grid and block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchDims {
    /// Blocks per grid (x, y, z).
    pub grid: [u32; 3],
    /// Threads per block (x, y, z).
    pub block: [u32; 3],
}

impl LaunchDims {
    /// One thread per element of `n`, in blocks of 256 along x.
    pub fn linear(n: usize) -> LaunchDims {
        let block = 256u32;
        LaunchDims {
            grid: [(n.div_ceil(block as usize)).max(1) as u32, 1, 1],
            block: [block, 1, 1],
        }
    }
}

/// `C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]` for `b < batch`, row-major: `A` is
/// `m × k` (`k × m` stored, with `trans_a`), `B` `k × n` (`n × k` with `trans_b`), `C`
/// `m × n`; `lda`, `ldb`, `ldc` are the stored row strides, `stride_*` the elements between
/// batch items (0 to reuse one matrix for every item).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// `A` stored transposed.
    pub trans_a: bool,
    /// `B` stored transposed.
    pub trans_b: bool,
    /// `A`'s address.
    pub a: DevPtr,
    /// `A`'s row stride.
    pub lda: usize,
    /// `B`'s address.
    pub b: DevPtr,
    /// `B`'s row stride.
    pub ldb: usize,
    /// `C`'s address.
    pub c: DevPtr,
    /// `C`'s row stride.
    pub ldc: usize,
    /// Multiplier of the product.
    pub alpha: f32,
    /// Multiplier of `C`'s old value.
    pub beta: f32,
    /// Items.
    pub batch: usize,
    /// Elements between `A`'s items.
    pub stride_a: usize,
    /// Elements between `B`'s items.
    pub stride_b: usize,
    /// Elements between `C`'s items.
    pub stride_c: usize,
}

/// A compiled module: its kernels, launched by index through a [`Device`] handle of the
/// device that compiled it (any of its streams).
pub trait Module: Send + Sync {
    /// What it was compiled from.
    fn source(&self) -> &Source;
    /// The concrete module, for the device that launches it.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A device handle: memory, copies, modules, GEMM. Work through one handle is ordered (its
/// own stream); [`Device::new_stream`] makes another handle on the same device and memory
/// whose work runs independently. [`Device::download`] returns once the data is on the
/// host.
pub trait Device: Send + Sync {
    /// What it is (e.g. `NVIDIA H100 80GB HBM3`, or `CPU emulator (g++)`).
    fn name(&self) -> String;
    /// Allocates `bytes` (aligned to 256).
    ///
    /// # Errors
    /// Out of device memory.
    fn alloc(&self, bytes: usize) -> Result<DevPtr, GpuError>;
    /// Frees an allocation of [`Device::alloc`].
    fn free(&self, ptr: DevPtr);
    /// Copies `src` to `dst`.
    ///
    /// # Errors
    /// The copy failing (the emulator: a range outside every allocation).
    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), GpuError>;
    /// Copies from `src` into `dst`, waiting for the work before it.
    ///
    /// # Errors
    /// As [`Device::upload`].
    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), GpuError>;
    /// Compiles a module.
    ///
    /// # Errors
    /// [`GpuError::Compile`] with the compiler's log.
    fn compile(&self, source: &Source) -> Result<Box<dyn Module>, GpuError>;
    /// Launches kernel `index` of `module` (compiled by this device, through any handle)
    /// on this handle's stream, its arguments checked against the kernel's parameters.
    ///
    /// # Errors
    /// A module of another device, mismatched arguments, or the launch failing.
    fn launch(
        &self,
        module: &dyn Module,
        index: usize,
        dims: LaunchDims,
        args: &[Arg],
    ) -> Result<(), GpuError>;
    /// Another handle on the same device and memory with a stream of its own.
    ///
    /// # Errors
    /// The driver failing to make a stream.
    fn new_stream(&self) -> Result<std::sync::Arc<dyn Device>, GpuError>;
    /// Runs a GEMM.
    ///
    /// # Errors
    /// The library call failing.
    fn gemm(&self, g: &Gemm) -> Result<(), GpuError>;
    /// Waits for all work queued so far.
    ///
    /// # Errors
    /// An earlier asynchronous failure.
    fn synchronize(&self) -> Result<(), GpuError>;
}

/// FNV-1a, 64 bits: names compiled modules by their text.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_render_and_arguments_are_checked() {
        let k = KernelSpec {
            name: "axpy".into(),
            params: vec![Param::Out, Param::In, Param::F32, Param::I32],
            body: String::new(),
        };
        assert_eq!(
            k.signature(),
            "extern \"C\" __global__ void axpy(float* __restrict__ p0, const float* __restrict__ p1, float p2, int p3)"
        );
        let good = [Arg::Ptr(16), Arg::Ptr(32), Arg::F32(2.0), Arg::I32(4)];
        assert!(check_args(&k, &good).is_ok());
        assert!(check_args(&k, &good[..3]).is_err());
        let swapped = [Arg::Ptr(16), Arg::Ptr(32), Arg::I32(4), Arg::F32(2.0)];
        let e = check_args(&k, &swapped).unwrap_err().to_string();
        assert!(e.contains("axpy argument 2"), "{e}");
        assert_eq!(
            arg_slots(&[Arg::I32(-1), Arg::F32(1.0)]),
            [0xffff_ffff, 0x3f80_0000]
        );
    }
}
