//! A [`Device`] that runs CUDA kernels on the CPU, so the GPU backend's kernels and the
//! executor above them are tested on machines without a GPU.
//!
//! A module's [`Source`] is compiled by the system C++ compiler (`$KAYAK_CXX`, else `g++`)
//! after a prelude that defines what CUDA provides (`blockIdx`, `threadIdx`, `blockDim`,
//! `gridDim` as thread-local globals, so launches from different threads — streams — run at
//! once even when two modules are the same loaded library; `__global__`, `__device__`; `rsqrtf`) and, per kernel, a launcher
//! that unpacks the argument slots exactly as `cuLaunchKernel` reads them and calls the
//! kernel once per thread of every block, in order. Kernels therefore must not rely on
//! threads running together (no shared memory, no `__syncthreads`) — the backend's don't.
//! Compiled libraries are cached by the hash of their text in `$KAYAK_EMULATOR_CACHE` (else
//! a `kayak-gpu-emulator` directory under the system's temporary directory).
//!
//! Memory is host memory; each allocation is recorded, and every copy is checked to lie
//! inside one, so a planner's bad offset is an error here rather than silent corruption.
//! GEMMs run a plain triple loop in f64.

use crate::device::{
    pack, slot_pointers, Arg, DevPtr, Device, Gemm, LaunchDims, Module, Param, Source,
};
use crate::GpuError;
use std::alloc::Layout;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What CUDA defines, for the host compiler.
const PRELUDE: &str = r#"
#include <math.h>
#include <stdint.h>
struct kayak_dim3 { unsigned x, y, z; };
static thread_local kayak_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
"#;

/// The CPU emulator of a CUDA device (one handle; [`Device::new_stream`] makes more that
/// share its memory).
pub struct Emulator {
    cxx: String,
    cache: PathBuf,
    heap: Arc<Heap>,
}

/// The emulated device memory, shared by every handle: live allocations, address →
/// layout; what is still allocated when the last handle goes is freed.
#[derive(Default)]
struct Heap {
    allocs: Mutex<BTreeMap<DevPtr, Layout>>,
}

impl Heap {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<DevPtr, Layout>> {
        self.allocs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        for (ptr, layout) in std::mem::take(&mut *self.lock()) {
            #[allow(unsafe_code)]
            // SAFETY: each entry came from `alloc_zeroed` with its layout and is freed once
            // (the map is emptied here, and no handle is left to use it).
            unsafe {
                std::alloc::dealloc(ptr as *mut u8, layout)
            };
        }
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("cxx", &self.cxx).finish()
    }
}

impl Emulator {
    /// An emulator using `$KAYAK_CXX` (else `g++`).
    ///
    /// # Errors
    /// [`GpuError::Compile`] if the compiler does not run.
    pub fn new() -> Result<Emulator, GpuError> {
        let cxx = std::env::var("KAYAK_CXX").unwrap_or_else(|_| "g++".into());
        let ok = std::process::Command::new(&cxx)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            return Err(GpuError::Compile {
                module: "-".into(),
                log: format!("the C++ compiler `{cxx}` does not run (set KAYAK_CXX)"),
            });
        }
        let cache = std::env::var_os("KAYAK_EMULATOR_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("kayak-gpu-emulator"));
        Ok(Emulator {
            cxx,
            cache,
            heap: Arc::new(Heap::default()),
        })
    }

    /// Checks that `[ptr, ptr + len)` lies inside one allocation.
    fn check_range(&self, ptr: DevPtr, len: usize, what: &str) -> Result<(), GpuError> {
        let allocs = self.heap.lock();
        match allocs.range(..=ptr).next_back() {
            Some((&base, layout)) if ptr + len as u64 <= base + layout.size() as u64 => Ok(()),
            _ => Err(GpuError::Memory(format!(
                "{what} of {len} bytes at {ptr:#x} is outside every allocation"
            ))),
        }
    }

