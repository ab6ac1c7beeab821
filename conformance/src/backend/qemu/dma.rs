//! The lsi53c895a SCRIPTS probe engines (method notes, "Observing translations").
//!
//! Which StreamIDs can be probed: StreamID = requester ID = bus << 8 | devfn, and QEMU's SMMU
//! finds the device of a StreamID by its bus number and devfn. On `virt` the root bus is bus 0
//! and its devfn 0 is the host bridge, a single-function device, so devfns 1-7 (StreamIDs 1-7)
//! cannot exist; a bridge given secondary bus number 0 would make two buses answer to bus 0,
//! and QEMU's lookup (`smmu_iommu_mr`, `smmu_find_smmu_pcibus`) would then find either one, so
//! a CFGI_STE could land on the wrong device: a harness artefact, not an observation. StreamID 0
//! is the host bridge itself, which does no DMA. So one lsi53c895a sits at every function of
//! slots 1-7 of the root bus: StreamIDs 0x08-0x3f, every StreamID of the 64-entry stream table
//! the trace builder makes except 0-7, which answer "cannot observe".
//!
//! A probe runs a two-instruction SCRIPT on the lsi of its StreamID: `LOAD SCRATCHA, 4, <iova>`
//! (one 4-byte DMA read through the SMMU) then `INT` with a value that is new for every probe.
//! Writing DSP runs the SCRIPT inside that one MMIO write; one 8-byte read of DSPS and SCRATCHA
//! then gives both the INT's value (proof that this probe's SCRIPT ran to its end, so the LOAD
//! did too) and the loaded word. The SCRIPT's own fetches are DMA with the same StreamID, so
//! the SCRIPT page must be reachable (see `QemuDevice::script_iova`).

use super::qtest::{self, Qtest};
use crate::backend::HarnessError;
use crate::layout::BACKEND_SCRATCH;

/// PCIe ECAM on `virt` (the high window; the legacy one reads zeros).
pub const ECAM: u64 = 0x40_1000_0000;
/// 32-bit PCI MMIO window on `virt`: BARs are placed here.
const MMIO_WINDOW: u64 = 0x1000_0000;
/// Each engine's BARs: BAR1 (registers, 1 KiB) then BAR2 (SCRIPTS RAM, 8 KiB).
const BAR_STRIDE: u64 = 0x4000;

/// The StreamIDs with a probe engine: every function of root-bus slots 1-7.
pub const FIRST_SID: u32 = 0x08;
pub const LAST_SID: u32 = 0x3f;

/// lsi registers (offsets in the MMIO BAR).
const ISTAT0: u64 = 0x14;
const DSP: u64 = 0x2c;
const DSPS: u64 = 0x30;
const SCRATCHA: u64 = 0x34;

/// Where the SCRIPT lives (PA), in the backend's scratch area.
pub const SCRIPT_PA: u64 = BACKEND_SCRATCH;

/// LOAD (Load/Store, bit 24 = load), register SCRATCHA, 4 bytes.
const LOAD_SCRATCHA_4: u32 = 0xe000_0000 | (1 << 24) | ((SCRATCHA as u32) << 16) | 4;
/// INT, unconditional (jump-if-true with no compare); its second word goes to DSPS.
const INT: u32 = 0x9808_0000;

/// Whether `sid` has a probe engine.
pub fn has_engine(sid: u32) -> bool {
    (FIRST_SID..=LAST_SID).contains(&sid)
}

/// The engine's register BAR. `sid` must have an engine.
pub fn bar1(sid: u32) -> u64 {
    MMIO_WINDOW + u64::from(sid - FIRST_SID) * BAR_STRIDE
}

fn config(sid: u32) -> u64 {
    // Bus 0: the devfn is the StreamID.
    ECAM + (u64::from(sid) << 12)
}

/// The `-device` arguments for every engine (multifunction, so functions 1-7 may follow 0).
pub fn device_args() -> Vec<String> {
    let mut v = Vec::new();
    for sid in FIRST_SID..=LAST_SID {
        let (slot, func) = (sid >> 3, sid & 7);
        let mf = if func == 0 { ",multifunction=on" } else { "" };
        v.push("-device".to_string());
        v.push(format!("lsi53c895a,addr={slot:02x}.{func}{mf}"));
    }
    v
}

