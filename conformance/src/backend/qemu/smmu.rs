//! SMMUv3 register programming over qtest: the reset/initialisation sequence (Linux's
//! arm_smmu_device_reset order, as in the method notes, "Programming sequence"), CR0/CR0ACK
//! handshakes with bounded polling (§6.3.9, §6.3.10), and the queue registers (§6.3.25-§6.3.31).

use super::qtest::{self, Qtest};
use crate::backend::HarnessError;
use crate::layout::{CMDQ_BASE, CMDQ_LOG2SIZE};
use smmu_model::command::RawCommand;

/// The SMMU's register page 0 on `virt`; page 1 is at +0x10000.
pub const SMMU_BASE: u64 = 0x0905_0000;
pub const IDR0: u64 = 0x00;
pub const IDR1: u64 = 0x04;
pub const IDR3: u64 = 0x0c;
pub const IDR5: u64 = 0x14;
pub const AIDR: u64 = 0x1c;
pub const CR0: u64 = 0x20;
pub const CR0ACK: u64 = 0x24;
pub const CR1: u64 = 0x28;
pub const CR2: u64 = 0x2c;
pub const IRQ_CTRL: u64 = 0x50;
pub const GERROR: u64 = 0x60;
pub const GERRORN: u64 = 0x64;
pub const STRTAB_BASE: u64 = 0x80;
pub const STRTAB_BASE_CFG: u64 = 0x88;
pub const CMDQ_BASE_REG: u64 = 0x90;
pub const CMDQ_PROD: u64 = 0x98;
pub const CMDQ_CONS: u64 = 0x9c;
pub const EVENTQ_BASE: u64 = 0xa0;
/// EVENTQ_PROD/CONS live in page 1 (§6.3.27, §6.3.28 "page 1 alias").
pub const EVENTQ_PROD: u64 = 0x100a8;
pub const EVENTQ_CONS: u64 = 0x100ac;

pub const CR0_SMMUEN: u32 = 1 << 0;
pub const CR0_EVENTQEN: u32 = 1 << 2;
pub const CR0_CMDQEN: u32 = 1 << 3;
/// CR2.RECINVSID: record C_BAD_STREAMID for out-of-range StreamIDs (§6.3.12).
pub const CR2_RECINVSID: u32 = 1 << 1;
/// Q_BASE.RA / WA, bit 62 (§6.3.25).
const Q_BASE_RA: u64 = 1 << 62;

/// CR0ACK is polled at most this many times: QEMU acknowledges inside the CR0 write, so more
/// than a couple of reads means something is wrong (and it is reported, never waited out).
const CR0ACK_POLLS: usize = 16;

pub fn reg(off: u64) -> u64 {
    SMMU_BASE + off
}

/// Write CR0 and wait until CR0ACK reflects it (§6.3.10: software must not assume an update
/// took effect before CR0ACK shows it).
pub fn write_cr0(q: &mut Qtest, value: u32) -> Result<(), HarnessError> {
    q.writel(reg(CR0), value, "CR0 write")?;
    for _ in 0..CR0ACK_POLLS {
        let ack = q.readl(reg(CR0ACK), "CR0ACK poll")?;
        if ack == value {
            return Ok(());
        }
    }
    let ack = q.readl(reg(CR0ACK), "CR0ACK poll")?;
    Err(HarnessError::Protocol {
        backend: "qemu".into(),
        during: "CR0ACK poll".into(),
        detail: format!("CR0 = {value:#x} but CR0ACK still {ack:#x} after {CR0ACK_POLLS} reads"),
    })
}

/// Clear any active global error: GERRORN := GERROR (§6.3.19, §6.3.20, toggle semantics).
pub fn clear_gerror(q: &mut Qtest) -> Result<(), HarnessError> {
    let g = q.readl(reg(GERROR), "GERROR read")?;
    let n = q.readl(reg(GERRORN), "GERRORN read")?;
    if g != n {
        q.writel(reg(GERRORN), g, "GERRORN write")?;
    }
    Ok(())
}

pub fn cmdq_base_value() -> u64 {
    Q_BASE_RA | CMDQ_BASE | CMDQ_LOG2SIZE as u64
}

/// Lines that write `cmds` at queue index `prod` (index plus wrap bit) and then PROD: one
/// `write` line per contiguous run of entries (two when the batch wraps). Returns the lines and
/// the new PROD.
pub fn enqueue_lines(prod: u32, cmds: &[RawCommand]) -> (Vec<String>, u32) {
    let size = 1u32 << CMDQ_LOG2SIZE;
    let mask = (size << 1) - 1; // index and wrap bit (§3.5)
    let mut p = prod & mask;
    let mut lines = Vec::with_capacity(3);
    let mut run: Vec<u8> = Vec::new();
    let mut run_start = p & (size - 1);
    for c in cmds {
        let idx = p & (size - 1);
        if idx == 0 && !run.is_empty() {
            lines.push(qtest::write_bytes(
                CMDQ_BASE + 16 * u64::from(run_start),
                &run,
            ));
            run.clear();
        }
        if run.is_empty() {
            run_start = idx;
        }
        run.extend_from_slice(&c.to_bytes());
        p = (p + 1) & mask;
    }
    if !run.is_empty() {
        lines.push(qtest::write_bytes(
            CMDQ_BASE + 16 * u64::from(run_start),
            &run,
        ));
    }
    lines.push(qtest::writel(reg(CMDQ_PROD), p));
    (lines, p)
}

/// CFGI_ALL (§4.3.3: CFGI_STE_RANGE with Range = 31).
pub const CFGI_ALL: RawCommand = RawCommand::new(0x04, 31);
/// TLBI_NSNH_ALL (§4.4.6).
pub const TLBI_NSNH_ALL: RawCommand = RawCommand::new(0x30, 0);
/// CMD_SYNC with CS = SIG_NONE (§4.7.3).
pub const SYNC: RawCommand = RawCommand::new(0x46, 0);
