//! Ownership of the QEMU child process: it is killed on drop, on every error and on every
//! timeout, so no QEMU ever outlives its [`QemuProcess`] (QEMU does not exit when the qtest
//! channel closes; see the method notes, "Binaries" / "Command line").

use crate::backend::HarnessError;
use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

/// How much of QEMU's stderr is kept for error messages.
const STDERR_TAIL: usize = 4096;

/// A running QEMU with its stdin (qtest commands in), a channel of its stdout lines (qtest
/// replies and asynchronous `IRQ` lines out) and the tail of its stderr.
pub struct QemuProcess {
    child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    /// Stdout lines, in batches (one per read).
    pub(crate) lines: Receiver<Vec<String>>,
    stderr_tail: Arc<Mutex<String>>,
}

impl QemuProcess {
    pub fn spawn(binary: &Path, args: &[String]) -> Result<Self, HarnessError> {
        Self::spawn_inner(binary, args, None)
    }

    /// The same, and every stderr line is also sent over the returned channel (the kernel
    /// backend reads QEMU's trace events there: the log trace backend writes them to stderr).
    pub fn spawn_traced(
        binary: &Path,
        args: &[String],
    ) -> Result<(Self, Receiver<String>), HarnessError> {
        let (tx, rx) = channel();
        Ok((Self::spawn_inner(binary, args, Some(tx))?, rx))
    }

    fn spawn_inner(
        binary: &Path,
        args: &[String],
        stderr_lines: Option<std::sync::mpsc::Sender<String>>,
    ) -> Result<Self, HarnessError> {
        let mut cmd = Command::new(binary);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HarnessError::Setup(format!("cannot start {}: {e}", binary.display())))?;
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HarnessError::Setup("QEMU's pipes were not created".into()));
                }
            };
        // A reader thread per pipe: the client never blocks on QEMU's output, and QEMU (which
        // writes replies with blocking writes) never blocks on the client. Both threads end
        // when QEMU dies (end of file), which the kill in Drop guarantees.
        let (tx, lines) = channel();
        thread::spawn(move || {
            // Every line that one read() brings goes over the channel as one message: a batch
            // of replies wakes the client once, not once per line.
            let mut stdout = stdout;
            let mut buf = vec![0u8; 64 * 1024];
            let mut partial: Vec<u8> = Vec::new();
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                partial.extend_from_slice(&buf[..n]);
                let Some(last) = partial.iter().rposition(|&b| b == b'\n') else {
                    continue;
                };
                let batch: Vec<String> = partial[..last]
                    .split(|&b| b == b'\n')
                    .map(|l| {
                        String::from_utf8_lossy(l)
                            .trim_end_matches('\r')
                            .to_string()
                    })
                    .collect();
                partial.drain(..=last);
                if tx.send(batch).is_err() {
                    break;
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let tail = Arc::clone(&stderr_tail);
        thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = [0u8; 16 * 1024];
            let mut partial: Vec<u8> = Vec::new();
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(tx) = &stderr_lines {
                    partial.extend_from_slice(&buf[..n]);
                    if let Some(last) = partial.iter().rposition(|&b| b == b'\n') {
                        for l in partial[..last].split(|&b| b == b'\n') {
                            // A closed receiver only means nobody reads the trace any more.
                            let _ = tx.send(String::from_utf8_lossy(l).trim_end().to_string());
                        }
                        partial.drain(..=last);
                    }
                }
                if let Ok(mut t) = tail.lock() {
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.len() > STDERR_TAIL {
                        let mut cut = t.len() - STDERR_TAIL;
                        while !t.is_char_boundary(cut) {
                            cut += 1;
                        }
                        t.drain(..cut);
                    }
                }
            }
        });
        Ok(QemuProcess {
            child,
            stdin: Some(stdin),
            lines,
            stderr_tail,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last few KiB QEMU wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Whether QEMU has exited, and how.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// SIGKILL and reap. Idempotent. SIGKILL also ends a stopped (SIGSTOP) process.
    pub fn kill(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// QEMU gets SIGKILL when the thread that started it ends, however it ends: the harness killed
/// by SIGTERM or SIGKILL, a panic that aborts, a thread that exits without dropping its device.
/// Drop and the error paths kill it first in every orderly case; this covers the rest
/// (PR_SET_PDEATHSIG, Linux). Devices never move to another thread while their QEMU is needed
/// after the creating thread ends: every caller drops them on that thread.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
