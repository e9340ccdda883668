//! A fixed thread pool that runs `n` tasks of one closure and returns when all are done.
//!
//! Dispatch allocates nothing: the closure is lent to the workers by pointer for the length
//! of [`ThreadPool::run`], tasks are handed out by an atomic counter, in shrinking runs
//! (guided self-scheduling: a share of what is left). Between dispatches a
//! worker first spins for a bounded time ([`SPIN`]) on an atomic generation counter — the
//! next op of a run usually comes within microseconds, and a condition-variable wake-up
//! costs several — then sleeps on a condition variable, so no thread spins once a run is
//! over. The caller waits for the workers the same way. The job is published by the
//! generation counter and finished work reported by an atomic count; the mutex is taken
//! only to go to sleep or to wake a sleeper, and wake-ups (system calls) happen only for
//! threads that are asleep. One dispatch runs at a time: a dispatch from inside a task,
//! or from another thread meanwhile, runs its tasks on its own thread. Dropping the pool
//! joins the workers. In inline mode
//! ([`ThreadPool::set_inline`]) a dispatch runs all its tasks on the caller, cut exactly as
//! for the pool's threads.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a worker (or the caller, waiting for workers) spins before it sleeps.
pub const SPIN: Duration = Duration::from_micros(50);
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A borrowed task closure (task, thread index) with its lifetime erased (see the SAFETY
/// note in `run_indexed`).
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize, usize) + Sync),
    tasks: usize,
    threads: usize,
}

// SAFETY: `Job` is only a pointer to a `Sync` closure; `run` keeps the closure alive until
// every worker has reported back, so sending the pointer to the workers is sound.
#[allow(unsafe_code)]
unsafe impl Send for Job {}

/// A value alone on its cache line (the caller writes one, the workers another).
#[repr(align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

struct Inner {
    /// Taken only to go to sleep, to wake a sleeper, or to shut down: the job itself
    /// travels through the atomics below.
    state: Mutex<()>,
    wake: Condvar,
    done: Condvar,
    /// The dispatch count; a new value publishes `job`, `next` and `active`.
    generation: Line<AtomicU64>,
    /// The current job: written by the caller only while no worker runs one (before it
    /// publishes a generation), read by the workers after they see that generation.
    job: std::cell::UnsafeCell<Option<Job>>,
    next: Line<AtomicUsize>,
    /// Workers that have not finished the current generation.
    active: Line<AtomicUsize>,
    panicked: AtomicBool,
    /// Workers asleep on `wake` (a dispatch wakes them only if there are any: a worker
    /// still spinning sees the generation change by itself, and a wake-up is a system call).
    sleepers: AtomicUsize,
    /// The caller is asleep on `done` (likewise).
    caller_waiting: AtomicBool,
    shutdown: AtomicBool,
    /// A dispatch is under way (a second one, from a task or another thread, runs inline).
    busy: AtomicBool,
}

// SAFETY: `job` is written only by the thread that holds `busy` for a dispatch, before it
// publishes the dispatch's generation (release), and read by workers only after they have
// seen that generation (acquire) and before they decrement `active`, which the writer
// waits for before its next write.
#[allow(unsafe_code)]
unsafe impl Sync for Inner {}

/// `threads - 1` worker threads; the calling thread is the last worker.
pub struct ThreadPool {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
    /// Names this pool's threads (`kayak-w<id>-<k>`).
    id: usize,
    /// Dispatches run all their tasks on the caller ([`ThreadPool::set_inline`]).
    inline: AtomicBool,
}

static POOLS: AtomicUsize = AtomicUsize::new(0);

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("id", &self.id)
            .field("threads", &self.threads)
            .finish()
    }
}

impl ThreadPool {
    /// A pool that runs tasks on `threads` threads in all (the caller included): it starts
    /// `threads - 1` workers. `threads` is at least 1.
    pub fn new(threads: usize) -> ThreadPool {
        let threads = threads.max(1);
        let inner = Arc::new(Inner {
            state: Mutex::new(()),
            wake: Condvar::new(),
            done: Condvar::new(),
            generation: Line(AtomicU64::new(0)),
            job: std::cell::UnsafeCell::new(None),
            next: Line(AtomicUsize::new(0)),
            active: Line(AtomicUsize::new(0)),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            caller_waiting: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            busy: AtomicBool::new(false),
        });
        let id = POOLS.fetch_add(1, Ordering::Relaxed) % 10_000;
        let workers = (1..threads)
            .map(|i| {
                let inner = inner.clone();
                std::thread::Builder::new()
                    .name(format!("kayak-w{id}-{i}"))
                    .spawn(move || worker(&inner, i))
                    .expect("spawning a kernel worker thread")
            })
            .collect();
        ThreadPool {
            inner,
            workers,
            threads,
            id,
            inline: AtomicBool::new(false),
        }
    }

