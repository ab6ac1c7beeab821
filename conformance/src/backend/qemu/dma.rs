//! The lsi53c895a SCRIPTS probe engine (method notes, "Observing translations").
//!
//! A probe runs a two-instruction SCRIPT: `LOAD SCRATCHA, 4, <iova>` (one 4-byte DMA read
//! through the SMMU with the lsi's StreamID) then `INT`. Writing DSP runs the SCRIPT inside that
//! one MMIO write; the loaded word is then read from SCRATCHA over MMIO, so the engine needs no
//! scratch destination page, only the SCRIPT page itself to be reachable (its fetches are DMA
//! too, with the same StreamID: see `QemuDevice::script_iova`).

use super::qtest::{self, Qtest};
use crate::backend::HarnessError;
use crate::layout::BACKEND_SCRATCH;

/// PCIe ECAM on `virt` (the high window; the legacy one reads zeros).
pub const ECAM: u64 = 0x40_1000_0000;
/// 32-bit PCI MMIO window on `virt`: BARs are placed here.
pub const LSI_BAR1: u64 = 0x1000_0000;
pub const LSI_BAR2: u64 = 0x1000_2000;
/// lsi53c895a at 00:02.0: StreamID = requester ID = bus << 8 | devfn.
pub const LSI_SID: u32 = 0x10;
const LSI_DEVFN: u64 = 2 << 3;

/// lsi registers (offsets in the MMIO BAR).
const DSTAT: u64 = 0x0c;
const ISTAT0: u64 = 0x14;
const DSP: u64 = 0x2c;
const SCRATCHA: u64 = 0x34;
/// DSTAT.SIR: the SCRIPT reached its INT instruction.
const DSTAT_SIR: u64 = 0x04;

/// Where the SCRIPT lives (PA), in the backend's scratch area.
pub const SCRIPT_PA: u64 = BACKEND_SCRATCH;

/// LOAD (Load/Store, bit 24 = load), register SCRATCHA, 4 bytes.
const LOAD_SCRATCHA_4: u32 = 0xe000_0000 | (1 << 24) | ((SCRATCHA as u32) << 16) | 4;
/// INT, unconditional (jump-if-true with no compare), DSPS = 0.
const INT: u32 = 0x9808_0000;

/// Lines that size-free assign the lsi's BARs and enable memory decoding and bus mastering.
pub fn pci_setup_lines() -> Vec<String> {
    let cfg = ECAM + (LSI_DEVFN << 12);
    vec![
        qtest::writel(cfg + 0x14, LSI_BAR1 as u32),
        qtest::writel(cfg + 0x18, LSI_BAR2 as u32),
        // COMMAND: memory space | bus master.
        qtest::writel(cfg + 0x04, 0x6),
    ]
}

/// Reads the lsi's vendor/device id to check it is where the StreamID mapping assumes.
pub fn check_present(q: &mut Qtest) -> Result<(), HarnessError> {
    let id = q.readl(ECAM + (LSI_DEVFN << 12), "lsi53c895a config read")?;
    if id != 0x0012_1000 {
        return Err(HarnessError::Setup(format!(
            "no lsi53c895a at 00:02.0 (vendor/device {id:#010x})"
        )));
    }
    Ok(())
}

/// Lines writing the SCRIPT at `SCRIPT_PA` (the source address is patched per probe).
pub fn script_lines() -> Vec<String> {
    vec![
        qtest::writel(SCRIPT_PA, LOAD_SCRATCHA_4),
        qtest::writel(SCRIPT_PA + 4, 0),
        qtest::writel(SCRIPT_PA + 8, INT),
        qtest::writel(SCRIPT_PA + 12, 0),
    ]
}

/// Lines that run the SCRIPT fetched from `script_iova`, loading 4 bytes from `src_iova`, and
/// read back DSTAT (index 3 of the replies) and SCRATCHA (index 5); see [`load32_result`].
pub fn load32_lines(script_iova: u32, src_iova: u32) -> Vec<String> {
    vec![
        qtest::writel(SCRIPT_PA + 4, src_iova),
        qtest::writel(LSI_BAR1 + SCRATCHA, 0),
        qtest::writel(LSI_BAR1 + DSP, script_iova),
        // Reading DSTAT acknowledges the SCRIPT interrupt, ready for the next probe.
        qtest::readb(LSI_BAR1 + DSTAT),
        qtest::readb(LSI_BAR1 + ISTAT0),
        qtest::readl(LSI_BAR1 + SCRATCHA),
    ]
}

/// The loaded word from the replies to [`load32_lines`], or `None` when the SCRIPT did not
/// reach its INT (its own fetch failed).
pub fn load32_result(replies: &[Option<u64>]) -> Option<u32> {
    let dstat = replies.get(3).copied().flatten().unwrap_or(0);
    let v = replies.get(5).copied().flatten().unwrap_or(0) as u32;
    (dstat & DSTAT_SIR != 0).then_some(v)
}

/// lsi soft reset (ISTAT0.SRST set then cleared): stops a running SCRIPT and clears pending
/// interrupts; PCI configuration (BARs, bus mastering) is kept.
pub fn soft_reset_lines() -> Vec<String> {
    vec![
        format!("writeb {:#x} 0x40", LSI_BAR1 + ISTAT0),
        format!("writeb {:#x} 0", LSI_BAR1 + ISTAT0),
    ]
}
