//! The run arena's memory: one zeroed, 64-byte aligned region that grows (never shrinks)
//! to the largest plan a [`crate::RunState`] has run.
//!
//! On Linux the region is its own anonymous mapping rather than a heap block, and from
//! 1 to 4 MiB it is 2 MiB-aligned and asked for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)` before the first touch; the kernel honours it where THP is
//! `always` or `madvise`, else the pages stay 4 KiB). Its pages are then touched in address
//! order. Where the memory comes from measurably changes run time: with the arena in a
//! reused heap block (physical pages in whatever order earlier allocations left them),
//! MobileNetV3's 72-channel 56×56 depthwise conv took 64–74 µs per run; in huge pages
//! 39–40 µs, the same as in a stand-alone benchmark, in every run. The likely cause is
//! address translation: its 16 input and 16 output channel streams each sit in their own
//! 4 KiB pages, and Zen's TLBs merge four physically consecutive pages into one entry.
//! Elsewhere, or if the mapping fails, the arena is a `Vec` of 64-byte blocks.

/// 64-byte aligned, 64-byte sized chunk: the fallback arena is a `Vec` of these.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

/// A zeroed region of `len` bytes, 64-byte aligned.
pub(crate) struct Arena {
    ptr: *mut u8,
    len: usize,
    /// Where the memory lives.
    kind: Kind,
}

enum Kind {
    /// Nothing allocated (`len` is 0).
    Empty,
    /// An anonymous mapping: its start and length (the region lies inside it).
    #[cfg(target_os = "linux")]
    Map(*mut u8, usize),
    /// A heap block (held only to be freed with the arena).
    Heap(#[allow(dead_code)] Vec<Block>),
}

// SAFETY: an `Arena` owns its memory exclusively (as a `Vec` does); the raw pointers are
// never shared with another value, and `&Arena` gives no access to the bytes.
#[allow(unsafe_code)]
unsafe impl Send for Arena {}
// SAFETY: as above; shared references only read `len`.
#[allow(unsafe_code)]
unsafe impl Sync for Arena {}

/// Regions from this size up are asked for transparent huge pages...
const HUGE_FROM: usize = 1 << 20;
/// ... up to this size. A huge page's first touch may wait for the kernel to compact
/// memory (with THP `defrag` at `madvise`, the default): PP-OCR det's 29 MB arena took its
/// first run from 84–89 ms to 72–148 ms (4 runs), where MobileNetV3's and PP-OCR rec's
/// arenas need one huge page each. Larger arenas stay in small pages, touched in order.
const HUGE_UPTO: usize = 4 << 20;
/// A transparent huge page on x86-64 and (4 KiB-page) arm64 Linux.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

impl Arena {
    /// No memory.
    pub(crate) fn new() -> Arena {
        Arena {
            ptr: std::ptr::NonNull::<Block>::dangling().as_ptr().cast(),
            len: 0,
            kind: Kind::Empty,
        }
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first byte (64-byte aligned; dangling when empty).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    /// Whether the memory is a mapping of its own (false: a heap block, or nothing).
    #[cfg(test)]
    fn mapped(&self) -> bool {
        #[cfg(target_os = "linux")]
        if let Kind::Map(..) = self.kind {
            return true;
        }
        false
    }

    /// Makes the region at least `bytes` long (rounded up to 64), keeping its contents;
    /// new bytes are zero.
    pub(crate) fn grow(&mut self, bytes: usize) {
        let bytes = bytes.next_multiple_of(64);
        if bytes <= self.len {
            return;
        }
        let mut next = Arena::fresh(bytes);
        // SAFETY: both regions are valid for their `len` bytes and distinct allocations;
        // the old one is the shorter.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr, next.ptr, self.len)
        };
        std::mem::swap(self, &mut next);
    }

    /// A zeroed region of `bytes` (a multiple of 64, not 0).
    fn fresh(bytes: usize) -> Arena {
        #[cfg(target_os = "linux")]
        if let Some(a) = Arena::map(bytes) {
            return a;
        }
        let mut v = vec![Block([0; 64]); bytes / 64];
        Arena {
            ptr: v.as_mut_ptr().cast(),
            len: bytes,
            kind: Kind::Heap(v),
        }
    }