    /// The C++ text of a module: prelude, helpers, kernels, and a launcher per kernel.
    fn host_source(source: &Source) -> String {
        let mut s = String::from(PRELUDE);
        s.push_str(&source.cuda());
        for k in &source.kernels {
            let mut unpack = String::new();
            let mut call = Vec::new();
            for (i, p) in k.params.iter().enumerate() {
                let ty = match p {
                    Param::Out => "float*",
                    Param::In => "const float*",
                    Param::Idx => "const int*",
                    Param::I32 => "int",
                    Param::F32 => "float",
                };
                unpack.push_str(&format!("  {ty} a{i} = *({ty}*)a[{i}];\n"));
                call.push(format!("a{i}"));
            }
            s.push_str(&format!(
                r#"extern "C" void kayak_launch_{name}(const unsigned* g, const unsigned* b, void** a) {{
{unpack}  gridDim = {{g[0], g[1], g[2]}};
  blockDim = {{b[0], b[1], b[2]}};
  for (unsigned bz = 0; bz < g[2]; bz++) for (unsigned by = 0; by < g[1]; by++) for (unsigned bx = 0; bx < g[0]; bx++)
  for (unsigned tz = 0; tz < b[2]; tz++) for (unsigned ty = 0; ty < b[1]; ty++) for (unsigned tx = 0; tx < b[0]; tx++) {{
    blockIdx = {{bx, by, bz}};
    threadIdx = {{tx, ty, tz}};
    {name}({args});
  }}
}}
"#,
                name = k.name,
                args = call.join(", ")
            ));
        }
        s
    }
}

type Launcher = unsafe extern "C" fn(*const u32, *const u32, *const *mut std::ffi::c_void);

struct EmulatedModule {
    source: Source,
    launchers: Vec<Launcher>,
    /// Keeps the library (and so the launchers) loaded.
    _lib: libloading::Library,
}

