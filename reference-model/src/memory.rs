//! Sparse physical memory as seen by the SMMU's table walker.
//!
//! Words are 8-byte little-endian (SMMU structures and VMSAv8-64 descriptors are little-endian
//! when `ENDI`/`S2ENDI` are 0, which is the only endianness this model supports). Memory that
//! has never been written reads as zero, which decodes as "invalid" for every structure
//! (STE.V, CD.V, L1STD.Span, L1CD.V and descriptor bit 0 are all 0).

use std::collections::HashMap;

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
}

impl<T: MemRead + ?Sized> MemRead for &T {
    fn read_u64(&self, pa: u64) -> u64 {
        (**self).read_u64(pa)
    }
    fn try_read_u64(&self, pa: u64) -> Option<u64> {
        (**self).try_read_u64(pa)
    }
}

/// Sparse current memory: 8-byte-aligned PA -> word. Zero words are not stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    words: HashMap<u64, u64>,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes an 8-byte word at `pa & !7`.
    pub fn write_u64(&mut self, pa: u64, value: u64) {
        let key = pa & !7;
        if value == 0 {
            self.words.remove(&key);
        } else {
            self.words.insert(key, value);
        }
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
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Iterates the non-zero words (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.words.iter().map(|(k, v)| (*k, *v))
    }
}

impl MemRead for Memory {
    fn read_u64(&self, pa: u64) -> u64 {
        self.words.get(&(pa & !7)).copied().unwrap_or(0)
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
}