    /// While on, every dispatch runs all its tasks on the calling thread (thread index 0),
    /// in order. [`ThreadPool::threads`] still reports the pool's size, so kernels cut
    /// their work exactly as for a parallel run and produce the same bits; only where the
    /// tasks run changes. The executor turns it on for the steps that measured faster
    /// that way (small ops, or a machine whose cores are far apart).
    pub fn set_inline(&self, on: bool) {
        self.inline.store(on, Ordering::Relaxed);
    }

    /// Threads a dispatch runs on (the caller included).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(0) .. f(tasks - 1)`, spread over the pool, and returns when all have run.
    /// With one task, or no workers, everything runs on the calling thread.
    ///
    /// # Panics
    /// If a task panics on a worker, the panic is reported here once all tasks are done.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        self.run_indexed(tasks, &|t, _| f(t));
    }

    /// As [`ThreadPool::run`], with the index of the thread running each task (0 for the
    /// caller, `1..threads` for the workers): tasks handed out one at a time, as threads
    /// come free, can still use per-thread scratch (slot `thread`), where a static split
    /// into one task per thread would leave every thread waiting for the slowest.
    ///
    /// # Panics
    /// As [`ThreadPool::run`].
    pub fn run_indexed(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        if tasks == 0 {
            return;
        }
        if self.workers.is_empty() || tasks == 1 || self.inline.load(Ordering::Relaxed) {
            (0..tasks).for_each(|t| f(t, 0));
            return;
        }
        let inner = &*self.inner;
        if inner
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // A dispatch from inside a task, or from another thread at the same time.
            (0..tasks).for_each(|t| f(t, 0));
            return;
        }
        type Task<'a> = dyn Fn(usize, usize) + Sync + 'a;
        // SAFETY: the pointer's lifetime is erased so that workers can hold it; this
        // function does not return before every worker has decremented `active` for this
        // generation, after which no worker touches the job again.
        #[allow(unsafe_code)]
        let f_static: *const Task<'static> =
            unsafe { std::mem::transmute::<*const Task<'_>, *const Task<'static>>(f as *const _) };
        let workers = self.workers.len();
        // SAFETY: this thread holds `busy`, and every worker has finished the previous
        // generation (`active` reached 0 before the previous dispatch returned), so no one
        // reads `job` until the generation below is published.
        #[allow(unsafe_code)]
        unsafe {
            *inner.job.get() = Some(Job {
                f: f_static,
                tasks,
                threads: self.threads,
            })
        };
        inner.next.store(0, Ordering::Relaxed);
        inner.panicked.store(false, Ordering::Relaxed);
        inner.active.store(workers, Ordering::Relaxed);
        // Publishes the job. A worker either sees it while spinning, or counted itself in
        // `sleepers` before it checked the generation under the lock (both sequentially
        // consistent: one of the two sides sees the other).
        inner.generation.fetch_add(1, Ordering::SeqCst);
        if inner.sleepers.load(Ordering::SeqCst) > 0 {
            let _s = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            inner.wake.notify_all();
        }
        let threads = self.threads;
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while let Some(r) = claim(&inner.next, tasks, threads) {
                r.for_each(|t| f(t, 0));
            }
        }));
        let t0 = Instant::now();
        while inner.active.load(Ordering::Acquire) > 0 && t0.elapsed() < SPIN {
            std::hint::spin_loop();
        }
        if inner.active.load(Ordering::Acquire) > 0 {
            let mut s = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            inner.caller_waiting.store(true, Ordering::SeqCst);
            while inner.active.load(Ordering::SeqCst) > 0 {
                s = inner.done.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            inner.caller_waiting.store(false, Ordering::Relaxed);
        }
        let panicked = inner.panicked.load(Ordering::Acquire);
        inner.busy.store(false, Ordering::Release);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!panicked, "a kernel task panicked on a worker thread");
    }
}

