//! The NVIDIA [`Device`] (feature `cuda`): cudarc's driver API on one stream, modules
//! compiled by NVRTC for the device's architecture, GEMMs by cuBLAS.
//!
//! Construct it only through [`CudaDevice::open`], which runs [`crate::probe`] first: cudarc
//! loads the CUDA libraries on first use and panics if one is missing.

use crate::device::{pack, slot_pointers, Arg, DevPtr, Device, Gemm, LaunchDims, Module, Source};
use crate::{DeviceInfo, GpuError};
use cudarc::driver::{result, CudaContext, CudaFunction, CudaModule, CudaStream};
use std::sync::Arc;

/// One NVIDIA GPU, with its own stream and cuBLAS handle.
pub struct CudaDevice {
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: cudarc::cublas::CudaBlas,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("info", &self.info)
            .finish()
    }
}

fn driver(e: cudarc::driver::DriverError) -> GpuError {
    GpuError::Driver(e.to_string())
}

impl CudaDevice {
    /// Opens GPU `id` after probing that the libraries and the device are there.
    ///
    /// # Errors
    /// As [`crate::probe`], or a driver or cuBLAS failure creating the stream.
    pub fn open(id: usize) -> Result<CudaDevice, GpuError> {
        let info = crate::probe(id)?;
        let ctx = CudaContext::new(id).map_err(driver)?;
        let stream = ctx.new_stream().map_err(driver)?;
        let blas = cudarc::cublas::CudaBlas::new(stream.clone())
            .map_err(|e| GpuError::Launch(format!("cuBLAS: {e:?}")))?;
        Ok(CudaDevice {
            info,
            ctx,
            stream,
            blas,
        })
    }

    /// What the probe found.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }
}

struct CudaModuleHandle {
    source: Source,
    functions: Vec<CudaFunction>,
    _module: Arc<CudaModule>,
}

impl Module for CudaModuleHandle {
    fn source(&self) -> &Source {
        &self.source
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl CudaModuleHandle {
    fn launch(
        &self,
        stream: &CudaStream,
        index: usize,
        dims: LaunchDims,
        args: &[Arg],
    ) -> Result<(), GpuError> {
        let (k, mut slots) = pack(&self.source, index, args)?;
        let mut ptrs = slot_pointers(&mut slots);
        #[allow(unsafe_code)]
        // SAFETY: the function belongs to a live module of this context; `ptrs` holds one
        // pointer per parameter of the kernel (checked against its signature), each to an
        // 8-byte slot at least as wide as the parameter, alive until the call returns
        // (cuLaunchKernel copies the parameters before returning).
        unsafe {
            result::launch_kernel(
                self.functions[index].cu_function(),
                (dims.grid[0], dims.grid[1], dims.grid[2]),
                (dims.block[0], dims.block[1], dims.block[2]),
                0,
                stream.cu_stream(),
                &mut ptrs,
            )
        }
        .map_err(|e| GpuError::Launch(format!("{}: {e}", k.name)))
    }
}

impl Device for CudaDevice {
    fn name(&self) -> String {
        self.info.name.clone()
    }

    fn alloc(&self, bytes: usize) -> Result<DevPtr, GpuError> {
        self.ctx.bind_to_thread().map_err(driver)?;
        #[allow(unsafe_code)]
        // SAFETY: the context is bound to this thread; the allocation is owned by the
        // caller and freed by `free`.
        unsafe { result::malloc_sync(bytes.max(1)) }
            .map_err(|e| GpuError::Memory(format!("allocating {bytes} bytes: {e}")))
    }

    fn free(&self, ptr: DevPtr) {
        if self.ctx.bind_to_thread().is_ok() {
            #[allow(unsafe_code)]
            // SAFETY: `ptr` came from `alloc` (the caller's contract) and the stream's work
            // that uses it is finished first.
            unsafe {
                let _ = self.stream.synchronize();
                let _ = result::free_sync(ptr);
            }
        }
    }

    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), GpuError> {
        self.ctx.bind_to_thread().map_err(driver)?;
        #[allow(unsafe_code)]
        // SAFETY: `dst` is inside an allocation of this device (the executor's plan places
        // every value inside its arena). The copy is queued on this handle's stream, so it
        // is ordered after the kernels before it and before those after it; from pageable
        // memory the driver stages `src` before returning, so the slice may go.
        unsafe { result::memcpy_htod_async(dst, src, self.stream.cu_stream()) }
            .map_err(|e| GpuError::Memory(format!("upload of {} bytes: {e}", src.len())))
    }

    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), GpuError> {
        self.ctx.bind_to_thread().map_err(driver)?;
        #[allow(unsafe_code)]
        // SAFETY: as `upload`; the copy is queued after the kernels that write `src`, and the
        // stream is synchronized before `dst` is read.
        unsafe { result::memcpy_dtoh_async(dst, src, self.stream.cu_stream()) }
            .map_err(|e| GpuError::Memory(format!("download of {} bytes: {e}", dst.len())))?;
        self.stream.synchronize().map_err(driver)
    }