    /// An anonymous mapping for `bytes`, huge-page aligned and advised from
    /// [`HUGE_FROM`] up, its pages touched in address order; `None` if `mmap` fails.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn map(bytes: usize) -> Option<Arena> {
        let huge = (HUGE_FROM..=HUGE_UPTO).contains(&bytes);
        let span = if huge {
            bytes.next_multiple_of(HUGE_PAGE)
        } else {
            bytes
        };
        // A huge page of slack to align the start.
        let map_len = if huge { span + HUGE_PAGE } else { span };
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let base = base.cast::<u8>();
        let ptr = if huge {
            // SAFETY: the aligned start is less than a huge page past `base`, and `span`
            // bytes from it stay inside the mapping (`map_len = span + HUGE_PAGE`).
            unsafe { base.add(base.align_offset(HUGE_PAGE)) }
        } else {
            base
        };
        // (Miri does not model huge-page advice.)
        if huge && !cfg!(miri) {
            // SAFETY: `ptr .. ptr + span` lies inside the mapping. Advice only: where
            // transparent huge pages are off it fails or is ignored, and the pages stay
            // small.
            unsafe { libc::madvise(ptr.cast(), span, libc::MADV_HUGEPAGE) };
        }
        // Touch the pages in address order, so that they are faulted in now (not inside
        // a timed run) and, where they stay small, in one sweep. Writing zero keeps the
        // region zeroed.
        for off in (0..bytes).step_by(4096) {
            // SAFETY: inside the region; the mapping is readable and writable.
            unsafe { std::ptr::write_volatile(ptr.add(off), 0) };
        }
        Some(Arena {
            ptr,
            len: bytes,
            kind: Kind::Map(base, map_len),
        })
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.kind, Kind::Empty) {
            #[cfg(target_os = "linux")]
            Kind::Map(base, len) => {
                // SAFETY: the mapping `map` made, unmapped once (the kind is now `Empty`);
                // nothing borrows the arena while it is dropped.
                #[allow(unsafe_code)]
                unsafe {
                    libc::munmap(base.cast(), len)
                };
            }
            Kind::Heap(_) | Kind::Empty => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regions small and large (the huge-page path), grown in steps, against a `Vec`
    /// written the same way: zeroed when new, aligned, every byte writable and read back,
    /// contents kept across growth.
    #[test]
    fn arena_regions_match_a_vec_written_alike() {
        let mut a = Arena::new();
        assert_eq!(a.len(), 0);
        let mut want: Vec<u8> = Vec::new();
        // Under Miri (which checks every access), only the small sizes: the others take
        // minutes there.
        let sizes: &[usize] = if cfg!(miri) {
            &[100, 4096, 70_000]
        } else {
            &[100, 4096, 70_000, 3 << 20, 5 << 20]
        };
        for (step, &bytes) in sizes.iter().enumerate() {
            a.grow(bytes);
            assert_eq!(a.len(), bytes.next_multiple_of(64));
            assert_eq!(a.as_mut_ptr() as usize % 64, 0);
            #[cfg(target_os = "linux")]
            assert!(a.mapped(), "{bytes} bytes: not a mapping of its own");
            want.resize(a.len(), 0);
            // SAFETY: the arena holds `len` bytes.
            #[allow(unsafe_code)]
            let got = unsafe { std::slice::from_raw_parts_mut(a.as_mut_ptr(), a.len()) };
            assert_eq!(got, &want[..], "{bytes} bytes: contents after growth");
            // Write a pattern over everything, to check the next growth keeps it.
            for (i, (g, w)) in got.iter_mut().zip(want.iter_mut()).enumerate() {
                let v = (i * 31 + step * 7) as u8;
                *g = v;
                *w = v;
            }
        }
        // Growing to a size it already holds changes nothing.
        let (p, n) = (a.as_mut_ptr(), a.len());
        a.grow(1000);
        assert_eq!((a.as_mut_ptr(), a.len()), (p, n));
    }

    /// An arena of 1 to 4 MiB sits on a huge-page boundary (where the kernel may back it
    /// with huge pages); smaller and larger ones on a page boundary.
    #[cfg(all(target_os = "linux", not(miri)))]
    #[test]
    fn mid_sized_arenas_start_on_a_huge_page_boundary() {
        for (bytes, align) in [
            (HUGE_FROM, HUGE_PAGE),
            (HUGE_UPTO, HUGE_PAGE),
            (HUGE_FROM - 64, 4096),
            (HUGE_UPTO + 64, 4096),
        ] {
            let mut a = Arena::new();
            a.grow(bytes);
            assert_eq!(a.as_mut_ptr() as usize % align, 0, "{bytes} bytes");
        }
    }
}
