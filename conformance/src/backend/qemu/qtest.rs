//! A client for QEMU's qtest line protocol over the child's stdin/stdout (`-qtest stdio`).
//!
//! Every command gets exactly one reply line, `OK [value]` or `FAIL reason`; asynchronous
//! `IRQ raise N` / `IRQ lower N` lines may arrive in between and are counted, not taken for
//! replies. Every wait for a reply is bounded by the configured timeout; on a timeout, a crash
//! or a reply that makes no sense, QEMU is killed and a [`HarnessError`] returned, so the
//! client is unusable afterwards (every later call fails fast with the same kind of error).

use super::process::QemuProcess;
use crate::backend::HarnessError;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// Bytes of lines sent before their replies are read: well under the 64 KiB pipe buffer, and
/// the pipe is empty when a chunk is written (every earlier line has its reply), so a write
/// never blocks on a QEMU that stopped reading (SIGSTOP) and the timeout stays in charge.
/// About a thousand lines: one round trip per chunk, QEMU never waits for the client in between.
const CHUNK_BYTES: usize = 32 * 1024;
/// Until [`Qtest::started`], exchanges are bounded by at least this: QEMU's first reply comes
/// once it has started, and the backend's setup (PCI enumeration of its DMA engines) is slow on a
/// loaded machine; a short per-exchange timeout must not mistake that for a hang.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Deferred lines are sent on their own once this many are waiting.
const DEFER_LINES: usize = 1024;

pub struct Qtest {
    proc: Option<QemuProcess>,
    backend: String,
    timeout: Duration,
    /// `IRQ raise` lines seen since the last [`Qtest::take_irqs`]: (the number of replies
    /// received before it, the interrupt number). QEMU raises an interrupt while it executes a
    /// line, before that line's reply, so the count is the global index of that line.
    irqs_raised: Vec<(u64, u32)>,
    /// Replies received since the start.
    replies: u64,
    /// Set up is over: every exchange is bounded by `timeout` alone.
    started: bool,
    pid: u32,
    /// Writes whose replies carry nothing (`OK`): sent with the next batch, saving a round trip
    /// per trace memory write. Bounded by [`DEFER_LINES`].
    deferred: Vec<String>,
    /// Lines received and not yet consumed.
    received: std::collections::VecDeque<String>,
}

