//! Arena planning: given each buffer's size and the steps it lives through, place every
//! buffer at an offset in one arena so that no two buffers alive at the same step overlap.
//!
//! The placement is greedy by size with best fit (the approach of TFLite's arena planner
//! and ONNX Runtime's memory patterns): the largest buffers are placed first; each goes into
//! the smallest gap, among the buffers already placed that it overlaps in time, that holds
//! it (or on top). Offsets are multiples of [`ALIGN`]. Other orders are tried too — by
//! first use, by lifetime length, by size × lifetime, by last use — then, until the arena
//! reaches the lower bound, up to 256 seeded perturbations (neighbour swaps and shuffles);
//! the smallest arena is kept. A placement costs O(n²) for n buffers (a hundred or so per
//! model), so the search takes about a millisecond at most.

/// Alignment of every buffer in the arena, in bytes.
pub const ALIGN: usize = 64;

/// A buffer's size and the steps (inclusive) during which it must hold its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// First step that writes it.
    pub first: usize,
    /// Last step that reads it.
    pub last: usize,
    /// Size in bytes.
    pub bytes: usize,
}

impl Lifetime {
    fn overlaps(&self, o: &Lifetime) -> bool {
        self.first <= o.last && o.first <= self.last
    }
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Offsets for `buffers` and the arena size they need.
pub fn assign_offsets(buffers: &[Lifetime]) -> (Vec<usize>, usize) {
    let n = buffers.len();
    let len = |b: &Lifetime| b.last - b.first + 1;
    let mut orders: Vec<Vec<usize>> = Vec::new();
    let sorted = |key: &dyn Fn(&Lifetime) -> (u128, usize)| {
        let mut o: Vec<usize> = (0..n).collect();
        o.sort_by_key(|&i| key(&buffers[i]));
        o
    };
    orders.push(sorted(&|b| (u128::MAX - b.bytes as u128, b.first)));
    orders.push(sorted(&|b| (b.first as u128, usize::MAX - b.bytes)));
    orders.push(sorted(&|b| {
        (u128::MAX - len(b) as u128, usize::MAX - b.bytes)
    }));
    orders.push(sorted(&|b| {
        (u128::MAX - (b.bytes as u128) * len(b) as u128, b.first)
    }));
    orders.push(sorted(&|b| {
        (u128::MAX - b.last as u128, usize::MAX - b.bytes)
    }));
    let bound = lower_bound(buffers).div_ceil(ALIGN) * ALIGN;
    let mut best = orders
        .iter()
        .map(|o| place(buffers, o))
        .min_by_key(|(_, total)| *total)
        .expect("at least one order");
    // Seeded perturbations, until the bound is reached: neighbour swaps of the size and
    // first-use orders, and whole shuffles.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..256 {
        if best.1 <= bound {
            break;
        }
        let mut o = orders[round % 2].clone();
        if round % 4 == 3 {
            for i in (1..n).rev() {
                o.swap(i, (rand() % (i as u64 + 1)) as usize);
            }
        } else {
            for i in 1..n {
                if rand() % 3 == 0 {
                    o.swap(i - 1, i);
                }
            }
        }
        let p = place(buffers, &o);
        if p.1 < best.1 {
            best = p;
        }
    }
    best
}

fn place(buffers: &[Lifetime], order: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = vec![0usize; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut total = 0usize;
    let mut busy: Vec<(usize, usize)> = Vec::new();
    for &i in order {
        let b = &buffers[i];
        let size = align(b.bytes);
        if size == 0 {
            continue;
        }
        busy.clear();
        busy.extend(
            placed
                .iter()
                .filter(|&&j| buffers[j].overlaps(b))
                .map(|&j| (offsets[j], offsets[j] + align(buffers[j].bytes))),
        );
        busy.sort_unstable();
        // Best fit: the smallest gap between busy ranges that holds `size`.
        let mut best: Option<(usize, usize)> = None; // (gap, offset)
        let mut cursor = 0usize;
        for &(s, e) in &busy {
            if s > cursor {
                let gap = s - cursor;
                if gap >= size && best.is_none_or(|(g, _)| gap < g) {
                    best = Some((gap, cursor));
                }
            }
            cursor = cursor.max(e);
        }
        let off = best.map_or(cursor, |(_, o)| o);
        offsets[i] = off;
        total = total.max(off + size);
        placed.push(i);
    }
    (offsets, total)
}

/// The most bytes alive at any one step: no placement can use less.
pub fn lower_bound(buffers: &[Lifetime]) -> usize {
    let steps = buffers.iter().map(|b| b.last + 1).max().unwrap_or(0);
    let mut delta = vec![0i64; steps + 1];
    for b in buffers {
        delta[b.first] += b.bytes as i64;
        delta[b.last + 1] -= b.bytes as i64;
    }
    let (mut cur, mut best) = (0i64, 0i64);
    for d in delta {
        cur += d;
        best = best.max(cur);
    }
    best as usize
}

/// True if no two buffers alive at the same step overlap in the arena.
pub fn check(buffers: &[Lifetime], offsets: &[usize], arena: usize) -> bool {
    for (i, a) in buffers.iter().enumerate() {
        if a.bytes == 0 {
            continue;
        }
        if !offsets[i].is_multiple_of(ALIGN) || offsets[i] + a.bytes > arena {
            return false;
        }
        for (j, b) in buffers.iter().enumerate().skip(i + 1) {
            if b.bytes == 0 || !a.overlaps(b) {
                continue;
            }
            let (s1, e1) = (offsets[i], offsets[i] + a.bytes);
            let (s2, e2) = (offsets[j], offsets[j] + b.bytes);
            if s1 < e2 && s2 < e1 {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(first: usize, last: usize, bytes: usize) -> Lifetime {
        Lifetime { first, last, bytes }
    }

    #[test]
    fn a_chain_reuses_two_slots() {
        // a -> b -> c -> d, each read only by the next.
        let bufs: Vec<Lifetime> = (0..4).map(|i| lt(i, i + 1, 1000)).collect();
        let (off, total) = assign_offsets(&bufs);
        assert!(check(&bufs, &off, total));
        assert_eq!(total, 2 * align(1000));
        assert_eq!(lower_bound(&bufs), 2000);
    }

    #[test]
    fn best_fit_fills_the_gap() {
        // A big buffer dies, a small one lives on; a medium one fits where the big one was.
        let bufs = vec![lt(0, 1, 4096), lt(0, 3, 64), lt(2, 3, 1024)];
        let (off, total) = assign_offsets(&bufs);
        assert!(check(&bufs, &off, total));
        assert_eq!(total, 4096 + 64);
    }

    #[test]
    fn random_lifetimes_never_overlap_and_stay_near_the_bound() {
        let mut s = 12345u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 33) as usize
        };
        for _ in 0..50 {
            let bufs: Vec<Lifetime> = (0..60)
                .map(|_| {
                    let f = next() % 40;
                    lt(f, f + next() % 6, 64 * (1 + next() % 100))
                })
                .collect();
            let (off, total) = assign_offsets(&bufs);
            assert!(check(&bufs, &off, total));
            assert!(total >= lower_bound(&bufs));
            assert!(
                total <= 2 * lower_bound(&bufs),
                "{total} vs {}",
                lower_bound(&bufs)
            );
        }
    }
}
