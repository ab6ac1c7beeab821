//! The guest's RAM, shared with QEMU through a file (memory-backend-file, share=on): the raw
//! host Command queue entries, exactly as the kernel wrote them (the decoded trace fields lose
//! NUM, SCALE and RES0 bits), and the host STEs of the guest's devices.

use smmu_model::command::RawCommand;
use smmu_model::structures::Ste;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The guest-physical address of file offset 0 (the virt board's RAM base).
pub const RAM_BASE: u64 = 0x4000_0000;

pub struct Ram {
    file: File,
    size: u64,
}

impl Ram {
    pub fn open(path: &Path, size: u64) -> std::io::Result<Ram> {
        Ok(Ram {
            file: File::open(path)?,
            size,
        })
    }

    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), String> {
        let off = pa
            .checked_sub(RAM_BASE)
            .filter(|o| o + buf.len() as u64 <= self.size)
            .ok_or_else(|| format!("PA {pa:#x} is outside the guest's RAM"))?;
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| format!("cannot read guest RAM at PA {pa:#x}: {e}"))
    }

    pub fn read_u64(&self, pa: u64) -> Result<u64, String> {
        let mut b = [0u8; 8];
        self.read(pa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A 16-byte queue entry: DW0 then DW1, little-endian (§4.1).
    pub fn command(&self, pa: u64) -> Result<RawCommand, String> {
        let mut b = [0u8; 16];
        self.read(pa, &mut b)?;
        let lo = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
        Ok(RawCommand([lo, hi]))
    }

    /// The STE of `sid` under STRTAB_BASE / STRTAB_BASE_CFG (§6.3.23, §6.3.24, §3.3.2):
    /// linear, or two-level through an L1STD (L2Ptr[51:6], Span[4:0]).
    pub fn ste(&self, strtab_base: u64, strtab_cfg: u64, sid: u32) -> Result<Ste, String> {
        let base = strtab_base & 0x000f_ffff_ffff_ffc0;
        let log2size = (strtab_cfg & 0x3f) as u32;
        let split = ((strtab_cfg >> 6) & 0x1f) as u32;
        let fmt = (strtab_cfg >> 16) & 3;
        if u64::from(sid) >> log2size != 0 {
            return Err(format!("StreamID {sid:#x} is beyond the host stream table"));
        }
        let ste_pa = match fmt {
            0 => base + u64::from(sid) * 64,
            1 => {
                let l1 = self.read_u64(base + u64::from(sid >> split) * 8)?;
                let span = l1 & 0x1f;
                if span == 0 {
                    return Err(format!("the host L1STD of StreamID {sid:#x} is invalid"));
                }
                (l1 & 0x000f_ffff_ffff_ffc0) + u64::from(sid & ((1 << split) - 1)) * 64
            }
            f => return Err(format!("host STRTAB_BASE_CFG.FMT {f} is reserved")),
        };
        let mut w = [0u64; 8];
        for (i, x) in w.iter_mut().enumerate() {
            *x = self.read_u64(ste_pa + 8 * i as u64)?;
        }
        Ok(Ste::decode(w))
    }
}
