//! The kernel backend (issue #7): the real Linux arm-smmu-v3 iommufd nesting path as a
//! [`Forwarder`]. A guest kernel, built by `scripts/kernel/build.sh`, runs under QEMU TCG with
//! a small agent (docs/kernel.md); a guest batch becomes one IOMMU_HWPT_INVALIDATE on its
//! vIOMMU, and the host commands are the entries QEMU's emulated SMMU (the "host") consumed,
//! read raw from the shared guest RAM.
//!
//! - [`guest`]: one QEMU child (killed on drop and on every error path), its agent socket and
//!   trace, with deadlines on every read; [`agent`]: the line protocol; [`trace`]: QEMU's
//!   trace lines and the fences; [`ram`]: raw queue entries and host STEs.
//! - The kernel chooses the host VMID and the StreamIDs are the devices' PCI requester IDs, so
//!   [`Forwarder::setup`] returns the mapping the oracle must judge with: the guest profile a
//!   VMM builds from IOMMU_GET_HW_INFO ([`guest_regs`]), the host's raw ID registers, the VMID
//!   read from the host STEs, and each case vSID on a device's pSID.
//! - A boot costs seconds, so guests are kept, one per distinct list of vSIDs (the vDEVICEs are
//!   made at setup), up to [`POOL`] at once, and reused across cases.

pub mod agent;
pub mod guest;
pub mod ram;
pub mod trace;

use crate::backend::{Aim, ForwardResult, Forwarder, HarnessError, VirtualSmmu};
use agent::HwInfo;
use guest::{Guest, KernelImage, Timeouts};
use smmu_model::command::RawCommand;
use smmu_model::profile::{IdRegs, Profile};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The backend spec: `kernel` or `kernel:/path/to/dir` (a directory with Image, initrd.gz and
/// version).
pub const SPEC: &str = "kernel";
/// The build cache (scripts/kernel/build.sh); `current/` holds the stable outputs.
pub const DEFAULT_CACHE: &str = "/var/cache/smmu-conform/kernel";
/// Endpoint devices the guest has (two `edu` functions, docs/kernel.md).
pub const DEVICES: usize = 2;
/// Guests kept at once by default (each a QEMU of about 130 MB resident, idle between
/// batches): enough for every vSID set the forwarder generator draws (21, once sorted), so a
/// fuzzing campaign boots each once; `SMMU_KERNEL_GUESTS` overrides it.
pub const POOL: usize = 24;
/// vSIDs given to devices a case does not map (they must have one): far from the vSIDs cases
/// and the generator use, so a command aimed at an unmapped vSID stays unmapped.
const SPARE_VSIDS: [u32; 3] = [0x3f, 0x3e, 0x3d];

/// Whether `spec` names the kernel backend.
pub fn is_kernel_spec(spec: &str) -> bool {
    let s = spec.trim();
    s == SPEC || s.starts_with("kernel:")
}

/// The directory a spec names: `kernel:DIR`, else `$SMMU_KERNEL_CACHE/current`.
pub fn kernel_dir(spec: &str) -> PathBuf {
    match spec.trim().strip_prefix("kernel:") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(
            &std::env::var("SMMU_KERNEL_CACHE").unwrap_or_else(|_| DEFAULT_CACHE.to_string()),
        )
        .join("current"),
    }
}

/// Find the kernel, its initrd and QEMU; a one-line error naming the build script otherwise.
pub fn locate(spec: &str) -> Result<KernelImage, HarnessError> {
    let dir = kernel_dir(spec);
    let image = dir.join("Image");
    let initrd = dir.join("initrd.gz");
    for p in [&image, &initrd] {
        if !p.is_file() {
            return Err(HarnessError::Setup(format!(
                "backend {spec}: {} is missing; build it with `sudo bash scripts/kernel/build.sh`",
                p.display()
            )));
        }
    }
    let version = std::fs::read_to_string(dir.join("version"))
        .map(|v| v.lines().next().unwrap_or("").trim().to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown version".into());
    let qemu = crate::open::qemu_on_path();
    if !qemu.is_file() {
        return Err(HarnessError::Setup(format!(
            "backend {spec}: {} is missing; run `sudo bash scripts/install-qemu.sh`",
            qemu.display()
        )));
    }
    Ok(KernelImage {
        qemu,
        image,
        initrd,
        version,
    })
}

fn secs_env(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&s| s > 0)
            .unwrap_or(default),
    )
}

