//! One guest: QEMU (the emulated host SMMU) running the kernel under test with the agent, on the
//! command line of docs/kernel.md. The QEMU child is [`QemuProcess`] (the QEMU backend's):
//! killed on drop, on every error and on every timeout, and when the thread that started it
//! ends. Every read (agent socket, trace) is bounded by a deadline.
//!
//! Fences: QEMU traces `virtio_console_flush_buf` (with the byte count passed to the chardev)
//! when the guest writes to the agent port, after every host-queue trace line the same vCPU
//! caused before the write. So once the trace has accounted for every byte received on the
//! socket, every host command of the exchange is in the trace seen so far, and nothing of the
//! next exchange (the guest waits for the next line) is.

use super::agent::{self, HwInfo, IoctlResult};
use super::ram::Ram;
use super::trace::{self, HostState};
use crate::backend::qemu::process::QemuProcess;
use crate::backend::HarnessError;
use smmu_model::command::RawCommand;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// Guest RAM (docs/kernel.md): 512 MiB at GPA 0x4000_0000.
pub const RAM_SIZE: u64 = 512 << 20;
/// Console lines kept for error messages.
const CONSOLE_TAIL: usize = 40;

/// Where the kernel under test is.
#[derive(Clone, Debug)]
pub struct KernelImage {
    pub qemu: PathBuf,
    pub image: PathBuf,
    pub initrd: PathBuf,
    /// `$DIR/version`: the kernel release and the Debian source package version.
    pub version: String,
}

/// Bounds on the guest's answers.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From QEMU's start to the agent's `ready`.
    pub boot: Duration,
    /// One exchange (setup, batch) with its fence.
    pub op: Duration,
}

/// A directory of this process's own under /dev/shm (the RAM file must be shared memory to be
/// cheap), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, HarnessError> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        for _ in 0..100 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let p = root.join(format!(
                "smmu-conform-kernel.{}.{}.{nanos:x}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(TempDir(p)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(HarnessError::Setup(format!(
                        "cannot create a directory in {}: {e}",
                        root.display()
                    )))
                }
            }
        }
        Err(HarnessError::Setup(
            "cannot create a temporary directory".into(),
        ))
    }
}