/// Lines that assign every engine's BARs and enable memory decoding and bus mastering.
pub fn pci_setup_lines() -> Vec<String> {
    let mut v = Vec::new();
    for sid in FIRST_SID..=LAST_SID {
        let (cfg, bar) = (config(sid), bar1(sid));
        v.push(qtest::writel(cfg + 0x14, bar as u32));
        v.push(qtest::writel(cfg + 0x18, (bar + 0x2000) as u32));
        // COMMAND: memory space | bus master.
        v.push(qtest::writel(cfg + 0x04, 0x6));
    }
    v
}

/// Reads every engine's vendor/device id, to check each is where its StreamID says.
pub fn check_present(q: &mut Qtest) -> Result<(), HarnessError> {
    let lines: Vec<String> = (FIRST_SID..=LAST_SID)
        .map(|sid| qtest::readl(config(sid)))
        .collect();
    let r = q.batch(&lines, "lsi53c895a config read")?;
    for (sid, id) in (FIRST_SID..=LAST_SID).zip(r) {
        let id = id.unwrap_or(0);
        if id != 0x0012_1000 {
            return Err(HarnessError::Setup(format!(
                "no lsi53c895a at 00:{:02x}.{} (vendor/device {id:#010x})",
                sid >> 3,
                sid & 7
            )));
        }
    }
    Ok(())
}

/// Lines writing the SCRIPT at `SCRIPT_PA` (source address and INT value are patched per probe).
pub fn script_lines() -> Vec<String> {
    vec![
        qtest::writel(SCRIPT_PA, LOAD_SCRATCHA_4),
        qtest::writel(SCRIPT_PA + 4, 0),
        qtest::writel(SCRIPT_PA + 8, INT),
        qtest::writel(SCRIPT_PA + 12, 0),
    ]
}

/// The lines of one probe on the engine of `sid`: patch the SCRIPT's source and INT value (one
/// line), start it fetched from `script_iova`, read DSPS and SCRATCHA (one 8-byte read: the
/// reply to the third line, see [`load32_result`]).
pub fn load32_lines(sid: u32, script_iova: u32, src_iova: u32, tag: u32) -> [String; 3] {
    let mut patch = [0u8; 12];
    patch[0..4].copy_from_slice(&src_iova.to_le_bytes());
    patch[4..8].copy_from_slice(&INT.to_le_bytes());
    patch[8..12].copy_from_slice(&tag.to_le_bytes());
    [
        qtest::write_bytes(SCRIPT_PA + 4, &patch),
        qtest::writel(bar1(sid) + DSP, script_iova),
        qtest::readq(bar1(sid) + DSPS),
    ]
}

/// The loaded word from the 8-byte DSPS/SCRATCHA read of [`load32_lines`], or `None` when this
/// probe's SCRIPT did not reach its INT (DSPS does not hold `tag`): its fetch went elsewhere.
pub fn load32_result(dsps_scratcha: u64, tag: u32) -> Option<u32> {
    (dsps_scratcha as u32 == tag).then_some((dsps_scratcha >> 32) as u32)
}

/// lsi soft reset (ISTAT0.SRST set then cleared) on every engine: stops a running SCRIPT and
/// clears pending interrupts; PCI configuration (BARs, bus mastering) is kept.
pub fn soft_reset_lines() -> Vec<String> {
    let mut v = Vec::new();
    for sid in FIRST_SID..=LAST_SID {
        v.push(format!("writeb {:#x} 0x40", bar1(sid) + ISTAT0));
        v.push(format!("writeb {:#x} 0", bar1(sid) + ISTAT0));
    }
    v
}

/// Soft reset of the engine of one StreamID.
pub fn soft_reset_one(sid: u32) -> Vec<String> {
    vec![
        format!("writeb {:#x} 0x40", bar1(sid) + ISTAT0),
        format!("writeb {:#x} 0", bar1(sid) + ISTAT0),
    ]
}