/// The next tasks for a thread of `threads` (guided self-scheduling): a share of what is
/// left, at least one, so the first claims are long contiguous runs — a thread then
/// works on neighbouring data, and the counter's cache line moves between cores a few
/// times per dispatch instead of once per task — and the last claims single tasks that
/// even out the finish.
fn claim(next: &AtomicUsize, tasks: usize, threads: usize) -> Option<std::ops::Range<usize>> {
    let mut cur = next.load(Ordering::Relaxed);
    loop {
        if cur >= tasks {
            return None;
        }
        let n = ((tasks - cur) / (2 * threads)).max(1);
        match next.compare_exchange_weak(cur, cur + n, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(cur..cur + n),
            Err(now) => cur = now,
        }
    }
}

/// Worker `index` (1..threads) of a pool.
fn worker(inner: &Inner, index: usize) {
    let mut seen = 0u64;
    loop {
        // Spin a little for the next dispatch before sleeping.
        let t0 = Instant::now();
        while inner.generation.load(Ordering::Acquire) == seen && t0.elapsed() < SPIN {
            std::hint::spin_loop();
        }
        if inner.generation.load(Ordering::Acquire) == seen {
            let mut s = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            inner.sleepers.fetch_add(1, Ordering::SeqCst);
            while inner.generation.load(Ordering::SeqCst) == seen
                && !inner.shutdown.load(Ordering::SeqCst)
            {
                s = inner.wake.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            inner.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        if inner.shutdown.load(Ordering::Acquire) {
            return;
        }
        // One generation at a time: the caller waits for every worker before the next.
        seen = inner.generation.load(Ordering::Acquire);
        // SAFETY: the generation just seen published `job` (see `Inner`'s Sync note).
        #[allow(unsafe_code)]
        let job = unsafe { *inner.job.get() };
        let ok = match job {
            Some(job) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: `run` keeps the closure alive until this worker reports back below.
                #[allow(unsafe_code)]
                let f = unsafe { &*job.f };
                while let Some(r) = claim(&inner.next, job.tasks, job.threads) {
                    r.for_each(|t| f(t, index));
                }
            }))
            .is_ok(),
            None => true,
        };
        if !ok {
            inner.panicked.store(true, Ordering::Release);
        }
        // The last worker out wakes a caller that went to sleep (it set `caller_waiting`
        // under the lock before checking `active`: one of the two sides sees the other).
        if inner.active.fetch_sub(1, Ordering::SeqCst) == 1
            && inner.caller_waiting.load(Ordering::SeqCst)
        {
            let _s = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            inner.done.notify_one();
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _s = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            self.inner.shutdown.store(true, Ordering::SeqCst);
        }
        self.inner.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A raw pointer that tasks share to write disjoint parts of one output.
#[derive(Clone, Copy, Debug)]
pub struct SharedMut<T>(pub *mut T);

// SAFETY: used only to let parallel tasks write disjoint index ranges of one buffer; each
// use site states why its ranges are disjoint.
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// Wraps a slice's pointer.
    pub fn new(s: &mut [T]) -> SharedMut<T> {
        SharedMut(s.as_mut_ptr())
    }

    /// `len` elements from `start`.
    ///
    /// # Safety
    /// The range must lie inside the wrapped slice and no other live reference may
    /// overlap it.
    #[allow(unsafe_code)]
    pub unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        // SAFETY: the caller guarantees bounds and exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// Takes the cache lines of the `len` floats at `p` for writing, ahead of a task that
/// overwrites all of them: one store per 64-byte line, back to back. A store to a line
/// another core last held has to fetch it from there first; issued amid a kernel's
/// arithmetic those fetches wait one after another behind the store queue, issued here
/// together they overlap. At 2 threads the outputs a task writes were mostly last held by
/// the other core (the arena reuses memory across ops, which split their work
/// differently). Claiming an item's output lines first took MobileNetV3's depthwise convs
/// at 2 threads from 1.5× their stand-alone time per item to close to it; the model went
/// 1.062 → 1.030 ms (6 alternating runs), and 2.66 → 2.43 ms in a period when the two
/// vCPUs were far apart (a 340 ns cache-line round trip against the usual 80). A
/// `prefetchw` ahead of the stores measured no gain. In the GEMM, whose tiles store their
/// rows together anyway, claiming each task's block first was 2% slower.
///
/// # Safety
/// `p .. p + len` must be valid for writes, and its contents are clobbered: the caller
/// owns it and writes all of it afterwards.
#[allow(unsafe_code)]
pub unsafe fn claim_lines(p: *mut f32, len: usize) {
    if len == 0 {
        return;
    }
    let end = p.wrapping_add(len) as usize;
    // The first float, then the first float of every line that starts inside the range.
    let mut at = p as usize;
    while at < end {
        // SAFETY: `at` is inside the range (the caller's), 4-byte aligned (an f32 in it).
        unsafe { std::ptr::write_volatile(at as *mut f32, 0.0) };
        at = (at & !63) + 64;
    }
}

/// A pool of one thread, for kernels that run another kernel inside one of their own
/// tasks: its dispatches run on the calling thread, touching no shared state, so any
/// number of threads may use it at once.
pub fn serial() -> &'static ThreadPool {
    static SERIAL: std::sync::OnceLock<ThreadPool> = std::sync::OnceLock::new();
    SERIAL.get_or_init(|| ThreadPool::new(1))
}