impl Module for EmulatedModule {
    fn source(&self) -> &Source {
        &self.source
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl EmulatedModule {
    fn launch(&self, index: usize, dims: LaunchDims, args: &[Arg]) -> Result<(), GpuError> {
        let (_, mut slots) = pack(&self.source, index, args)?;
        let ptrs = slot_pointers(&mut slots);
        #[allow(unsafe_code)]
        // SAFETY: the launcher was generated for this kernel's parameter list, which `args`
        // was just checked against; it reads one slot per parameter through `ptrs`, which
        // live until it returns. The kernel's own memory accesses are its code's
        // responsibility (the executor's tests compare every kernel with the reference).
        // The thread indices it sets are thread-local, so concurrent launches (other
        // threads' streams, the same library loaded twice) do not see each other's.
        unsafe {
            (self.launchers[index])(dims.grid.as_ptr(), dims.block.as_ptr(), ptrs.as_ptr());
        }
        Ok(())
    }
}

impl Device for Emulator {
    fn name(&self) -> String {
        format!("CPU emulator ({})", self.cxx)
    }

    fn alloc(&self, bytes: usize) -> Result<DevPtr, GpuError> {
        let layout = Layout::from_size_align(bytes.max(1), 256)
            .map_err(|e| GpuError::Memory(format!("allocation of {bytes} bytes: {e}")))?;
        #[allow(unsafe_code)]
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            return Err(GpuError::Memory(format!(
                "out of memory allocating {bytes} bytes"
            )));
        }
        let addr = p as DevPtr;
        self.heap.lock().insert(addr, layout);
        Ok(addr)
    }

    fn free(&self, ptr: DevPtr) {
        let layout = self.heap.lock().remove(&ptr);
        if let Some(layout) = layout {
            #[allow(unsafe_code)]
            // SAFETY: `ptr` came from `alloc_zeroed` with this layout and was still live
            // (it was in the map, and is removed from it before being freed).
            unsafe {
                std::alloc::dealloc(ptr as *mut u8, layout)
            };
        }
    }

    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), GpuError> {
        self.check_range(dst, src.len(), "upload")?;
        #[allow(unsafe_code)]
        // SAFETY: the destination range lies inside a live allocation (checked above), and
        // a host slice cannot overlap memory this emulator allocated and owns.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len())
        };
        Ok(())
    }

    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), GpuError> {
        self.check_range(src, dst.len(), "download")?;
        #[allow(unsafe_code)]
        // SAFETY: as `upload`, the other way.
        unsafe {
            std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len())
        };
        Ok(())
    }

    fn compile(&self, source: &Source) -> Result<Box<dyn Module>, GpuError> {
        let text = Emulator::host_source(source);
        let hash = crate::device::fnv(text.as_bytes())
            ^ crate::device::fnv(self.cxx.as_bytes()).rotate_left(1);
        let err = |log: String| GpuError::Compile {
            module: format!("{hash:016x}"),
            log,
        };
        std::fs::create_dir_all(&self.cache)
            .map_err(|e| err(format!("cannot create {}: {e}", self.cache.display())))?;
        let lib = self.cache.join(format!("{hash:016x}.so"));
        if !lib.exists() {
            let tmp = tempfile::Builder::new()
                .prefix("module")
                .suffix(".cpp")
                .tempfile_in(&self.cache)
                .map_err(|e| err(format!("cannot write the source: {e}")))?;
            std::fs::write(tmp.path(), &text).map_err(|e| err(e.to_string()))?;
            let out = tempfile::Builder::new()
                .prefix("module")
                .suffix(".so")
                .tempfile_in(&self.cache)
                .map_err(|e| err(e.to_string()))?;
            let o = std::process::Command::new(&self.cxx)
                .args(["-O2", "-shared", "-fPIC", "-w", "-o"])
                .arg(out.path())
                .arg(tmp.path())
                .output()
                .map_err(|e| err(format!("cannot run {}: {e}", self.cxx)))?;
            if !o.status.success() {
                return Err(err(String::from_utf8_lossy(&o.stderr).into_owned()));
            }
            out.persist(&lib).map_err(|e| err(e.to_string()))?;
        }
        #[allow(unsafe_code)]
        // SAFETY: loads a library this emulator compiled from its own text (its
        // initializers only zero the prelude's globals).
        let library = unsafe { libloading::Library::new(&lib) }
            .map_err(|e| err(format!("cannot load {}: {e}", lib.display())))?;
        let mut launchers = Vec::new();
        for k in &source.kernels {
            let sym = format!("kayak_launch_{}", k.name);
            #[allow(unsafe_code)]
            // SAFETY: the symbol was generated with exactly the `Launcher` signature.
            let f: Launcher = unsafe {
                *library
                    .get::<Launcher>(sym.as_bytes())
                    .map_err(|e| err(format!("no {sym}: {e}")))?
            };
            launchers.push(f);
        }
        Ok(Box::new(EmulatedModule {
            source: source.clone(),
            launchers,
            _lib: library,
        }))
    }

    fn launch(
        &self,
        module: &dyn Module,
        index: usize,
        dims: LaunchDims,
        args: &[Arg],
    ) -> Result<(), GpuError> {
        module
            .as_any()
            .downcast_ref::<EmulatedModule>()
            .ok_or_else(|| GpuError::Launch("a module compiled by another device".into()))?
            .launch(index, dims, args)
    }

    fn new_stream(&self) -> Result<Arc<dyn Device>, GpuError> {
        Ok(Arc::new(Emulator {
            cxx: self.cxx.clone(),
            cache: self.cache.clone(),
            heap: self.heap.clone(),
        }))
    }

    fn gemm(&self, g: &Gemm) -> Result<(), GpuError> {
        let (ar, br) = (
            if g.trans_a { g.k } else { g.m },
            if g.trans_b { g.n } else { g.k },
        );
        let (ac, bc) = (
            if g.trans_a { g.m } else { g.k },
            if g.trans_b { g.k } else { g.n },
        );
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        if ac > g.lda || bc > g.ldb || g.n > g.ldc {
            return Err(GpuError::Launch(format!("gemm strides too small: {g:?}")));
        }
        // The last row of each operand need only hold its columns.
        let need = |rows: usize, cols: usize, ld: usize, stride: usize| {
            4 * ((g.batch.max(1) - 1) * stride + rows.saturating_sub(1) * ld + cols)
        };
        self.check_range(g.a, need(ar, ac, g.lda, g.stride_a), "gemm A")?;
        self.check_range(g.b, need(br, bc, g.ldb, g.stride_b), "gemm B")?;
        self.check_range(g.c, need(g.m, g.n, g.ldc, g.stride_c), "gemm C")?;
        // Row by row: C's row i accumulates A[i, p] · B's row p (in f64), so the inner
        // loop runs along contiguous memory when B is not transposed.
        let mut acc = vec![0f64; g.n];
        for item in 0..g.batch {
            for i in 0..g.m {
                acc.iter_mut().for_each(|v| *v = 0.0);
                for p in 0..g.k {
                    let ai = item * g.stride_a
                        + if g.trans_a {
                            p * g.lda + i
                        } else {
                            i * g.lda + p
                        };
                    #[allow(unsafe_code)]
                    // SAFETY: inside A's range, checked above.
                    let a = unsafe { *(g.a as *const f32).add(ai) } as f64;
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let bi = item * g.stride_b
                            + if g.trans_b {
                                j * g.ldb + p
                            } else {
                                p * g.ldb + j
                            };
                        #[allow(unsafe_code)]
                        // SAFETY: inside B's range, checked above.
                        let b = unsafe { *(g.b as *const f32).add(bi) } as f64;
                        *acc += a * b;
                    }
                }
                for (j, acc) in acc.iter().enumerate() {
                    let ci = item * g.stride_c + i * g.ldc + j;
                    #[allow(unsafe_code)]
                    // SAFETY: inside C's range, checked above.
                    unsafe {
                        let c = (g.c as *mut f32).add(ci);
                        let old = if g.beta == 0.0 {
                            0.0
                        } else {
                            g.beta as f64 * *c as f64
                        };
                        *c = (g.alpha as f64 * acc + old) as f32;
                    }
                }
            }
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<(), GpuError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::KernelSpec;

    fn floats(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn back(b: &[u8]) -> Vec<f32> {
        b.chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn a_kernel_runs_once_per_thread_with_cuda_indices() {
        let dev = Emulator::new().unwrap();
        let src = Source {
            helpers: "__device__ float twice(float x) { return 2.0f * x; }".into(),
            kernels: vec![KernelSpec {
                name: "axpy".into(),
                params: vec![Param::Out, Param::In, Param::F32, Param::I32],
                body: "int i = blockIdx.x * blockDim.x + threadIdx.x;\n\
                       if (i < p3) p0[i] = p2 * p1[i] + twice(p0[i]);"
                    .into(),
            }],
        };
        let m = dev.compile(&src).unwrap();
        let n = 1000;
        let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let y: Vec<f32> = (0..n).map(|i| 1.0 - i as f32).collect();
        let (px, py) = (dev.alloc(4 * n).unwrap(), dev.alloc(4 * n).unwrap());
        dev.upload(px, &floats(&x)).unwrap();
        dev.upload(py, &floats(&y)).unwrap();
        let args = [
            Arg::Ptr(py),
            Arg::Ptr(px),
            Arg::F32(3.0),
            Arg::I32(n as i32),
        ];
        dev.launch(&*m, 0, LaunchDims::linear(n), &args).unwrap();
        let mut out = vec![0u8; 4 * n];
        dev.download(py, &mut out).unwrap();
        let got = back(&out);
        for i in 0..n {
            assert_eq!(got[i], 3.0 * x[i] + 2.0 * y[i], "element {i}");
        }
        // Arguments of the wrong kind are refused before anything runs.
        let bad = [Arg::Ptr(py), Arg::Ptr(px), Arg::I32(3), Arg::I32(n as i32)];
        assert!(matches!(
            dev.launch(&*m, 0, LaunchDims::linear(n), &bad),
            Err(GpuError::Launch(_))
        ));
        assert!(dev.launch(&*m, 1, LaunchDims::linear(n), &args).is_err());
        // Another stream shares the memory: it reads what this one wrote.
        let other = dev.new_stream().unwrap();
        let mut again = vec![0u8; 4 * n];
        other.download(py, &mut again).unwrap();
        assert_eq!(again, out);
        other.launch(&*m, 0, LaunchDims::linear(n), &args).unwrap();
        dev.free(px);
        dev.free(py);
    }

    #[test]
    fn two_threads_launch_the_same_library_at_once() {
        // Two modules of one text are one loaded library: their thread indices must not
        // be shared between the threads that launch them.
        let src = Source {
            helpers: String::new(),
            kernels: vec![KernelSpec {
                name: "iota".into(),
                params: vec![Param::Out, Param::I32],
                body: "int i = blockIdx.x * blockDim.x + threadIdx.x;\n\
                       if (i < p1) p0[i] = (float)i;"
                    .into(),
            }],
        };
        let dev = Emulator::new().unwrap();
        let n = 1 << 16;
        std::thread::scope(|s| {
            for _ in 0..2 {
                let stream = dev.new_stream().unwrap();
                let m = stream.compile(&src).unwrap();
                s.spawn(move || {
                    let p = stream.alloc(4 * n).unwrap();
                    for _ in 0..20 {
                        stream.upload(p, &vec![0u8; 4 * n]).unwrap();
                        stream
                            .launch(
                                &*m,
                                0,
                                LaunchDims::linear(n),
                                &[Arg::Ptr(p), Arg::I32(n as i32)],
                            )
                            .unwrap();
                        let mut out = vec![0u8; 4 * n];
                        stream.download(p, &mut out).unwrap();
                        let got = back(&out);
                        assert!(got.iter().enumerate().all(|(i, &v)| v == i as f32));
                    }
                    stream.free(p);
                });
            }
        });
    }

    #[test]
    fn copies_outside_an_allocation_and_bad_source_are_typed_errors() {
        let dev = Emulator::new().unwrap();
        let p = dev.alloc(64).unwrap();
        assert!(dev.upload(p, &[0u8; 64]).is_ok());
        assert!(matches!(
            dev.upload(p + 8, &[0u8; 64]),
            Err(GpuError::Memory(_))
        ));
        let mut buf = [0u8; 4];
        assert!(matches!(
            dev.download(p + 64, &mut buf),
            Err(GpuError::Memory(_))
        ));
        dev.free(p);
        assert!(matches!(dev.upload(p, &[0u8; 4]), Err(GpuError::Memory(_))));
        let src = Source {
            helpers: String::new(),
            kernels: vec![KernelSpec {
                name: "broken".into(),
                params: vec![Param::Out],
                body: "p0[0] = undefined_name;".into(),
            }],
        };
        match dev.compile(&src) {
            Err(GpuError::Compile { log, .. }) => assert!(log.contains("undefined_name"), "{log}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("compiled"),
        }
    }

    #[test]
    fn gemm_matches_a_direct_product_in_every_transpose_and_batch() {
        let dev = Emulator::new().unwrap();
        let (m, n, k, batch) = (3, 5, 4, 2);
        let a: Vec<f32> = (0..batch * m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..batch * k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            // Store A (and B) transposed when asked, so op(A) is the same matrix.
            let at: Vec<f32> = (0..batch)
                .flat_map(|t| {
                    let a = &a;
                    (0..m * k).map(move |e| {
                        if ta {
                            let (p, i) = (e / m, e % m);
                            a[t * m * k + i * k + p]
                        } else {
                            a[t * m * k + e]
                        }
                    })
                })
                .collect();
            let bt: Vec<f32> = (0..batch)
                .flat_map(|t| {
                    let b = &b;
                    (0..k * n).map(move |e| {
                        if tb {
                            let (j, p) = (e / k, e % k);
                            b[t * k * n + p * n + j]
                        } else {
                            b[t * k * n + e]
                        }
                    })
                })
                .collect();
            let (pa, pb, pc) = (
                dev.alloc(4 * at.len()).unwrap(),
                dev.alloc(4 * bt.len()).unwrap(),
                dev.alloc(4 * batch * m * n).unwrap(),
            );
            dev.upload(pa, &floats(&at)).unwrap();
            dev.upload(pb, &floats(&bt)).unwrap();
            dev.gemm(&Gemm {
                m,
                n,
                k,
                trans_a: ta,
                trans_b: tb,
                a: pa,
                lda: if ta { m } else { k },
                b: pb,
                ldb: if tb { k } else { n },
                c: pc,
                ldc: n,
                alpha: 2.0,
                beta: 0.0,
                batch,
                stride_a: m * k,
                stride_b: k * n,
                stride_c: m * n,
            })
            .unwrap();
            let mut out = vec![0u8; 4 * batch * m * n];
            dev.download(pc, &mut out).unwrap();
            let got = back(&out);
            for t in 0..batch {
                for i in 0..m {
                    for j in 0..n {
                        let want: f32 = 2.0
                            * (0..k)
                                .map(|p| a[t * m * k + i * k + p] * b[t * k * n + p * n + j])
                                .sum::<f32>();
                        assert_eq!(got[t * m * n + i * n + j], want, "{ta} {tb} {t} {i} {j}");
                    }
                }
            }
            for p in [pa, pb, pc] {
                dev.free(p);
            }
        }
    }
}
