//! Sparse physical memory as seen by the SMMU's table walker.
//!
//! Words are 8-byte little-endian (SMMU structures and VMSAv8-64 descriptors are little-endian
//! when `ENDI`/`S2ENDI` are 0, which is the only endianness this model supports). Memory that
//! has never been written reads as zero, which decodes as "invalid" for every structure
//! (STE.V, CD.V, L1STD.Span, L1CD.V and descriptor bit 0 are all 0).

use rustc_hash::FxHashMap;

/// Read access to physical memory, one aligned 8-byte little-endian word at a time.
pub trait MemRead {
    /// The 64-bit word at `pa & !7`. Unwritten memory reads as 0.
    fn read_u64(&self, pa: u64) -> u64;

    /// Like [`MemRead::read_u64`], but `None` models an external abort on the access
    /// (reported as F_STE_FETCH / F_CD_FETCH / F_WALK_EABT, §7.3). The default never aborts;
    /// a memory model that wants to inject aborts overrides this.
    fn try_read_u64(&self, pa: u64) -> Option<u64> {
        Some(self.read_u64(pa))
    }

    /// Calls `f(pa, word)` for every non-zero word among the `n` words from `pa & !7` upwards
    /// (wrapping at 2^64), in that order. Traversals of whole translation tables use it: a
    /// zero word is an invalid descriptor (bit 0 clear), so only the others need reading. The
    /// default reads every word; [`Memory`] visits only the words ever written.
    fn for_each_nonzero(&self, pa: u64, n: u64, f: &mut dyn FnMut(u64, u64)) {
        let base = pa & !7;
        for i in 0..n {
            let a = base.wrapping_add(i.wrapping_mul(8));
            let v = self.read_u64(a);
            if v != 0 {
                f(a, v);
            }
        }
    }
}

impl<T: MemRead + ?Sized> MemRead for &T {
    fn read_u64(&self, pa: u64) -> u64 {
        (**self).read_u64(pa)
    }
    fn try_read_u64(&self, pa: u64) -> Option<u64> {
        (**self).try_read_u64(pa)
    }
    fn for_each_nonzero(&self, pa: u64, n: u64, f: &mut dyn FnMut(u64, u64)) {
        (**self).for_each_nonzero(pa, n, f)
    }
}

/// Words per page of [`Memory`] (4 KiB pages).
const PAGE_WORDS: usize = 512;
const PAGE_SHIFT: u32 = 12;

/// One 4 KiB page: its words and a bitmap of the non-zero ones, so that a scan of a large,
/// mostly empty translation table touches only what was written.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Page {
    words: [u64; PAGE_WORDS],
    nonzero: [u64; PAGE_WORDS / 64],
}

impl Page {
    fn count(&self) -> u32 {
        self.nonzero.iter().map(|b| b.count_ones()).sum()
    }
}

/// Sparse current memory: 8-byte-aligned PA -> word, in 4 KiB pages allocated on first
/// non-zero write; a page whose words are all zero again is freed, so equal contents compare
/// equal whatever the history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pages: FxHashMap<u64, Box<Page>>,
    len: usize,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget every word, keeping the allocation of the page map (cheap reuse between runs).
    pub fn clear(&mut self) {
        self.pages.clear();
        self.len = 0;
    }

    /// Writes an 8-byte word at `pa & !7`.
    pub fn write_u64(&mut self, pa: u64, value: u64) {
        let page = pa >> PAGE_SHIFT;
        let i = ((pa >> 3) as usize) & (PAGE_WORDS - 1);
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if value == 0 {
            if let Some(p) = self.pages.get_mut(&page) {
                if p.nonzero[w] & b != 0 {
                    p.nonzero[w] &= !b;
                    p.words[i] = 0;
                    self.len -= 1;
                    if p.nonzero.iter().all(|x| *x == 0) {
                        self.pages.remove(&page);
                    }
                }
            }
            return;
        }
        let p = self.pages.entry(page).or_insert_with(|| {
            Box::new(Page {
                words: [0; PAGE_WORDS],
                nonzero: [0; PAGE_WORDS / 64],
            })
        });
        if p.nonzero[w] & b == 0 {
            p.nonzero[w] |= b;
            self.len += 1;
        }
        p.words[i] = value;
    }

    /// Writes consecutive words starting at `pa & !7` (wrapping at 2^64 never happens for sane
    /// addresses; wrapping arithmetic keeps this panic-free for garbage).
    pub fn write_words(&mut self, pa: u64, words: &[u64]) {
        let base = pa & !7;
        for (i, w) in words.iter().enumerate() {
            self.write_u64(base.wrapping_add((i as u64) * 8), *w);
        }
    }

    /// Reads `n` consecutive words from `pa & !7`.
    pub fn read_words(&self, pa: u64, n: usize) -> Vec<u64> {
        let base = pa & !7;
        (0..n)
            .map(|i| self.read_u64(base.wrapping_add((i as u64) * 8)))
            .collect()
    }

    /// Byte-granular write (any alignment).
    pub fn write_bytes(&mut self, pa: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            let a = pa.wrapping_add(i as u64);
            let key = a & !7;
            let shift = (a & 7) * 8;
            let old = self.read_u64(key);
            let new = (old & !(0xffu64 << shift)) | ((*b as u64) << shift);
            self.write_u64(key, new);
        }
    }

    /// Byte-granular read (any alignment).
    pub fn read_bytes(&self, pa: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| {
                let a = pa.wrapping_add(i as u64);
                (self.read_u64(a & !7) >> ((a & 7) * 8)) as u8
            })
            .collect()
    }

    /// Number of non-zero words stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterates the non-zero words (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.pages.iter().flat_map(|(&pn, p)| {
            (0..PAGE_WORDS)
                .filter(|&i| p.nonzero[i / 64] >> (i % 64) & 1 == 1)
                .map(move |i| ((pn << PAGE_SHIFT) | (i as u64) << 3, p.words[i]))
        })
    }

    /// Non-zero words of [first, first + 8 * n) without wrapping, ascending.
    fn scan(&self, first: u64, n: u64, f: &mut dyn FnMut(u64, u64)) {
        if n == 0 {
            return;
        }
        let last = first + (n - 1) * 8;
        let mut page = first >> PAGE_SHIFT;
        loop {
            if let Some(p) = self.pages.get(&page) {
                debug_assert!(p.count() > 0, "empty pages are freed");
                let base = page << PAGE_SHIFT;
                let lo = if page == first >> PAGE_SHIFT {
                    ((first >> 3) as usize) & (PAGE_WORDS - 1)
                } else {
                    0
                };
                let hi = if page == last >> PAGE_SHIFT {
                    ((last >> 3) as usize) & (PAGE_WORDS - 1)
                } else {
                    PAGE_WORDS - 1
                };
                for w in lo / 64..=hi / 64 {
                    let mut bits = p.nonzero[w];
                    if w == lo / 64 {
                        bits &= u64::MAX << (lo % 64);
                    }
                    if w == hi / 64 && hi % 64 != 63 {
                        bits &= (1u64 << (hi % 64 + 1)) - 1;
                    }
                    while bits != 0 {
                        let i = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        f(base | (i as u64) << 3, p.words[i]);
                    }
                }
            }
            if page == last >> PAGE_SHIFT {
                break;
            }
            page += 1;
        }
    }
}

