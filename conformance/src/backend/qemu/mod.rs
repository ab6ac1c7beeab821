//! QEMU's emulated SMMUv3 as a [`Device`], driven black-box over qtest
//! (/work/shared/reference/qemu-qtest-method.md is the recipe this follows).
//!
//! - [`process`] owns the child (killed on drop, error and timeout), [`qtest`] speaks the line
//!   protocol with bounded waits, [`smmu`] programs the SMMU registers, [`dma`] is the
//!   lsi53c895a SCRIPTS probe engines.
//! - One QEMU process serves many cases: [`Device::reset`] re-initialises the SMMU in place and
//!   re-zeroes every page the previous case (or this backend) wrote.
//! - Speed: [`Device::run_steps`] sends a run of steps (all but acknowledgements) as one
//!   pipelined qtest exchange (every line written before any reply is read, in chunks the pipe
//!   holds), and reads back only what the harness judges: CONS and GERROR after each
//!   submission, DSPS/SCRATCHA and EVENTQ_PROD after each probe. Event records are read in one
//!   more exchange, only for probes that did not reach a tagged page.
//!
//! StreamIDs: an lsi53c895a sits at every StreamID 0x08-0x3f ([`dma`] says why 0-7 cannot);
//! a probe on any other StreamID answers [`Observation::CannotObserve`].
//!
//! Identifying the PA a probe reached: the trace builder does not tag its data pages, so this
//! backend tags them itself, in device memory only (the model never reads data contents): the
//! first 4 bytes of each 4 KiB page in the data area that a written descriptor could point at
//! (see [`QemuDevice::tag_candidates`]) hold `TAG | PA >> 12`. A probe loads the 4 bytes at the
//! start of the 4 KiB page containing its address; a tag gives the page, the probe's own offset
//! the rest. Tagging at probe time rather than pre-tagging the whole 128 MiB data area keeps
//! reset cheap; pages the trace itself wrote are never tagged (their contents are the trace's),
//! and a probe landing on an untagged page answers CannotObserve rather than guess.

pub mod dma;
pub mod process;
pub mod qtest;
pub mod smmu;

use crate::backend::{Capabilities, Device, HarnessError, QueueObservation, StepOutcome};
use crate::layout::{BACKEND_SCRATCH, CMDQ_BASE, CMDQ_LOG2SIZE, DATA_BASE, DATA_END};
use crate::trace::Step;
use qtest::Qtest;
use smmu::{reg, CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN};
use smmu_model::command::RawCommand;
use smmu_model::granule::Granule;
use smmu_model::memory::{MemRead, Memory};
use smmu_model::oracle::{Observation, Probe};
use smmu_model::profile::IdRegs;
use smmu_model::structures::{Cd, Ste, SteConfig};
use smmu_model::tables::{leaf_descriptor, LeafSpec};
use smmu_model::walk::Stage;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The event queue: 2048 entries of 32 bytes in the backend scratch area, room for every
/// record a batch of probes can make (the batch consumes all earlier ones first).
const EVENTQ_PA: u64 = BACKEND_SCRATCH + 0x1_0000;
const EVENTQ_LOG2SIZE: u32 = 11;
/// Index and wrap bit of EVENTQ_PROD/CONS (§6.3.27).
const EVQ_MASK: u32 = (2 << EVENTQ_LOG2SIZE) - 1;
/// Probes per exchange at most: each makes a few event records at worst, far below the queue.
const MAX_PROBES_PER_BATCH: usize = 256;
/// The backend's own stage-1 tables that map the SCRIPT page when a stream translates.
const INJ_L2: u64 = BACKEND_SCRATCH + 0x1000;
const INJ_L3: u64 = BACKEND_SCRATCH + 0x2000;
/// The same for stage 2 (stage-2 descriptors differ in their attribute fields).
const INJ_S2_L2: u64 = BACKEND_SCRATCH + 0x6000;
const INJ_S2_L3: u64 = BACKEND_SCRATCH + 0x7000;
/// The IOVA the SCRIPT is fetched from under stage 1: L1 index 3 of a 39-bit, 4K-granule
/// space, far from the low IOVAs cases use, and below 4 GiB since lsi addresses are 32-bit.
const SCRIPT_IOVA_S1: u64 = 0xc000_0000;
/// Data-page tags: bits [31:19] a magic, [18:0] PA >> 12 (RAM ends below 2^31).
const TAG: u32 = 0xa5a0_0000;
const TAG_MASK: u32 = 0xfff8_0000;
const PAGE: u64 = 0x1000;
/// Block and page sizes a leaf can have with any granule: the page under a probe within a
/// block of each size is a candidate for tagging.
const LEAF_SIZES: [u64; 7] = [
    0x1000,
    0x4000,
    0x1_0000,
    0x20_0000,
    0x200_0000,
    0x2000_0000,
    0x4000_0000,
];