/// Splits `n` items into at most `parts` contiguous chunks of at least `min` items:
/// returns the chunk count; chunk `i` is [`chunk_range`]`(n, chunks, i)`.
pub fn chunks(n: usize, parts: usize, min: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (n / min.max(1)).clamp(1, parts.max(1))
}

/// The `i`-th of `chunks` near-equal contiguous ranges of `0..n`.
pub fn chunk_range(n: usize, chunks: usize, i: usize) -> std::ops::Range<usize> {
    let base = n / chunks;
    let rem = n % chunks;
    let start = i * base + i.min(rem);
    start..start + base + usize::from(i < rem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_task_runs_once_at_any_thread_count() {
        for threads in 1..=4 {
            let pool = ThreadPool::new(threads);
            for tasks in [0, 1, 2, 3, 17, 100] {
                let hits: Vec<AtomicU64> = (0..tasks).map(|_| AtomicU64::new(0)).collect();
                pool.run(tasks, &|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    /// Inline dispatches run every task once, in order, on the caller as thread 0, and
    /// the pool still reports its size; switched off, tasks reach the workers again.
    #[test]
    fn inline_dispatches_run_on_the_caller_in_order() {
        let pool = ThreadPool::new(3);
        pool.set_inline(true);
        assert_eq!(pool.threads(), 3);
        let me = std::thread::current().id();
        let seen = Mutex::new(Vec::new());
        pool.run_indexed(50, &|t, thread| {
            assert_eq!(thread, 0);
            assert_eq!(std::thread::current().id(), me);
            seen.lock().unwrap().push(t);
        });
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
        pool.set_inline(false);
        let workers = AtomicU64::new(0);
        for _ in 0..200 {
            pool.run_indexed(64, &|_, thread| {
                if thread > 0 {
                    workers.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(20));
            });
        }
        assert!(
            workers.load(Ordering::Relaxed) > 0,
            "no task reached a worker"
        );
    }

    /// Dispatches with pauses around the spin time between them (workers sometimes still
    /// spinning, sometimes asleep, sometimes going to sleep as the dispatch comes) each
    /// run every task exactly once, and the caller that went to sleep waiting for a slow
    /// worker is woken.
    #[test]
    fn dispatches_around_the_spin_time_lose_no_task_and_no_wakeup() {
        // A lost wake-up hangs a dispatch: the rounds run on a thread of their own, and
        // the test fails if they have not finished in a minute (they take well under a
        // second).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            dispatch_rounds();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a dispatch hung: a lost wake-up");
    }

    fn dispatch_rounds() {
        let pool = ThreadPool::new(3);
        let mut seed = 7u64;
        for round in 0..300 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let tasks = 1 + (seed >> 33) as usize % 9;
            let hits: Vec<AtomicU64> = (0..tasks).map(|_| AtomicU64::new(0)).collect();
            let slow = round % 7 == 0;
            pool.run_indexed(tasks, &|t, thread| {
                if slow && thread > 0 {
                    // Longer than the caller spins: it goes to sleep on `done`.
                    std::thread::sleep(SPIN * 3);
                }
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "round {round}"
            );
            let pause = SPIN.mul_f64(((seed >> 20) % 300) as f64 / 100.0);
            std::thread::sleep(pause);
        }
    }

    /// A dispatch from inside a task, or from a second thread while one is under way, runs
    /// its tasks on its own calling thread; every task of both runs once.
    #[test]
    fn nested_and_concurrent_dispatches_run_inline() {
        let pool = Arc::new(ThreadPool::new(2));
        let inner_hits = AtomicU64::new(0);
        pool.run(4, &|_| {
            let me = std::thread::current().id();
            pool.run_indexed(5, &|_, thread| {
                assert_eq!(thread, 0);
                assert_eq!(std::thread::current().id(), me);
                inner_hits.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(inner_hits.load(Ordering::Relaxed), 20);
        let total = Arc::new(AtomicU64::new(0));
        let others: Vec<_> = (0..2)
            .map(|_| {
                let (pool, total) = (pool.clone(), total.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        pool.run(6, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                })
            })
            .collect();
        for h in others {
            h.join().unwrap();
        }
        assert_eq!(total.load(Ordering::Relaxed), 2 * 200 * 6);
    }

    #[test]
    fn indexed_tasks_never_share_a_thread_index_while_running() {
        use std::sync::atomic::AtomicBool;
        for threads in 1..=4 {
            let pool = ThreadPool::new(threads);
            let busy: Vec<AtomicBool> = (0..threads).map(|_| AtomicBool::new(false)).collect();
            let hits: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
            let seen: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
            pool.run_indexed(64, &|t, thread| {
                assert!(thread < threads, "thread index {thread} of {threads}");
                assert!(
                    !busy[thread].swap(true, Ordering::SeqCst),
                    "two running tasks hold thread index {thread}"
                );
                std::thread::sleep(std::time::Duration::from_micros(200));
                hits[t].fetch_add(1, Ordering::Relaxed);
                seen[thread].fetch_add(1, Ordering::Relaxed);
                busy[thread].store(false, Ordering::SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            // With tasks that take a while, every thread gets some.
            assert!(
                seen.iter().all(|s| s.load(Ordering::Relaxed) > 0),
                "{threads} threads: {seen:?}"
            );
        }
    }

    #[test]
    fn disjoint_writes_through_shared_mut() {
        let pool = ThreadPool::new(3);
        let mut out = vec![0usize; 1000];
        let p = SharedMut::new(&mut out);
        let n = chunks(1000, 3, 1);
        pool.run(n, &|i| {
            let r = chunk_range(1000, n, i);
            // SAFETY: chunk ranges are disjoint and inside `out`.
            #[allow(unsafe_code)]
            let s = unsafe { p.slice(r.start, r.len()) };
            for (k, v) in s.iter_mut().enumerate() {
                *v = r.start + k;
            }
        });
        assert!(out.iter().enumerate().all(|(i, &v)| i == v));
    }

    #[test]
    fn a_panicking_task_is_reported_and_the_pool_survives() {
        let pool = ThreadPool::new(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(8, &|t| assert!(t != 5, "task 5 fails"));
        }));
        assert!(r.is_err());
        let count = AtomicU64::new(0);
        pool.run(8, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn workers_sleep_once_the_spin_is_over() {
        let pool = ThreadPool::new(3);
        let count = AtomicU64::new(0);
        pool.run(64, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        std::thread::sleep(SPIN * 400);
        // Every worker thread of this pool is asleep (state S), none spinning (R). (Other
        // tests' pools run alongside: only this pool's threads are looked at.)
        let mine = format!("kayak-w{}-", pool.id);
        let mut workers = 0;
        for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if !comm.starts_with(&mine) {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // The state is the first field after the parenthesized name.
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            if state == Some("S") {
                workers += 1;
            } else {
                panic!("worker {comm:?} is {state:?} after the spin window");
            }
        }
        assert!(workers >= 2, "found {workers} sleeping workers");
        // The next dispatch wakes them: every thread takes some of the (slow) tasks.
        let seen: Vec<AtomicU64> = (0..3).map(|_| AtomicU64::new(0)).collect();
        pool.run_indexed(24, &|_, thread| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            seen[thread].fetch_add(1, Ordering::Relaxed);
        });
        assert!(
            seen.iter().all(|s| s.load(Ordering::Relaxed) > 0),
            "sleeping workers were not woken: {seen:?}"
        );
        drop(pool);
    }

    #[test]
    fn chunk_ranges_cover_exactly() {
        for n in [1, 7, 64, 1001] {
            for parts in 1..5 {
                let c = chunks(n, parts, 3);
                let mut next = 0;
                for i in 0..c {
                    let r = chunk_range(n, c, i);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}