impl MemRead for Memory {
    fn read_u64(&self, pa: u64) -> u64 {
        match self.pages.get(&(pa >> PAGE_SHIFT)) {
            Some(p) => p.words[((pa >> 3) as usize) & (PAGE_WORDS - 1)],
            None => 0,
        }
    }

    fn for_each_nonzero(&self, pa: u64, n: u64, f: &mut dyn FnMut(u64, u64)) {
        let base = pa & !7;
        let n = n.min(1 << 61);
        // Words up to the top of the address space, then the wrapped rest from 0.
        let room = ((u64::MAX - base) >> 3) + 1;
        if n <= room {
            self.scan(base, n, f);
        } else {
            self.scan(base, room, f);
            self.scan(0, n - room, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_words() {
        let mut m = Memory::new();
        assert_eq!(m.read_u64(0x1000), 0);
        m.write_u64(0x1003, 0x1122_3344_5566_7788);
        assert_eq!(m.read_u64(0x1000), 0x1122_3344_5566_7788);
        assert_eq!(m.read_bytes(0x1000, 2), vec![0x88, 0x77]);
        m.write_bytes(0x1007, &[0xaa, 0xbb]);
        assert_eq!(m.read_u64(0x1000) >> 56, 0xaa);
        assert_eq!(m.read_u64(0x1008), 0xbb);
        m.write_u64(0x1008, 0);
        assert_eq!(m.len(), 1);
        m.write_bytes(u64::MAX, &[1, 2]);
        assert_eq!(m.read_bytes(u64::MAX, 2), vec![1, 2]);
    }

    /// The sparse scan sees exactly what a word-by-word scan sees, in the same order, across
    /// page boundaries and the wrap at 2^64.
    #[test]
    fn sparse_scan_matches_dense_scan() {
        struct Dense<'a>(&'a Memory);
        impl MemRead for Dense<'_> {
            fn read_u64(&self, pa: u64) -> u64 {
                self.0.read_u64(pa)
            }
        }
        let mut m = Memory::new();
        let addrs = [
            0u64,
            8,
            0xff8,
            0x1000,
            0x1ff8,
            0x2040,
            0x3000,
            u64::MAX - 7,
            u64::MAX - 0x1007,
        ];
        for (i, a) in addrs.iter().enumerate() {
            m.write_u64(*a, i as u64 + 1);
        }
        m.write_u64(0x1000, 0);
        for (start, n) in [
            (0u64, 1024u64),
            (4, 3),
            (0xff8, 2),
            (0x1008, 0x200),
            (u64::MAX - 0x2000, 0x500),
            (0x3000, 0),
            (0x3000, 1),
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            m.for_each_nonzero(start, n, &mut |p, v| a.push((p, v)));
            Dense(&m).for_each_nonzero(start, n, &mut |p, v| b.push((p, v)));
            assert_eq!(a, b, "scan of {n} words from {start:#x}");
        }
        assert_eq!(m.len(), addrs.len() - 1);
        assert_eq!(m.iter().count(), m.len());
        let mut e = m.clone();
        for (pa, _) in m.iter() {
            e.write_u64(pa, 0);
        }
        assert_eq!(e, Memory::new());
    }
}