/// The guest profile a VMM builds from IOMMU_GET_HW_INFO: the host's ID registers, keeping
/// only the fields the uAPI comment of `struct iommu_hw_info_arm_smmuv3`
/// (include/uapi/linux/iommufd.h) lets a VMM pass on to a stage-1-only vSMMU (IDR0: ST_LEVEL,
/// TERM_MODEL, STALL_MODEL, TTENDIAN, CD2L, ASID16, TTF; IDR1: SIDSIZE, SSIDSIZE; IDR3: BBML,
/// RIL; IDR5: VAX, GRAN64K, GRAN16K, GRAN4K, DS), with S1P and COHACC set (a nested HWPT exists,
/// iommufd requires coherency), and the queue sizes and OAS, which no command depends on.
pub fn guest_regs(h: &HwInfo) -> IdRegs {
    let [i0, i1, _, i3, _, i5] = h.idr;
    // IDR0: TTF[3:2], ASID16[12], CD2L[19], TTENDIAN[22:21], STALL_MODEL[25:24],
    // TERM_MODEL[26], ST_LEVEL[28:27]; S1P[1] and COHACC[4] set.
    let idr0_keep = 0b11 << 2 | 1 << 12 | 1 << 19 | 0b11 << 21 | 0b11 << 24 | 1 << 26 | 0b11 << 27;
    // IDR1: SIDSIZE[5:0], SSIDSIZE[10:6], PRIQS[15:11], EVENTQS[20:16], CMDQS[25:21].
    let idr1_keep = (1 << 26) - 1;
    // IDR3: RIL[10], BBML[12:11].
    let idr3_keep = 1 << 10 | 0b11 << 11;
    // IDR5: OAS[2:0], GRAN4K[4], GRAN16K[5], GRAN64K[6], DS[7], VAX[11:10].
    let idr5_keep = 0b111 | 0b1111 << 4 | 0b11 << 10;
    IdRegs {
        idr0: i0 & idr0_keep | 1 << 1 | 1 << 4,
        idr1: i1 & idr1_keep,
        idr3: i3 & idr3_keep,
        idr5: i5 & idr5_keep,
        aidr: h.aidr,
        ..IdRegs::default()
    }
}

/// What a case's guest profile needs that the kernel's vSMMU does not offer (empty: it can run).
pub fn lacking(case: &IdRegs, kernel: &IdRegs) -> Vec<String> {
    let (c, k) = (Profile::from_regs(*case), Profile::from_regs(*kernel));
    let mut out = Vec::new();
    for (name, want, have) in [
        ("stage 2 (S2P)", c.s2p, k.s2p),
        ("Hyp", c.hyp, k.hyp),
        ("ATS", c.ats, k.ats),
        ("PRI", c.pri, k.pri),
        ("16-bit ASIDs", c.asid16, k.asid16),
        ("range invalidation (RIL)", c.ril, k.ril),
        ("DS", c.ds, k.ds),
        ("D128", c.d128, k.d128),
        ("the 4K granule", c.gran4k, k.gran4k),
        ("the 16K granule", c.gran16k, k.gran16k),
        ("the 64K granule", c.gran64k, k.gran64k),
        ("Secure state", case.s_idr1 >> 31 != 0, false),
        ("RME", c.rme_impl, k.rme_impl),
    ] {
        if want && !have {
            out.push(name.to_string());
        }
    }
    if c.ssidsize > k.ssidsize {
        out.push(format!("{} SubstreamID bits", c.ssidsize));
    }
    if c.vax > k.vax {
        out.push("a larger VA (VAX)".into());
    }
    if c.stall_model != k.stall_model && c.stall_model != 0b01 {
        out.push("stalls (STALL_MODEL)".into());
    }
    out
}

/// The Linux kernel's nested invalidation path.
pub struct KernelForwarder {
    spec: String,
    image: KernelImage,
    timeouts: Timeouts,
    /// Booted guests, most recently used last.
    pool: Vec<Guest>,
    pool_size: usize,
    /// The guest the last successful setup chose (an index into `pool`).
    current: Option<usize>,
    /// The host's hwinfo, once a guest has said it (the same for every guest of this kernel
    /// and QEMU): cases the kernel cannot run are skipped without a boot.
    hwinfo: Option<HwInfo>,
    /// Boots so far and their total time (docs/performance.md).
    pub boots: u32,
    pub boot_time: Duration,
}