pub struct QemuDevice {
    q: Qtest,
    name: String,
    prod: u32,
    smmuen: bool,
    strtab: (u64, u32),
    /// Everything the trace wrote (to find a stream's structures for the SCRIPT mapping).
    shadow: Memory,
    /// 4 KiB pages the trace wrote.
    trace_pages: BTreeSet<u64>,
    /// Every page written since the last reset (trace, tags, injected descriptors).
    dirty_pages: BTreeSet<u64>,
    /// Output addresses (4 KiB aligned) of written values that look like valid descriptors.
    targets: BTreeSet<u64>,
    tagged: BTreeSet<u64>,
    /// Table slots of the trace's tables where this backend wrote its SCRIPT mapping and the
    /// trace has not written since.
    injected: BTreeSet<u64>,
    /// EVENTQ_PROD as last read (index and wrap); records up to it are consumed.
    evq_prod: u32,
    /// The value the next probe's INT leaves in DSPS (never repeats within 2^32 probes).
    probe_seq: u32,
    /// GERRORN as left by the last reset. GERROR/GERRORN are toggle registers that only a
    /// real SMMU reset zeroes (§6.3.19, §6.3.20): a reset in the same process can only make
    /// them equal. The harness starts every trace from GERROR = GERRORN = 0, so GERROR is
    /// reported relative to this baseline (XOR): the same active/inactive state, every bit.
    gerror_base: u32,
}

/// The GIC input the SMMU's CMD_SYNC wired interrupt drives on `virt` (SPI 76, method notes).
const CMD_SYNC_IRQ: u32 = 76;
/// The GIC as qtest names it for `irq_intercept_in` on this command line (method notes).
const GIC_PATH: &str = "/machine/unattached/device[1]";

fn setup_err(e: HarnessError, what: &str) -> HarnessError {
    match e {
        HarnessError::Setup(s) => HarnessError::Setup(format!("{what}: {s}")),
        e => e,
    }
}

/// What a step of a batch waits for, with the indices of its replies in the batch.
enum Pending {
    Done,
    /// A CR0 write: CR0ACK (read at this index) must show the value (§6.3.10).
    Cr0 {
        ack: usize,
        want: u32,
    },
    Queue {
        first: usize,
        cons: usize,
    },
    Probe {
        sid: u32,
        addr: u64,
        /// The DSPS/SCRATCHA read; EVENTQ_PROD is read by the next line.
        read: usize,
        /// The EVENTQ_PROD read before this probe.
        before: usize,
        tag: u32,
    },
    Cannot,
}

/// A probe whose outcome depends on the event records between two EVENTQ_PROD values.
struct NeedsEvents {
    step: usize,
    sid: u32,
    from: u32,
    to: u32,
}

fn words8(m: &Memory, pa: u64) -> [u64; 8] {
    let mut w = [0u64; 8];
    for (i, x) in w.iter_mut().enumerate() {
        *x = m.read_u64(pa + 8 * i as u64);
    }
    w
}

/// Every step but an acknowledgement (which reads CONS before it knows what to write).
fn batchable(s: &Step) -> bool {
    !matches!(s, Step::Acknowledge { .. })
}

impl QemuDevice {
    /// The StreamIDs a probe can be made on: those with an lsi53c895a (see [`dma`]).
    pub fn stream_ids(&self) -> std::ops::RangeInclusive<u32> {
        dma::FIRST_SID..=dma::LAST_SID
    }