    fn compile(&self, source: &Source) -> Result<Box<dyn Module>, GpuError> {
        let (major, minor) = self.info.compute_capability;
        let text = source.cuda();
        let err = |log: String| GpuError::Compile {
            module: format!("{:016x}", crate::device::fnv(text.as_bytes())),
            log,
        };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(
            &text,
            cudarc::nvrtc::CompileOptions {
                options: vec![format!("--gpu-architecture=sm_{major}{minor}")],
                ..Default::default()
            },
        )
        .map_err(|e| err(format!("{e:?}")))?;
        let module = self.ctx.load_module(ptx).map_err(|e| err(e.to_string()))?;
        let functions = source
            .kernels
            .iter()
            .map(|k| {
                module
                    .load_function(&k.name)
                    .map_err(|e| err(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(CudaModuleHandle {
            source: source.clone(),
            functions,
            _module: module,
        }))
    }

    fn launch(
        &self,
        module: &dyn Module,
        index: usize,
        dims: LaunchDims,
        args: &[Arg],
    ) -> Result<(), GpuError> {
        self.ctx.bind_to_thread().map_err(driver)?;
        module
            .as_any()
            .downcast_ref::<CudaModuleHandle>()
            .ok_or_else(|| GpuError::Launch("a module compiled by another device".into()))?
            .launch(&self.stream, index, dims, args)
    }

    fn new_stream(&self) -> Result<Arc<dyn Device>, GpuError> {
        let stream = self.ctx.new_stream().map_err(driver)?;
        let blas = cudarc::cublas::CudaBlas::new(stream.clone())
            .map_err(|e| GpuError::Launch(format!("cuBLAS: {e:?}")))?;
        Ok(Arc::new(CudaDevice {
            info: self.info.clone(),
            ctx: self.ctx.clone(),
            stream,
            blas,
        }))
    }

    fn gemm(&self, g: &Gemm) -> Result<(), GpuError> {
        use cudarc::cublas::sys::cublasOperation_t as Op;
        // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLAS gets B as
        // its first operand and A as its second, each with its own transpose flag.
        let op = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
        let (alpha, beta) = (g.alpha, g.beta);
        #[allow(unsafe_code)]
        // SAFETY: the handle is bound to this device's stream; the operands are device
        // addresses inside the executor's arena or weights, with the shapes and strides
        // the caller gives (as cuBLAS documents for column-major operands).
        unsafe {
            cudarc::cublas::result::sgemm_strided_batched(
                *self.blas.handle(),
                op(g.trans_b),
                op(g.trans_a),
                g.n as i32,
                g.m as i32,
                g.k as i32,
                &alpha,
                g.b as *const f32,
                g.ldb as i32,
                g.stride_b as i64,
                g.a as *const f32,
                g.lda as i32,
                g.stride_a as i64,
                &beta,
                g.c as *mut f32,
                g.ldc as i32,
                g.stride_c as i64,
                g.batch as i32,
            )
        }
        .map_err(|e| GpuError::Launch(format!("cuBLAS sgemm: {e:?}")))
    }

    fn synchronize(&self) -> Result<(), GpuError> {
        self.stream.synchronize().map_err(driver)
    }
}