impl KernelForwarder {
    pub fn open(spec: &str) -> Result<KernelForwarder, HarnessError> {
        let image = locate(spec)?;
        Ok(KernelForwarder {
            spec: spec.trim().to_string(),
            image,
            timeouts: Timeouts {
                boot: secs_env("SMMU_KERNEL_BOOT_TIMEOUT", 120),
                op: secs_env("SMMU_KERNEL_TIMEOUT", 30),
            },
            pool: Vec::new(),
            pool_size: std::env::var("SMMU_KERNEL_GUESTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(POOL),
            current: None,
            hwinfo: None,
            boots: 0,
            boot_time: Duration::ZERO,
        })
    }

    /// The QEMU process ids of the guests kept (tests check none outlives the forwarder).
    pub fn pids(&self) -> Vec<u32> {
        self.pool.iter().map(|g| g.pid()).collect()
    }

    /// The /dev/shm directories of the guests kept (tests check they are gone once up).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.pool.iter().map(|g| g.dir().to_path_buf()).collect()
    }

    pub fn version(&self) -> &str {
        &self.image.version
    }

    fn refuse(&self, what: String) -> HarnessError {
        HarnessError::Unsupported {
            backend: self.spec.clone(),
            what,
        }
    }

    /// The guest for `vsids`, booted if none is kept.
    fn guest_for(&mut self, vsids: &[u32]) -> Result<usize, HarnessError> {
        self.pool.retain(|g| !g.dead);
        if let Some(i) = self.pool.iter().position(|g| g.vsids == vsids) {
            let g = self.pool.remove(i);
            self.pool.push(g);
            return Ok(self.pool.len() - 1);
        }
        if self.pool.len() >= self.pool_size {
            // Least recently used first.
            self.pool.remove(0).quit();
        }
        let g = Guest::boot(&self.image, vsids, self.timeouts)?;
        self.boots += 1;
        self.boot_time += g.boot_time;
        self.hwinfo = Some(g.hwinfo);
        self.pool.push(g);
        Ok(self.pool.len() - 1)
    }

    /// The current guest (after a successful setup).
    fn guest(&mut self, during: &str) -> Result<&mut Guest, HarnessError> {
        match self.current {
            Some(i) if i < self.pool.len() => Ok(&mut self.pool[i]),
            _ => Err(HarnessError::Protocol {
                backend: self.spec.clone(),
                during: during.into(),
                detail: "forward before a successful setup".into(),
            }),
        }
    }

    /// A malformed uAPI call on the current guest (interface-contract checks, `forward --raw`).
    pub fn raw(
        &mut self,
        entry_len: u32,
        entry_num: u32,
        bytes: &[u8],
    ) -> Result<(agent::IoctlResult, Vec<RawCommand>), HarnessError> {
        let r = self.guest("raw")?.raw(entry_len, entry_num, bytes);
        if r.is_err() {
            self.current = None;
        }
        r
    }
}

impl Forwarder for KernelForwarder {
    fn name(&self) -> String {
        format!(
            "Linux {} (iommufd vIOMMU, QEMU TCG host SMMU)",
            self.image.version
        )
    }

    fn setup(&mut self, vs: &VirtualSmmu) -> Result<VirtualSmmu, HarnessError> {
        self.current = None;
        if vs.sids.len() > DEVICES {
            return Err(self.refuse(format!(
                "map {} devices (the guest has {DEVICES})",
                vs.sids.len()
            )));
        }
        for (i, &(v, p)) in vs.sids.iter().enumerate() {
            if vs.sids[..i].iter().any(|&(v2, _)| v2 == v) {
                return Err(self.refuse(format!(
                    "map vSID {v:#x} twice (to {p:#x} as well): the kernel takes one vDEVICE per vSID"
                )));
            }
        }
        if let Some(h) = &self.hwinfo {
            let why = lacking(&vs.guest, &guest_regs(h));
            if !why.is_empty() {
                return Err(self.refuse(format!(
                    "offer a guest with {}: the kernel's vSMMU (IOMMU_GET_HW_INFO) lacks it",
                    why.join(", ")
                )));
            }
        }
        let mut vsids: Vec<u32> = vs.sids.iter().map(|&(v, _)| v).collect();
        for s in SPARE_VSIDS {
            if vsids.len() < DEVICES && !vsids.contains(&s) {
                vsids.push(s);
            }
        }
        // Which device gets which vSID does not matter (the kernel's pSIDs are the devices'
        // own, whatever the case says): one guest serves every order of the same vSIDs.
        vsids.sort_unstable();
        let i = self.guest_for(&vsids)?;
        let g = &self.pool[i];
        let kguest = guest_regs(&g.hwinfo);
        let why = lacking(&vs.guest, &kguest);
        if !why.is_empty() {
            return Err(self.refuse(format!(
                "offer a guest with {}: the kernel's vSMMU (IOMMU_GET_HW_INFO) lacks it",
                why.join(", ")
            )));
        }
        let eff = VirtualSmmu {
            guest: kguest,
            host: g.hwinfo.regs(),
            host_vmid: g.host_vmid,
            sids: g
                .vsids
                .iter()
                .copied()
                .zip(g.psids.iter().copied())
                .collect(),
        };
        self.current = Some(i);
        Ok(eff)
    }