impl Qtest {
    pub fn spawn(
        binary: &Path,
        args: &[String],
        backend: &str,
        timeout: Duration,
    ) -> Result<Self, HarnessError> {
        let proc = QemuProcess::spawn(binary, args)?;
        let pid = proc.pid();
        Ok(Qtest {
            proc: Some(proc),
            backend: backend.to_string(),
            timeout,
            irqs_raised: Vec::new(),
            replies: 0,
            started: false,
            pid,
            deferred: Vec::new(),
            received: std::collections::VecDeque::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Set up is over: from now on every exchange has `timeout`, not the start-up bound.
    pub fn started(&mut self) {
        self.started = true;
    }

    /// The bound of one exchange now.
    fn limit(&self) -> Duration {
        if self.started {
            self.timeout
        } else {
            self.timeout.max(STARTUP_TIMEOUT)
        }
    }

    /// Interrupts raised since the last call.
    pub fn take_irqs(&mut self) -> Vec<u32> {
        self.take_irqs_seq().into_iter().map(|(_, n)| n).collect()
    }

    /// Interrupts raised since the last call, each with the global index of the line whose
    /// execution raised it (see [`Qtest::reply_seq`]).
    pub fn take_irqs_seq(&mut self) -> Vec<(u64, u32)> {
        std::mem::take(&mut self.irqs_raised)
    }

    /// The global index the reply to the first line of the next [`Qtest::batch`] will have
    /// (deferred lines go first).
    pub fn reply_seq(&self) -> u64 {
        self.replies + self.deferred.len() as u64
    }

    fn fail(&mut self, kind: &str, during: &str, detail: String) -> HarnessError {
        let (status, tail) = match self.proc.as_mut() {
            Some(p) => {
                let s = p.exit_status();
                let t = p.stderr_tail();
                p.kill();
                (s, t)
            }
            None => (None, String::new()),
        };
        self.proc = None;
        let tail = tail.trim();
        let detail = if tail.is_empty() {
            detail
        } else {
            format!("{detail}; QEMU stderr: {tail}")
        };
        match (kind, status) {
            ("timeout", None) => HarnessError::Timeout {
                backend: self.backend.clone(),
                ms: self.limit().as_millis() as u64,
                during: during.to_string(),
            },
            (_, Some(status)) => HarnessError::Crashed {
                backend: self.backend.clone(),
                during: during.to_string(),
                detail: format!("QEMU exited ({status}): {detail}"),
            },
            ("protocol", None) => HarnessError::Protocol {
                backend: self.backend.clone(),
                during: during.to_string(),
                detail,
            },
            _ => HarnessError::Crashed {
                backend: self.backend.clone(),
                during: during.to_string(),
                detail,
            },
        }
    }

    /// Queue a line whose reply is a bare `OK`, sent ahead of the next batch (or now, once
    /// [`DEFER_LINES`] are waiting). A failure surfaces at that batch.
    pub fn defer(&mut self, line: String, during: &str) -> Result<(), HarnessError> {
        self.deferred.push(line);
        if self.deferred.len() >= DEFER_LINES {
            self.batch(&[], during)?;
        }
        Ok(())
    }

    /// Send the deferred lines then `lines` (without newlines), return the value of each reply
    /// to `lines` (`None` for a bare `OK`). Each chunk has its own deadline of `timeout`.
    pub fn batch(
        &mut self,
        lines: &[String],
        during: &str,
    ) -> Result<Vec<Option<u64>>, HarnessError> {
        if self.deferred.is_empty() {
            return self.batch_now(lines, during);
        }
        let skip = self.deferred.len();
        let mut all = std::mem::take(&mut self.deferred);
        all.extend_from_slice(lines);
        let mut r = self.batch_now(&all, during)?;
        Ok(r.split_off(skip))
    }

    fn batch_now(
        &mut self,
        lines: &[String],
        during: &str,
    ) -> Result<Vec<Option<u64>>, HarnessError> {
        let mut out = Vec::with_capacity(lines.len());
        let mut start = 0;
        while start < lines.len() {
            let mut text = String::with_capacity(CHUNK_BYTES + 256);
            let mut end = start;
            while end < lines.len() && (end == start || text.len() + lines[end].len() < CHUNK_BYTES)
            {
                text.push_str(&lines[end]);
                text.push('\n');
                end += 1;
            }
            let chunk = &lines[start..end];
            start = end;
            let write = match self.proc.as_mut().and_then(|p| p.stdin.as_mut()) {
                Some(stdin) => stdin.write_all(text.as_bytes()).and_then(|_| stdin.flush()),
                None => {
                    return Err(HarnessError::Crashed {
                        backend: self.backend.clone(),
                        during: during.to_string(),
                        detail: "QEMU was already killed after an earlier error".into(),
                    })
                }
            };
            if let Err(e) = write {
                return Err(self.fail("crash", during, format!("writing to qtest: {e}")));
            }
            let deadline = Instant::now() + self.limit();
            let mut got = 0;
            while got < chunk.len() {
                let recv = match self.received.pop_front() {
                    Some(l) => Ok(l),
                    None => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match self.proc.as_ref().map(|p| p.lines.recv_timeout(left)) {
                            Some(Ok(batch)) => {
                                self.received.extend(batch);
                                continue;
                            }
                            Some(Err(e)) => Err(e),
                            None => Err(RecvTimeoutError::Disconnected),
                        }
                    }
                };
                let line = match recv {
                    Ok(l) => l,
                    Err(RecvTimeoutError::Timeout) => {
                        let d = format!("no reply to '{}'", chunk[got]);
                        return Err(self.fail("timeout", during, d));
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        let d = format!("qtest closed before replying to '{}'", chunk[got]);
                        // Give the exit status a moment to become visible.
                        std::thread::sleep(Duration::from_millis(20));
                        return Err(self.fail("crash", during, d));
                    }
                };
                if let Some(rest) = line.strip_prefix("IRQ ") {
                    if let Some(n) = rest.strip_prefix("raise ") {
                        if let Ok(n) = n.trim().parse() {
                            self.irqs_raised.push((self.replies, n));
                        }
                    }
                    continue;
                }
                let value = if line == "OK" {
                    None
                } else if let Some(v) = line.strip_prefix("OK ") {
                    let v = v.trim();
                    match u64::from_str_radix(v.trim_start_matches("0x"), 16) {
                        Ok(v) => Some(v),
                        Err(_) => {
                            let d = format!("reply '{line}' to '{}'", chunk[got]);
                            return Err(self.fail("protocol", during, d));
                        }
                    }
                } else {
                    let d = format!("reply '{line}' to '{}'", chunk[got]);
                    return Err(self.fail("protocol", during, d));
                };
                out.push(value);
                got += 1;
                self.replies += 1;
            }
        }
        Ok(out)
    }

    fn one(&mut self, line: String, during: &str) -> Result<Option<u64>, HarnessError> {
        Ok(self.batch(&[line], during)?.pop().flatten())
    }

    fn read_value(&mut self, line: String, during: &str) -> Result<u64, HarnessError> {
        match self.one(line.clone(), during)? {
            Some(v) => Ok(v),
            None => Err(self.fail(
                "protocol",
                during,
                format!("no value in the reply to '{line}'"),
            )),
        }
    }

    pub fn readl(&mut self, addr: u64, during: &str) -> Result<u32, HarnessError> {
        Ok(self.read_value(format!("readl {addr:#x}"), during)? as u32)
    }
    pub fn readq(&mut self, addr: u64, during: &str) -> Result<u64, HarnessError> {
        self.read_value(format!("readq {addr:#x}"), during)
    }
    pub fn writel(&mut self, addr: u64, v: u32, during: &str) -> Result<(), HarnessError> {
        self.one(writel(addr, v), during).map(|_| ())
    }
    pub fn writeq(&mut self, addr: u64, v: u64, during: &str) -> Result<(), HarnessError> {
        self.one(writeq(addr, v), during).map(|_| ())
    }
}

pub fn writel(addr: u64, v: u32) -> String {
    format!("writel {addr:#x} {v:#x}")
}
pub fn writeq(addr: u64, v: u64) -> String {
    format!("writeq {addr:#x} {v:#x}")
}
pub fn readl(addr: u64) -> String {
    format!("readl {addr:#x}")
}
pub fn readq(addr: u64) -> String {
    format!("readq {addr:#x}")
}
pub fn readb(addr: u64) -> String {
    format!("readb {addr:#x}")
}
/// `write ADDR LEN 0xHEX`: `bytes` in memory order, one line however many there are.
pub fn write_bytes(addr: u64, bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(32 + 2 * bytes.len());
    let _ = write!(s, "write {addr:#x} {:#x} 0x", bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
pub fn memset(addr: u64, len: u64, byte: u8) -> String {
    format!("memset {addr:#x} {len:#x} {byte:#x}")
}