    /// The qemu-system-aarch64 command line of the method notes, `-qtest stdio`.
    /// `machine` is the machine type: "virt" or a versioned one such as "virt-9.1".
    pub fn command_line(machine: &str) -> Vec<String> {
        let mut v: Vec<String> = [
            "-M",
            &format!("{machine},iommu=smmuv3"),
            "-cpu",
            "cortex-a57",
            "-m",
            "256M",
            "-display",
            "none",
            "-nodefaults",
            "-no-user-config",
            // Virtual time advances while CPU0 idles in the loop the loader writes (wfi; b .-4).
            "-icount",
            "shift=0,sleep=off",
            "-device",
            "loader,addr=0x4fff0000,data=0x17ffffffd503207f,data-len=8",
            "-device",
            "loader,addr=0x4fff0000,cpu-num=0",
            "-qtest-log",
            "none",
            "-qtest",
            "stdio",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(dma::device_args());
        v
    }

    /// Start QEMU and initialise the SMMU and the DMA engines (each exchange bounded by
    /// `timeout`, and by at least 20 s while QEMU starts). Every later wait is bounded by
    /// `timeout`.
    pub fn spawn(binary: &Path, machine: &str, timeout: Duration) -> Result<Self, HarnessError> {
        let name = format!("qemu({}, {machine})", binary.display());
        let q = Qtest::spawn(binary, &Self::command_line(machine), &name, timeout)?;
        let mut d = QemuDevice {
            q,
            name,
            prod: 0,
            smmuen: false,
            strtab: (0, 0),
            shadow: Memory::new(),
            trace_pages: BTreeSet::new(),
            dirty_pages: BTreeSet::new(),
            targets: BTreeSet::new(),
            tagged: BTreeSet::new(),
            injected: BTreeSet::new(),
            evq_prod: 0,
            probe_seq: 0,
            gerror_base: 0,
        };
        dma::check_present(&mut d.q).map_err(|e| setup_err(e, "lsi53c895a"))?;
        d.q.batch(&dma::pci_setup_lines(), "PCI setup")?;
        // Wired interrupts arrive as asynchronous `IRQ raise N` lines from now on.
        d.q.batch(
            &[format!("irq_intercept_in {GIC_PATH}")],
            "GIC interception",
        )
        .map_err(|e| setup_err(e, "GIC interception"))?;
        d.reset()?;
        d.q.started();
        Ok(d)
    }

    /// The QEMU process id (tests check it does not outlive the device).
    pub fn pid(&self) -> u32 {
        self.q.pid()
    }

    /// Queue registers as the harness wants them after a trigger.
    fn queue_obs(&mut self, during: &str) -> Result<QueueObservation, HarnessError> {
        let r = self.q.batch(
            &[
                qtest::readl(reg(smmu::CMDQ_CONS)),
                qtest::readl(reg(smmu::GERROR)),
            ],
            during,
        )?;
        Ok(QueueObservation {
            cons: r[0].unwrap_or(0) as u32,
            gerror: r[1].unwrap_or(0) as u32 ^ self.gerror_base,
            msi_writes: Vec::new(),
            wired_irqs: self.sync_irqs(),
            sev_events: 0,
        })
    }

    /// CMD_SYNC interrupts raised since the last call (QEMU pulses the line, §4.7.3).
    fn sync_irqs(&mut self) -> u32 {
        self.q
            .take_irqs()
            .iter()
            .filter(|&&n| n == CMD_SYNC_IRQ)
            .count() as u32
    }

    /// Record a trace write in the shadow state (the line itself is the caller's).
    fn note_write(&mut self, pa: u64, value: u64) {
        self.shadow.write_u64(pa, value);
        let page = pa & !(PAGE - 1);
        self.trace_pages.insert(page);
        self.dirty_pages.insert(page);
        self.tagged.remove(&page);
        self.injected.remove(&pa);
        // A value with bit 0 set may be a valid descriptor: its output address is where a
        // probe may land (§3.x descriptors: OA in bits [47:12] for every granule's pages).
        let oa = value & 0x0000_ffff_ffff_f000;
        if value & 1 != 0 && (DATA_BASE..DATA_END).contains(&oa) {
            self.targets.insert(oa);
        }
    }

    /// Where the SCRIPT can be fetched from with `sid`'s current configuration, appending to
    /// `lines` the write that maps it with the backend's own tables when the stream
    /// translates; `None` when it cannot be made reachable (then no DMA is started: a faulting
    /// SCRIPT fetch makes lsi spin).
    fn script_iova(&mut self, sid: u32, lines: &mut Vec<String>) -> Option<u64> {
        if !self.smmuen {
            // SMMUEN == 0: GBPA (reset value, ABORT == 0) lets transactions bypass (§6.3.14).
            return Some(dma::SCRIPT_PA);
        }
        let (base, cfg) = self.strtab;
        // Linear stream tables only (STRTAB_BASE_CFG.FMT == 0, §6.3.24).
        let log2size = cfg & 0x3f;
        if (cfg >> 16) & 3 != 0 || u64::from(sid) >= 1u64 << log2size {
            return None;
        }
        let ste_pa = (base & 0x00ff_ffff_ffff_ffc0) + u64::from(sid) * 64;
        let ste = Ste::decode(words8(&self.shadow, ste_pa));
        if !ste.v {
            return None;
        }
        // Stage 2 as the trace builder makes it: 4K granule, 39-bit IPA (S2T0SZ 25), walk from
        // level 1 (S2SL0 1) (§5.2).
        let s2_simple = ste.s2tg == 0 && ste.s2t0sz == 25 && ste.s2sl0 == 1;
        match SteConfig::from_bits(ste.config_raw) {
            SteConfig::Bypass => Some(dma::SCRIPT_PA),
            SteConfig::S1Translate => self.inject_s1(&ste, lines),
            SteConfig::S2Translate if s2_simple => {
                let l1_pa = (ste.s2ttb & !0xfff) + 3 * 8;
                self.inject(l1_pa, INJ_S2_L2 | 3, lines)?;
                Some(SCRIPT_IOVA_S1)
            }
            SteConfig::Nested if s2_simple => {
                // The stage-1 injection below needs IPA == PA over the scratch area and the
                // CD: the builder's nested streams map RAM 1:1 with a 1 GiB block (L1[1]).
                let l1 = self.shadow.read_u64((ste.s2ttb & !0xfff) + 8);
                if l1 & 3 != 1 || l1 & 0x0000_ffff_c000_0000 != 0x4000_0000 {
                    return None;
                }
                self.inject_s1(&ste, lines)
            }
            _ => None,
        }
    }

    /// Map the SCRIPT at [`SCRIPT_IOVA_S1`] in the stage-1 tables of the stream's single CD.
    fn inject_s1(&mut self, ste: &Ste, lines: &mut Vec<String>) -> Option<u64> {
        if ste.s1fmt != 0 || ste.s1cdmax != 0 {
            return None;
        }
        let cd = Cd::decode(words8(&self.shadow, ste.s1_context_ptr));
        // 4K granule, 39-bit input (T0SZ 25), so the walk starts at level 1 (§5.4).
        if !cd.v || !cd.aa64 || cd.tg0 != 0 || cd.t0sz != 25 || cd.epd0 {
            return None;
        }
        let l1_pa = (cd.ttb0 & !0xfff) + 3 * 8;
        self.inject(l1_pa, INJ_L2 | 3, lines)?;
        Some(SCRIPT_IOVA_S1)
    }

    /// Write `desc` at `slot` of a trace table unless the trace uses that slot itself (then
    /// `None`); once per slot until the trace writes it.
    fn inject(&mut self, slot: u64, desc: u64, lines: &mut Vec<String>) -> Option<()> {
        if self.shadow.read_u64(slot) != 0 {
            return None;
        }
        if self.injected.insert(slot) {
            lines.push(qtest::writeq(slot, desc));
            self.dirty_pages.insert(slot & !(PAGE - 1));
        }
        Some(())
    }

    /// Pages a probe at `addr` could reach through a leaf that maps one of the written
    /// targets: within each possible block size, the page at the probe's offset.
    fn tag_candidates(&self, addr: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for &t in &self.targets {
            for s in LEAF_SIZES {
                if t % s == 0 {
                    let p = t + (addr & (s - 1) & !(PAGE - 1));
                    if (DATA_BASE..DATA_END).contains(&p)
                        && !self.tagged.contains(&p)
                        && !self.trace_pages.contains(&p)
                    {
                        out.push(p);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The lines of one probe appended to `lines`, or `None` when it cannot be observed.
    fn probe_lines(
        &mut self,
        probe: &Probe,
        before: usize,
        lines: &mut Vec<String>,
    ) -> Option<Pending> {
        if !dma::has_engine(probe.sid)
            || probe.ssid.is_some()
            || probe.write
            || probe.addr > u64::from(u32::MAX)
        {
            return None;
        }
        let script = self.script_iova(probe.sid, lines)?;
        for p in self.tag_candidates(probe.addr) {
            lines.push(qtest::writel(p, TAG | (p >> 12) as u32));
            self.tagged.insert(p);
            self.dirty_pages.insert(p);
        }
        self.probe_seq = self.probe_seq.wrapping_add(1).max(1);
        let tag = self.probe_seq;
        let page = probe.addr & !(PAGE - 1);
        lines.extend(dma::load32_lines(
            probe.sid,
            script as u32,
            page as u32,
            tag,
        ));
        let read = lines.len() - 1;
        lines.push(qtest::readl(reg(smmu::EVENTQ_PROD)));
        Some(Pending::Probe {
            sid: probe.sid,
            addr: probe.addr,
            read,
            before,
            tag,
        })
    }

    /// Run steps other than acknowledgements as one pipelined exchange, plus one more for the
    /// event records of probes that did not reach a tagged page.
    fn run_batch(&mut self, steps: &[Step]) -> Result<Vec<StepOutcome>, HarnessError> {
        // Interrupts from before this batch belong to nothing in it.
        self.q.take_irqs_seq();
        let mut lines: Vec<String> = Vec::with_capacity(steps.len() * 8 + 2);
        let mut pending = Vec::with_capacity(steps.len());
        // Records up to the last EVENTQ_PROD read are consumed (CONS catches up), so the queue
        // has room for every record of this batch; PROD is read again as the baseline.
        let mut last_prod_read = usize::MAX;
        if steps.iter().any(|s| matches!(s, Step::Probe { .. })) {
            lines.push(qtest::writel(reg(smmu::EVENTQ_CONS), self.evq_prod));
            lines.push(qtest::readl(reg(smmu::EVENTQ_PROD)));
            last_prod_read = 1;
        }
        let mut prod = self.prod;
        for s in steps {
            match s {
                Step::Write { pa, value } => {
                    self.note_write(*pa, *value);
                    lines.push(qtest::writeq(*pa, *value));
                    pending.push(Pending::Done);
                }
                Step::Submit { commands } => {
                    // QEMU consumes inside the PROD write, so CONS and GERROR read right after
                    // it are the settled state (method notes, "Programming sequence" 6).
                    let first = lines.len();
                    let (l, p) = smmu::enqueue_lines(prod, commands);
                    lines.extend(l);
                    lines.push(qtest::readl(reg(smmu::CMDQ_CONS)));
                    lines.push(qtest::readl(reg(smmu::GERROR)));
                    pending.push(Pending::Queue {
                        first,
                        cons: lines.len() - 2,
                    });
                    prod = p;
                }
                Step::Probe {
                    sid,
                    ssid,
                    addr,
                    write,
                } => {
                    let probe = Probe {
                        sid: *sid,
                        ssid: *ssid,
                        addr: *addr,
                        write: *write,
                    };
                    match self.probe_lines(&probe, last_prod_read, &mut lines) {
                        Some(p) => {
                            last_prod_read = lines.len() - 1;
                            pending.push(p);
                        }
                        None => pending.push(Pending::Cannot),
                    }
                }
                Step::StreamTable { base, cfg } => {
                    lines.push(qtest::writeq(reg(smmu::STRTAB_BASE), *base));
                    lines.push(qtest::writel(reg(smmu::STRTAB_BASE_CFG), *cfg));
                    self.strtab = (*base, *cfg);
                    pending.push(Pending::Done);
                }
                Step::Enable { on } => {
                    // QEMU acknowledges inside the CR0 write: one CR0ACK read shows it.
                    let want = CR0_CMDQEN | CR0_EVENTQEN | if *on { CR0_SMMUEN } else { 0 };
                    lines.push(qtest::writel(reg(smmu::CR0), want));
                    lines.push(qtest::readl(reg(smmu::CR0ACK)));
                    self.smmuen = *on;
                    pending.push(Pending::Cr0 {
                        ack: lines.len() - 1,
                        want,
                    });
                }
                Step::Acknowledge { .. } => {
                    unreachable!("run_batch does not take acknowledgements")
                }
            }
        }
        self.prod = prod;
        let base = self.q.reply_seq();
        let r = self.q.batch(&lines, "pipelined steps")?;
        let irqs = self.q.take_irqs_seq();
        let val = |i: usize| r.get(i).copied().flatten().unwrap_or(0);

        let mut out = Vec::with_capacity(steps.len());
        let mut needs = Vec::new();
        let mut failed: Vec<u32> = Vec::new();
        for p in &pending {
            out.push(match *p {
                Pending::Done => StepOutcome::Done,
                Pending::Cr0 { ack, want } => {
                    if val(ack) as u32 != want {
                        return Err(HarnessError::Protocol {
                            backend: self.name.clone(),
                            during: "CR0 write".into(),
                            detail: format!(
                                "CR0 = {want:#x} but CR0ACK reads {:#x} right after",
                                val(ack)
                            ),
                        });
                    }
                    StepOutcome::Done
                }
                Pending::Cannot => StepOutcome::Probe(Observation::CannotObserve),
                Pending::Queue { first, cons } => {
                    let (lo, hi) = (base + first as u64, base + cons as u64);
                    let wired = irqs
                        .iter()
                        .filter(|&&(seq, n)| n == CMD_SYNC_IRQ && (lo..=hi).contains(&seq))
                        .count() as u32;
                    StepOutcome::Queue(QueueObservation {
                        cons: val(cons) as u32,
                        gerror: val(cons + 1) as u32 ^ self.gerror_base,
                        msi_writes: Vec::new(),
                        wired_irqs: wired,
                        sev_events: 0,
                    })
                }
                Pending::Probe {
                    sid,
                    addr,
                    read,
                    before,
                    tag,
                } => {
                    let after = val(read + 1) as u32 & EVQ_MASK;
                    self.evq_prod = after;
                    match dma::load32_result(val(read), tag) {
                        None => {
                            // This probe's SCRIPT did not run to its INT: its fetch went
                            // somewhere else than this backend expected (e.g. a configuration
                            // cached from before the trace changed it, §3.21). Whatever that
                            // engine still runs is stopped after this batch; until then its
                            // DMA may add event records, so no later fault in this batch is
                            // attributed (a translation proves itself through its tag).
                            failed.push(sid);
                            StepOutcome::Probe(Observation::CannotObserve)
                        }
                        Some(v) if v & TAG_MASK == TAG => {
                            let pa = u64::from(v & !TAG_MASK) << 12;
                            if self.tagged.contains(&pa) {
                                StepOutcome::Probe(Observation::Translated {
                                    pa: pa | (addr & (PAGE - 1)),
                                })
                            } else {
                                // Not a tag of ours: the trace's own data.
                                StepOutcome::Probe(Observation::CannotObserve)
                            }
                        }
                        Some(_) if failed.is_empty() => {
                            needs.push(NeedsEvents {
                                step: out.len(),
                                sid,
                                from: val(before) as u32 & EVQ_MASK,
                                to: after,
                            });
                            StepOutcome::Probe(Observation::CannotObserve)
                        }
                        Some(_) => StepOutcome::Probe(Observation::CannotObserve),
                    }
                }
            });
        }

        // One more exchange: the event records of probes that may have faulted, and a soft
        // reset of engines whose SCRIPT went astray.
        let mut lines = Vec::new();
        let mut ranges = Vec::with_capacity(needs.len());
        for n in &needs {
            let first = lines.len();
            let mut c = n.from;
            while c != n.to && lines.len() - first < (1 << EVENTQ_LOG2SIZE) {
                let pa = EVENTQ_PA + 32 * u64::from(c & ((1 << EVENTQ_LOG2SIZE) - 1));
                lines.push(qtest::readq(pa));
                c = (c + 1) & EVQ_MASK;
            }
            ranges.push(first..lines.len());
        }
        failed.sort_unstable();
        failed.dedup();
        for sid in failed {
            lines.extend(dma::soft_reset_one(sid));
        }
        if lines.is_empty() {
            return Ok(out);
        }
        let r = self.q.batch(&lines, "event queue read")?;
        for (n, range) in needs.iter().zip(ranges) {
            // Event record word 0: event number [7:0], StreamID [63:32] (§7.3). A faulting
            // read returns zeros, and QEMU may retry it in pieces, recording several events:
            // the first one of this StreamID is the probe's (method notes).
            let hit = r[range].iter().find_map(|w| {
                let w0 = w.unwrap_or(0);
                ((w0 >> 32) as u32 == n.sid).then_some(w0 as u8)
            });
            if let Some(id) = hit {
                out[n.step] = StepOutcome::Probe(Observation::Fault { event: Some(id) });
            }
        }
        Ok(out)
    }

    /// [`QemuDevice::run_batch`] in pieces of at most [`MAX_PROBES_PER_BATCH`] probes.
    fn run_batched(&mut self, steps: &[Step]) -> Result<Vec<StepOutcome>, HarnessError> {
        let mut out = Vec::with_capacity(steps.len());
        let mut start = 0;
        while start < steps.len() {
            let mut probes = 0;
            let mut end = start;
            while end < steps.len() {
                if matches!(steps[end], Step::Probe { .. }) {
                    if probes == MAX_PROBES_PER_BATCH {
                        break;
                    }
                    probes += 1;
                }
                end += 1;
            }
            out.extend(self.run_batch(&steps[start..end])?);
            start = end;
        }
        Ok(out)
    }
}

impl Device for QemuDevice {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            translation: true,
            // The SCRIPT only loads; a STORE probe is future work.
            write_probes: false,
            fault_events: true,
            cons: true,
            gerror: true,
            // CMD_SYNC interrupts and MSIs are not observed yet.
            msi: false,
        }
    }

    fn id_regs(&mut self) -> Result<IdRegs, HarnessError> {
        let r = self.q.batch(
            &[smmu::IDR0, smmu::IDR1, smmu::IDR3, smmu::IDR5, smmu::AIDR]
                .map(|o| qtest::readl(reg(o))),
            "ID register read",
        )?;
        let v = |i: usize| r[i].unwrap_or(0) as u32;
        // QEMU's SMMUv3 has no Secure or Realm programming interface: those stay zero.
        Ok(IdRegs {
            idr0: v(0),
            idr1: v(1),
            idr3: v(2),
            idr5: v(3),
            aidr: v(4),
            ..IdRegs::default()
        })
    }

    fn reset(&mut self) -> Result<(), HarnessError> {
        // Everything off first (CR0 = 0, acknowledged), then no error active (§6.3.20).
        smmu::write_cr0(&mut self.q, 0)?;
        smmu::clear_gerror(&mut self.q)?;
        let mut lines: Vec<String> = self
            .dirty_pages
            .iter()
            .map(|&p| qtest::memset(p, PAGE, 0))
            .collect();
        lines.push(qtest::memset(EVENTQ_PA, 32 << EVENTQ_LOG2SIZE, 0));
        lines.extend(dma::script_lines());
        // The backend's own tables for the SCRIPT page, stage 1 and stage 2: L2[0] -> L3,
        // L3[0] -> SCRIPT_PA, with the leaf attributes the trace builder uses.
        lines.extend([
            qtest::writeq(INJ_L2, INJ_L3 | 3),
            qtest::writeq(
                INJ_L3,
                leaf_descriptor(Granule::K4, 3, dma::SCRIPT_PA, &LeafSpec::S1, Stage::S1),
            ),
            qtest::writeq(INJ_S2_L2, INJ_S2_L3 | 3),
            qtest::writeq(
                INJ_S2_L3,
                leaf_descriptor(Granule::K4, 3, dma::SCRIPT_PA, &LeafSpec::S2, Stage::S2),
            ),
        ]);
        // A SCRIPT left running by an earlier case stops.
        lines.extend(dma::soft_reset_lines());
        lines.extend([
            qtest::writel(reg(smmu::CR1), 0),
            qtest::writel(reg(smmu::CR2), smmu::CR2_RECINVSID),
            qtest::writel(reg(smmu::IRQ_CTRL), 0),
            qtest::writeq(reg(smmu::STRTAB_BASE), 0),
            qtest::writel(reg(smmu::STRTAB_BASE_CFG), 0),
            qtest::writeq(reg(smmu::CMDQ_BASE_REG), smmu::cmdq_base_value()),
            qtest::writel(reg(smmu::CMDQ_PROD), 0),
            qtest::writel(reg(smmu::CMDQ_CONS), 0),
            qtest::writeq(
                reg(smmu::EVENTQ_BASE),
                (1 << 62) | EVENTQ_PA | u64::from(EVENTQ_LOG2SIZE),
            ),
            qtest::writel(reg(smmu::EVENTQ_PROD), 0),
            qtest::writel(reg(smmu::EVENTQ_CONS), 0),
        ]);
        self.q.batch(&lines, "SMMU reset")?;
        self.dirty_pages.clear();
        self.shadow = Memory::new();
        self.trace_pages.clear();
        self.targets.clear();
        self.tagged.clear();
        self.injected.clear();
        self.evq_prod = 0;
        self.strtab = (0, 0);
        self.smmuen = false;

        // Queues on, then invalidate everything cached by an earlier case (Linux's order:
        // CFGI_ALL, SYNC, TLBI_NSNH_ALL, SYNC; §4.3.3, §4.4.6).
        smmu::write_cr0(&mut self.q, CR0_CMDQEN | CR0_EVENTQEN)?;
        let (mut lines, prod) = smmu::enqueue_lines(
            0,
            &[smmu::CFGI_ALL, smmu::SYNC, smmu::TLBI_NSNH_ALL, smmu::SYNC],
        );
        lines.push(qtest::readl(reg(smmu::CMDQ_CONS)));
        lines.push(qtest::readl(reg(smmu::GERROR)));
        lines.push(qtest::readl(reg(smmu::GERRORN)));
        let r = self.q.batch(&lines, "SMMU reset invalidation")?;
        let n = r.len();
        let (cons, gerror, gerrorn) = (
            r[n - 3].unwrap_or(0) as u32,
            r[n - 2].unwrap_or(0) as u32,
            r[n - 1].unwrap_or(0) as u32,
        );
        if cons != prod || (gerror ^ gerrorn) & 1 != 0 {
            return Err(HarnessError::Protocol {
                backend: self.name.clone(),
                during: "SMMU reset invalidation".into(),
                detail: format!("PROD {prod:#x} but CONS {cons:#x}, GERROR {gerror:#x}"),
            });
        }
        // The harness starts every trace with PROD = CONS = 0: the Command queue must be
        // disabled to move them (§6.3.26-§6.3.27: writable only while CMDQEN == 0 is safe).
        smmu::write_cr0(&mut self.q, CR0_EVENTQEN)?;
        self.q.batch(
            &[
                qtest::writel(reg(smmu::CMDQ_PROD), 0),
                qtest::writel(reg(smmu::CMDQ_CONS), 0),
                qtest::memset(CMDQ_BASE, 16 << CMDQ_LOG2SIZE, 0),
            ],
            "SMMU reset",
        )?;
        smmu::write_cr0(&mut self.q, CR0_CMDQEN | CR0_EVENTQEN)?;
        self.prod = 0;
        self.gerror_base = gerrorn;
        let obs = self.queue_obs("SMMU reset")?;
        if obs.cons != 0 {
            return Err(HarnessError::Protocol {
                backend: self.name.clone(),
                during: "SMMU reset".into(),
                detail: format!("CONS reads {:#x} after being set to 0", obs.cons),
            });
        }
        Ok(())
    }

    fn write(&mut self, pa: u64, value: u64) -> Result<(), HarnessError> {
        // Deferred: sent with the next batch (every later step is one), so a trace's memory
        // writes cost no round trip each.
        self.q.defer(qtest::writeq(pa, value), "memory write")?;
        self.note_write(pa, value);
        Ok(())
    }

    fn stream_table(&mut self, base: u64, cfg: u32) -> Result<(), HarnessError> {
        self.q.batch(
            &[
                qtest::writeq(reg(smmu::STRTAB_BASE), base),
                qtest::writel(reg(smmu::STRTAB_BASE_CFG), cfg),
            ],
            "stream table registers",
        )?;
        self.strtab = (base, cfg);
        Ok(())
    }

    fn enable(&mut self, on: bool) -> Result<(), HarnessError> {
        let v = CR0_CMDQEN | CR0_EVENTQEN | if on { CR0_SMMUEN } else { 0 };
        smmu::write_cr0(&mut self.q, v)?;
        self.smmuen = on;
        Ok(())
    }

    fn submit(&mut self, commands: &[RawCommand]) -> Result<QueueObservation, HarnessError> {
        let step = Step::Submit {
            commands: commands.to_vec(),
        };
        match self.run_batch(std::slice::from_ref(&step))?.pop() {
            Some(StepOutcome::Queue(o)) => Ok(o),
            _ => unreachable!("a submission reports its queue"),
        }
    }

    fn acknowledge(
        &mut self,
        replace: Option<RawCommand>,
        drop: bool,
    ) -> Result<QueueObservation, HarnessError> {
        let size = 1u32 << CMDQ_LOG2SIZE;
        self.sync_irqs();
        let cons = self.q.readl(reg(smmu::CMDQ_CONS), "CONS read")?;
        // RD and its wrap bit; ERR [30:24] is not part of the index (§6.3.27).
        let rd = cons & ((size << 1) - 1);
        let mut lines = Vec::new();
        if let Some(c) = replace {
            let pa = CMDQ_BASE + 16 * u64::from(rd & (size - 1));
            lines.push(qtest::writeq(pa, c.0[0]));
            lines.push(qtest::writeq(pa + 8, c.0[1]));
        }
        if drop {
            lines.push(qtest::writel(reg(smmu::CMDQ_PROD), rd));
            self.prod = rd;
        }
        lines.push(qtest::readl(reg(smmu::GERROR)));
        lines.push(qtest::readl(reg(smmu::GERRORN)));
        let r = self.q.batch(&lines, "CMDQ_ERR acknowledgement")?;
        let n = r.len();
        let (g, gn) = (r[n - 2].unwrap_or(0) as u32, r[n - 1].unwrap_or(0) as u32);
        // GERRORN.CMDQ_ERR := GERROR.CMDQ_ERR acknowledges it (§7.1, §6.3.20).
        self.q.writel(
            reg(smmu::GERRORN),
            (gn & !1) | (g & 1),
            "CMDQ_ERR acknowledgement",
        )?;
        self.queue_obs("CMDQ_ERR acknowledgement")
    }

    fn probe(&mut self, probe: &Probe) -> Result<Observation, HarnessError> {
        Ok(self.probe_many(std::slice::from_ref(probe))?.remove(0))
    }

    fn probe_many(&mut self, probes: &[Probe]) -> Result<Vec<Observation>, HarnessError> {
        let steps: Vec<Step> = probes
            .iter()
            .map(|p| Step::Probe {
                sid: p.sid,
                ssid: p.ssid,
                addr: p.addr,
                write: p.write,
            })
            .collect();
        Ok(self
            .run_batched(&steps)?
            .into_iter()
            .map(|o| match o {
                StepOutcome::Probe(o) => o,
                _ => Observation::CannotObserve,
            })
            .collect())
    }

    fn run_steps(&mut self, steps: &[Step]) -> Result<Vec<StepOutcome>, HarnessError> {
        let mut out = Vec::with_capacity(steps.len());
        let mut i = 0;
        while i < steps.len() {
            let run = steps[i..].iter().take_while(|s| batchable(s)).count();
            if run > 0 {
                out.extend(self.run_batched(&steps[i..i + run])?);
                i += run;
                continue;
            }
            out.push(match &steps[i] {
                Step::Acknowledge { replace, drop } => {
                    StepOutcome::Queue(self.acknowledge(*replace, *drop)?)
                }
                _ => unreachable!("batchable steps are handled above"),
            });
            i += 1;
        }
        Ok(out)
    }
}