    fn forward(&mut self, guest: &[RawCommand]) -> Result<ForwardResult, HarnessError> {
        let r = self.guest("forward")?.batch(guest);
        let (res, host) = match r {
            Ok(x) => x,
            Err(e) => {
                self.current = None;
                return Err(e);
            }
        };
        let handled = usize::try_from(res.entry_num).unwrap_or(usize::MAX);
        let error = (res.rc != 0).then(|| {
            (
                handled,
                format!(
                    "IOMMU_HWPT_INVALIDATE rc={} errno={} ({}), entry_num={}",
                    res.rc,
                    res.errno,
                    agent::errno_name(res.errno),
                    res.entry_num
                ),
            )
        });
        Ok(ForwardResult {
            host_commands: host,
            error,
            handled,
        })
    }

    fn aim(&self) -> Option<Aim> {
        self.hwinfo.as_ref().map(aim)
    }
}

impl Drop for KernelForwarder {
    fn drop(&mut self) {
        // Each guest's QEMU is killed as it drops; nothing else to release.
        self.pool.clear();
        if std::env::var_os("SMMU_KERNEL_DEBUG").is_some() {
            eprintln!(
                "kernel: {} guest boot(s), {:.1} s from QEMU start to setup in total",
                self.boots,
                self.boot_time.as_secs_f64()
            );
        }
    }
}

/// What the kernel's vSMMU honours, from its IOMMU_GET_HW_INFO: the guest profile a VMM builds
/// ([`guest_regs`]), the host's registers, the devices, and the opcodes
/// arm_vsmmu_convert_user_cmd() (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-iommufd.c) forwards;
/// it returns -EIO for every other opcode, and takes ATC_INV only on a host with ATS
/// (arm_vsmmu_validate_user_cmd()), which the guest profile then offers.
pub fn aim(h: &HwInfo) -> Aim {
    let guest = guest_regs(h);
    use smmu_model::command::Opcode as O;
    let mut accepts = vec![
        O::TlbiNsnhAll,
        O::TlbiNhAll,
        O::TlbiNhAsid,
        O::TlbiNhVa,
        O::TlbiNhVaa,
        O::CfgiCd,
        O::CfgiCdAll,
    ];
    if Profile::from_regs(guest).ats {
        accepts.push(O::AtcInv);
    }
    Aim {
        guest,
        host: h.regs(),
        devices: DEVICES,
        accepts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_profiles() {
        assert!(is_kernel_spec("kernel"));
        assert!(is_kernel_spec("kernel:/tmp/k"));
        assert!(!is_kernel_spec("kernelx"));
        assert_eq!(kernel_dir("kernel:/tmp/k"), PathBuf::from("/tmp/k"));
        let e = locate("kernel:/nonexistent/dir").err().unwrap().to_string();
        assert!(e.contains("sudo bash scripts/kernel/build.sh"), "{e}");
        assert!(!e.contains('\n'));
        // QEMU 10.0's SMMU as hwinfo reports it: the guest is stage-1 only, keeps RIL.
        let q = Profile::named("qemu-10.0").unwrap().regs;
        let h = HwInfo {
            idr: [q.idr0, q.idr1, 0, q.idr3, 0, q.idr5],
            iidr: 0,
            aidr: q.aidr,
        };
        let g = Profile::from_regs(guest_regs(&h));
        assert!(g.s1p && !g.s2p && !g.hyp && !g.ats);
        assert_eq!(g.ril, Profile::from_regs(q).ril);
        assert!(lacking(&guest_regs(&h), &guest_regs(&h)).is_empty());
        let mut want = guest_regs(&h);
        want.idr0 |= 1 | 1 << 10;
        assert_eq!(
            lacking(&want, &guest_regs(&h)),
            vec!["stage 2 (S2P)", "ATS"]
        );
    }
}