impl TempDir {
    fn remove_now(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The QEMU command line of docs/kernel.md.
pub fn command_line(k: &KernelImage, mem: &Path, sock: &Path) -> Vec<String> {
    let s = |x: &str| x.to_string();
    vec![
        s("-M"),
        s("virt,iommu=smmuv3,gic-version=3,memory-backend=mem"),
        s("-cpu"),
        s("max"),
        s("-m"),
        s("512M"),
        s("-object"),
        format!(
            "memory-backend-file,id=mem,size=512M,mem-path={},share=on",
            mem.display()
        ),
        s("-nographic"),
        s("-no-reboot"),
        s("-kernel"),
        k.image.display().to_string(),
        s("-initrd"),
        k.initrd.display().to_string(),
        s("-append"),
        // iommu.passthrough=1: the guest's own DMA (the virtio-serial port of the agent) uses
        // identity domains, so it puts no command on the host queue between two fences; the
        // vfio-bound devices under test get iommufd domains whatever this says.
        s("console=ttyAMA0 quiet panic=-1 iommu.passthrough=1"),
        s("-device"),
        s("edu"),
        s("-device"),
        s("edu"),
        s("-device"),
        s("virtio-serial-pci"),
        s("-chardev"),
        format!("socket,id=agent,path={},server=on,wait=off", sock.display()),
        s("-device"),
        s("virtserialport,chardev=agent,name=smmu-conform.agent"),
        s("-trace"),
        s("smmuv3_cmdq_consume*"),
        s("-trace"),
        s("smmuv3_write_mmio"),
        s("-trace"),
        s("virtio_console_flush_buf"),
    ]
}

pub struct Guest {
    // Field order is drop order: QEMU is killed before its directory is removed.
    proc: QemuProcess,
    trace: Receiver<String>,
    sock: UnixStream,
    ram: Option<Ram>,
    _dir: TempDir,
    name: String,
    timeouts: Timeouts,
    rbuf: Vec<u8>,
    /// Bytes received from the agent so far (the fence target).
    received: u64,
    host: HostState,
    console: VecDeque<String>,
    /// SMMU_KERNEL_DEBUG=1: every trace line of a window goes to stderr.
    debug: bool,
    /// Set after any error: the guest is not used again.
    pub dead: bool,
    pub hwinfo: HwInfo,
    /// The StreamID of each device, in the agent's device order.
    pub psids: Vec<u32>,
    /// The vSIDs set up, in device order.
    pub vsids: Vec<u32>,
    /// The host VMID the kernel chose (S2VMID of the devices' host STEs).
    pub host_vmid: u16,
    /// From QEMU's start to `setup ok` with the STEs read.
    pub boot_time: Duration,
}

impl Guest {
    /// Boot a guest and set up its vIOMMU with `vsids` (one per device, in device order).
    pub fn boot(k: &KernelImage, vsids: &[u32], timeouts: Timeouts) -> Result<Guest, HarnessError> {
        let start = Instant::now();
        let dir = TempDir::new()?;
        let mem = dir.0.join("ram");
        let sock_path = dir.0.join("agent.sock");
        let args = command_line(k, &mem, &sock_path);
        let (mut proc, trace) = QemuProcess::spawn_traced(&k.qemu, &args)?;
        let name = format!("kernel({})", k.version);
        let deadline = start + timeouts.boot;
        // The socket exists once QEMU has parsed its command line; connect before the agent
        // writes (data written to an unconnected port is discarded).
        let sock = loop {
            match UnixStream::connect(&sock_path) {
                Ok(s) => break s,
                Err(e) => {
                    if let Some(status) = proc.exit_status() {
                        return Err(HarnessError::Crashed {
                            backend: name,
                            during: "start".into(),
                            detail: format!(
                                "QEMU exited ({status}) before its agent socket opened: {}",
                                last_line(&proc.stderr_tail())
                            ),
                        });
                    }
                    if Instant::now() > deadline {
                        return Err(HarnessError::Timeout {
                            backend: name,
                            ms: timeouts.boot.as_millis() as u64,
                            during: format!("connecting to the agent socket ({e})"),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| HarnessError::Setup(format!("agent socket: {e}")))?;
        // QEMU creates the RAM file just after the socket.
        let ram = loop {
            match Ram::open(&mem, RAM_SIZE) {
                Ok(r) => break r,
                Err(e) => {
                    if proc.exit_status().is_some() || Instant::now() > deadline {
                        return Err(HarnessError::Crashed {
                            backend: name,
                            during: "start".into(),
                            detail: format!("cannot open the guest RAM file: {e}"),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        };
        // Both names have served (the socket is connected, the RAM file open on both sides):
        // removing them now means a harness killed by a signal (no Drop) leaves nothing in
        // /dev/shm; the memory goes when QEMU (PR_SET_PDEATHSIG) and this process close it.
        dir.remove_now();
        let mut g = Guest {
            proc,
            trace,
            sock,
            ram: Some(ram),
            _dir: dir,
            name,
            timeouts,
            rbuf: Vec::new(),
            received: 0,
            host: HostState::default(),
            console: VecDeque::new(),
            dead: false,
            debug: std::env::var_os("SMMU_KERNEL_DEBUG").is_some(),
            hwinfo: HwInfo::default(),
            psids: Vec::new(),
            vsids: vsids.to_vec(),
            host_vmid: 0,
            boot_time: Duration::ZERO,
        };
        let r = g.handshake(deadline).and_then(|()| g.setup(vsids));
        if r.is_err() {
            g.dead = true;
        }
        r?;
        g.boot_time = start.elapsed();
        Ok(g)
    }

    /// The guest's directory under /dev/shm (gone once the guest is up).
    pub fn dir(&self) -> &Path {
        &self._dir.0
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn crashed(&mut self, during: &str, detail: String) -> HarnessError {
        self.dead = true;
        self.proc.kill();
        HarnessError::Crashed {
            backend: self.name.clone(),
            during: during.to_string(),
            detail: format!("{detail}{}", self.context()),
        }
    }

    fn timeout(&mut self, during: &str, bound: Duration) -> HarnessError {
        self.dead = true;
        self.proc.kill();
        HarnessError::Timeout {
            backend: self.name.clone(),
            ms: bound.as_millis() as u64,
            during: format!("{during}{}", self.context()),
        }
    }

    /// The last console lines and QEMU's last stderr line, for error messages.
    fn context(&mut self) -> String {
        self.drain_console();
        let console: Vec<&str> = self
            .console
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|s| s.as_str())
            .collect();
        let mut s = String::new();
        if !console.is_empty() {
            s.push_str(&format!(" (console: {})", console.join(" | ")));
        }
        let err = last_line(
            &self
                .proc
                .stderr_tail()
                .lines()
                .filter(|l| trace::parse(l).is_none() && !l.contains("smmuv3_"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        if !err.is_empty() {
            s.push_str(&format!(" (QEMU: {err})"));
        }
        s
    }

    fn drain_console(&mut self) {
        while let Ok(lines) = self.proc.lines.try_recv() {
            for l in lines {
                if !l.trim().is_empty() {
                    self.console.push_back(l);
                }
            }
            while self.console.len() > CONSOLE_TAIL {
                self.console.pop_front();
            }
        }
    }

    fn send(&mut self, line: &str, during: &str) -> Result<(), HarnessError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        // The socket send buffer may fill while QEMU waits for the guest to take the data:
        // write with a timeout, as reads have.
        let _ = self.sock.set_write_timeout(Some(self.timeouts.op));
        if let Err(e) = self.sock.write_all(&bytes) {
            return Err(
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    self.timeout(during, self.timeouts.op)
                } else {
                    self.crashed(during, format!("cannot write to the agent: {e}"))
                },
            );
        }
        Ok(())
    }

    /// The agent's next line, by `deadline`. An `error ...` line is a crash of the agent.
    fn read_line(&mut self, during: &str, deadline: Instant) -> Result<String, HarnessError> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self.rbuf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.rbuf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if line.starts_with("error") {
                    return Err(self.crashed(during, format!("the agent failed: {line}")));
                }
                return Ok(line);
            }
            self.drain_console();
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    let status = self.proc.exit_status().unwrap_or_else(|| "running".into());
                    return Err(
                        self.crashed(during, format!("the agent closed its port (QEMU {status})"))
                    );
                }
                Ok(n) => {
                    self.received += n as u64;
                    self.rbuf.extend_from_slice(&buf[..n]);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if let Some(status) = self.proc.exit_status() {
                        return Err(self.crashed(during, format!("QEMU exited ({status})")));
                    }
                    if Instant::now() > deadline {
                        // The bound that ran out: the boot's while booting, else one exchange's.
                        let bound = if during == "boot" {
                            self.timeouts.boot
                        } else {
                            self.timeouts.op
                        };
                        return Err(self.timeout(during, bound));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.crashed(during, format!("agent socket: {e}"))),
            }
        }
    }

    /// Apply trace events until QEMU has accounted for every byte received from the agent.
    fn fence(&mut self, during: &str, deadline: Instant) -> Result<(), HarnessError> {
        while self.host.flushed < self.received {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .trace
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => {
                    if self.debug {
                        eprintln!("trace: {line}");
                    }
                    if let Some(e) = trace::parse(&line) {
                        self.host.apply(e);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.proc.exit_status() {
                        return Err(self.crashed(during, format!("QEMU exited ({status})")));
                    }
                    if Instant::now() > deadline {
                        return Err(self.timeout(
                            &format!(
                                "{during}: waiting for the trace fence ({} of {} bytes)",
                                self.host.flushed, self.received
                            ),
                            self.timeouts.op,
                        ));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.crashed(during, "QEMU's stderr closed".into()))
                }
            }
        }
        Ok(())
    }

    /// Host commands consumed since the last fence, read from guest RAM.
    fn window(&mut self, during: &str) -> Result<Vec<RawCommand>, HarnessError> {
        let (slots, errors) = self.host.take_window();
        if !errors.is_empty() {
            // The kernel replaces the failing entry (with a CMD_SYNC) before it can be read
            // here, so the command itself is lost: say so rather than judge a wrong list.
            return Err(self.crashed(
                during,
                format!(
                    "the host queue raised a command error ({}): a guest command made the host \
                     SMMU stop (FWD-HOST-ILL), the failing entry cannot be read back",
                    errors.join("; ")
                ),
            ));
        }
        let size = 1usize << self.host.cmdq_log2size();
        if slots.len() > size {
            return Err(self.crashed(
                during,
                format!(
                    "{} host commands in one batch wrap the {size}-entry host queue: entries \
                     were overwritten before they could be read",
                    slots.len()
                ),
            ));
        }
        let base = self.host.cmdq_addr();
        let mut out = Vec::with_capacity(slots.len());
        for s in slots {
            match self.ram().and_then(|r| r.command(base + 16 * u64::from(s))) {
                Ok(c) => out.push(c),
                Err(e) => return Err(self.crashed(during, e)),
            }
        }
        Ok(out)
    }

    fn ram(&self) -> Result<&Ram, String> {
        self.ram
            .as_ref()
            .ok_or_else(|| "the guest RAM file is not open".to_string())
    }

    fn handshake(&mut self, deadline: Instant) -> Result<(), HarnessError> {
        let during = "boot";
        let hello = self.read_line(during, deadline)?;
        if hello != format!("hello {}", agent::VERSION) {
            return Err(self.crashed(during, format!("expected `hello 1`, got '{hello}'")));
        }
        let hw = self.read_line(during, deadline)?;
        self.hwinfo = agent::parse_hwinfo(&hw).map_err(|e| self.protocol(during, e))?;
        loop {
            let l = self.read_line(during, deadline)?;
            if l == "ready" {
                break;
            }
            let (i, sid) = agent::parse_device(&l).map_err(|e| self.protocol(during, e))?;
            if i != self.psids.len() {
                return Err(self.protocol(during, format!("device {i} out of order")));
            }
            self.psids.push(sid);
        }
        self.fence(during, deadline)?;
        self.host.take_window();
        Ok(())
    }

    fn protocol(&mut self, during: &str, detail: String) -> HarnessError {
        self.dead = true;
        self.proc.kill();
        HarnessError::Protocol {
            backend: self.name.clone(),
            during: during.to_string(),
            detail,
        }
    }

    fn setup(&mut self, vsids: &[u32]) -> Result<(), HarnessError> {
        let during = "setup";
        if vsids.len() != self.psids.len() {
            return Err(self.protocol(
                during,
                format!(
                    "{} vSIDs for the {} devices the guest has",
                    vsids.len(),
                    self.psids.len()
                ),
            ));
        }
        let deadline = Instant::now() + self.timeouts.op;
        self.send(&agent::setup_line(vsids), during)?;
        let l = self.read_line(during, deadline)?;
        match agent::parse_setup(&l).map_err(|e| self.protocol(during, e))? {
            Ok(_viommu) => {}
            Err(why) => {
                // The kernel refused the vIOMMU set-up itself: nothing can be judged.
                self.dead = true;
                self.proc.kill();
                return Err(HarnessError::Setup(format!(
                    "{}: the guest agent could not set up the vIOMMU: {why}",
                    self.name
                )));
            }
        }
        self.fence(during, deadline)?;
        self.host.take_window();
        let mut vmid = None;
        for &p in &self.psids.clone() {
            let (base, cfg) = (self.host.strtab_base, self.host.strtab_cfg);
            let ste = self
                .ram()
                .and_then(|r| r.ste(base, cfg, p))
                .map_err(|e| self.protocol(during, e))?;
            // Config 0b11x: stage 2 on (nested, or stage-2 only with a bypassed stage 1).
            if !ste.v || ste.config_raw & 0b110 != 0b110 {
                return Err(self.protocol(
                    during,
                    format!(
                        "the host STE of StreamID {p:#x} is not a nested one after setup (V {}, Config {:#b})",
                        ste.v, ste.config_raw
                    ),
                ));
            }
            if vmid.is_some_and(|v| v != ste.s2vmid) {
                return Err(self.protocol(
                    during,
                    "the guest's devices run under different host VMIDs".into(),
                ));
            }
            vmid = Some(ste.s2vmid);
        }
        self.host_vmid = vmid.unwrap_or(0);
        Ok(())
    }

    /// One IOMMU_HWPT_INVALIDATE with `cmds`: what it returned and the host commands it issued.
    pub fn batch(
        &mut self,
        cmds: &[RawCommand],
    ) -> Result<(IoctlResult, Vec<RawCommand>), HarnessError> {
        self.exchange(&agent::batch_line(cmds), "forward")
    }

    /// A malformed call (`raw` line): what it returned and the host commands it issued.
    pub fn raw(
        &mut self,
        entry_len: u32,
        entry_num: u32,
        bytes: &[u8],
    ) -> Result<(IoctlResult, Vec<RawCommand>), HarnessError> {
        self.exchange(&agent::raw_line(entry_len, entry_num, bytes), "raw")
    }

    fn exchange(
        &mut self,
        line: &str,
        during: &str,
    ) -> Result<(IoctlResult, Vec<RawCommand>), HarnessError> {
        if self.dead {
            return Err(HarnessError::Crashed {
                backend: self.name.clone(),
                during: during.into(),
                detail: "the guest failed earlier".into(),
            });
        }
        let deadline = Instant::now() + self.timeouts.op;
        // Anything traced since the last fence is not this exchange's.
        loop {
            match self.trace.try_recv() {
                Ok(l) => {
                    if let Some(e) = trace::parse(&l) {
                        self.host.apply(e);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    return Err(self.crashed(during, "QEMU's stderr closed".into()))
                }
            }
        }
        self.host.take_window();
        self.send(line, during)?;
        let l = self.read_line(during, deadline)?;
        let r = agent::parse_result(&l).map_err(|e| self.protocol(during, e))?;
        self.fence(during, deadline)?;
        let host = self.window(during)?;
        Ok((r, host))
    }

    /// Ask the agent to quit (init powers the guest off); QEMU is killed on drop anyway.
    pub fn quit(mut self) {
        let _ = self.send("quit", "quit");
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}
