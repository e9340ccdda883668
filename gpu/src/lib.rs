//! Kayak's NVIDIA GPU access: finding out, before anything touches CUDA, whether a device
//! can be used — the libraries loaded, the driver initialized, the device there — and
//! saying why not with a typed error; the [`Device`] interface the GPU executor
//! (`kayak-exec-gpu`) runs on, with two implementations: `CudaDevice` (feature `cuda`:
//! NVRTC, the driver API, cuBLAS) and the CPU [`Emulator`], which runs the same CUDA C
//! kernels compiled by the host's C++ compiler, so the whole GPU path is tested without a
//! GPU.
//!
//! cudarc loads the CUDA libraries when first called and panics if one is missing, so
//! [`probe`] checks that each library this backend needs is present (`libcuda`, NVRTC,
//! cuBLAS) before calling into any of them. Without the `cuda` feature nothing is linked
//! or loaded, and [`probe`] answers [`GpuError::NotBuilt`].
//!
//! Architecture invariant: this crate knows devices and CUDA; it never sees a graph
//! (kernels reach it as [`Source`]: typed signatures and CUDA C bodies).
#![warn(missing_docs)]

#[cfg(feature = "cuda")]
pub mod cuda_device;
pub mod device;
pub mod emulator;

#[cfg(feature = "cuda")]
pub use cuda_device::CudaDevice;
pub use device::{Arg, DevPtr, Device, Gemm, KernelSpec, LaunchDims, Module, Param, Source};
pub use emulator::Emulator;

/// Why a GPU cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// This build has no CUDA backend.
    #[error("this build of Kayak has no GPU support: rebuild with `--features cuda`")]
    NotBuilt,
    /// A CUDA library could not be loaded (no driver or toolkit on this machine).
    #[error("the CUDA library {lib} could not be loaded (no NVIDIA driver or CUDA toolkit here?)")]
    LibraryMissing {
        /// Which library: `libcuda` (the driver), `libnvrtc` or `libcublas`.
        lib: &'static str,
    },
    /// The driver refused (cuInit or a device query failed).
    #[error("the CUDA driver failed: {0}")]
    Driver(String),
    /// A module did not compile (NVRTC's or the emulator's compiler's log).
    #[error("GPU module {module} did not compile: {log}")]
    Compile {
        /// The module (its hash).
        module: String,
        /// The compiler's output.
        log: String,
    },
    /// A kernel launch or library call was refused or failed.
    #[error("GPU launch failed: {0}")]
    Launch(String),
    /// Device memory: out of it, or a copy outside an allocation.
    #[error("GPU memory: {0}")]
    Memory(String),
    /// No device with that index.
    #[error("no GPU {requested}: this machine has {available}")]
    NoDevice {
        /// Index asked for.
        requested: usize,
        /// Devices found.
        available: usize,
    },
}

/// A device found by [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its index.
    pub id: usize,
    /// Its name (e.g. `NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Device memory in bytes.
    pub memory_bytes: usize,
}

/// Checks that GPU `id` can be used: the CUDA libraries present, the driver initialized,
/// the device there; returns what it is. Never panics, whatever the machine has.
///
/// # Errors
/// [`GpuError::NotBuilt`] without the `cuda` feature; else a missing library, a driver
/// failure, or no such device.
pub fn probe(id: usize) -> Result<DeviceInfo, GpuError> {
    #[cfg(feature = "cuda")]
    {
        cuda::probe(id)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = id;
        Err(GpuError::NotBuilt)
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::{DeviceInfo, GpuError};
    use cudarc::driver::CudaContext;

    /// A library's name and its presence check.
    type Library = (&'static str, fn() -> bool);

    /// Each library the backend calls.
    fn libraries() -> [Library; 3] {
        #[allow(unsafe_code)]
        fn driver() -> bool {
            // SAFETY: only opens the shared library (dlopen) and closes it; calls nothing
            // in it.
            unsafe { cudarc::driver::sys::is_culib_present() }
        }
        #[allow(unsafe_code)]
        fn nvrtc() -> bool {
            // SAFETY: as `driver`.
            unsafe { cudarc::nvrtc::sys::is_culib_present() }
        }
        #[allow(unsafe_code)]
        fn cublas() -> bool {
            // SAFETY: as `driver`.
            unsafe { cudarc::cublas::sys::is_culib_present() }
        }
        [
            ("libcuda", driver),
            ("libnvrtc", nvrtc),
            ("libcublas", cublas),
        ]
    }

    pub(super) fn probe(id: usize) -> Result<DeviceInfo, GpuError> {
        for (lib, present) in libraries() {
            if !present() {
                return Err(GpuError::LibraryMissing { lib });
            }
        }
        let err = |e: cudarc::driver::DriverError| GpuError::Driver(e.to_string());
        let available = CudaContext::device_count().map_err(err)?.max(0) as usize;
        if id >= available {
            return Err(GpuError::NoDevice {
                requested: id,
                available,
            });
        }
        let ctx = CudaContext::new(id).map_err(err)?;
        Ok(DeviceInfo {
            id,
            name: ctx.name().map_err(err)?,
            compute_capability: ctx.compute_capability().map_err(err)?,
            memory_bytes: ctx.total_mem().map_err(err)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this machine the probe answers with a reason, never a panic: without the
    /// feature, that the build has none; with it, on a machine without the CUDA
    /// libraries, which one is missing (where a GPU is present, its description).
    #[test]
    fn the_probe_answers_with_a_typed_reason() {
        let got = probe(0);
        #[cfg(not(feature = "cuda"))]
        assert_eq!(got, Err(GpuError::NotBuilt));
        #[cfg(feature = "cuda")]
        match got {
            Ok(d) => {
                assert_eq!(d.id, 0);
                assert!(!d.name.is_empty() && d.memory_bytes > 0);
            }
            Err(GpuError::LibraryMissing { lib }) => assert_eq!(lib, "libcuda"),
            Err(GpuError::NoDevice { requested: 0, .. } | GpuError::Driver(_)) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
        // A device index past any machine's.
        #[cfg(feature = "cuda")]
        assert!(probe(1 << 20).is_err());
    }
}
