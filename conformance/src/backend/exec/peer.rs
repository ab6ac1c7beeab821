//! The peer process of an `exec:` backend and one request/response exchange with it.
//!
//! Never a hang: every exchange has a deadline; requests are written by a writer thread (a peer
//! that stops reading cannot block the harness on a full pipe) and responses are read by a
//! reader thread (a peer that stops writing, or writes half a line, cannot either). Never a
//! leftover: the peer runs in its own process group and the whole group gets SIGKILL on drop,
//! on every error and on every timeout, so helpers the peer started (a shell wrapper's
//! children, a simulator it launched) go with it.

use super::protocol::{Call, ErrorKind, Request, Response, MAX_LINE};
use crate::backend::HarnessError;
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How much of the peer's stderr is kept, and how much of it an error message quotes.
const STDERR_KEEP: usize = 4096;
const STDERR_QUOTE: usize = 600;

/// One line from the peer's stdout, or why there are no more.
enum Line {
    Text(String),
    TooLong,
    NotUtf8,
    Eof,
}

/// A running peer.
pub struct Peer {
    /// The backend spec, for error messages.
    label: String,
    child: Child,
    to_peer: Option<Sender<Vec<u8>>>,
    lines: Receiver<Line>,
    stderr_tail: Arc<Mutex<String>>,
    /// Set by the stderr reader at the end of the peer's stderr.
    stderr_done: Arc<std::sync::atomic::AtomicBool>,
    next_id: u64,
    /// Set once the peer broke the protocol, crashed or timed out: later requests fail at once
    /// with the same error instead of talking to a peer in an unknown state.
    dead: Option<HarnessError>,
}

impl Peer {
    /// Start `argv` (already split) in a new process group, with piped stdin, stdout, stderr.
    pub fn spawn(label: &str, argv: &[String]) -> Result<Peer, HarnessError> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| HarnessError::Setup(format!("backend {label}: empty command")))?;
        let mut command = Command::new(prog);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that kill(-pgid) reaches everything it starts.
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: the closure runs in the child between fork and exec and only makes the
        // prctl(2) system call, which is async-signal-safe. It is a safety net for a harness
        // that dies without dropping the peer (killed by a signal): the kernel then kills the
        // peer too. Drop still kills the whole group in every ordinary case.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            HarnessError::Setup(format!("backend {label}: cannot start {prog}: {e}"))
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_group(&mut child);
            return Err(HarnessError::Setup(format!(
                "backend {label}: the peer's pipes were not created"
            )));
        };
        // Writer: requests in order; ends when the harness drops the sender or the pipe breaks.
        let (to_peer, requests) = channel::<Vec<u8>>();
        thread::spawn(move || {
            let mut stdin = stdin;
            for bytes in requests {
                if stdin.write_all(&bytes).and_then(|_| stdin.flush()).is_err() {
                    break;
                }
            }
        });
        // Reader: whole lines, bounded in length.
        let (tx, lines) = channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                let line = match (&mut r)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(0) | Err(_) => Line::Eof,
                    Ok(_) if buf.len() > MAX_LINE => Line::TooLong,
                    Ok(_) if buf.last() != Some(&b'\n') => Line::Eof,
                    Ok(_) => match String::from_utf8(buf) {
                        Ok(s) => Line::Text(s),
                        Err(_) => Line::NotUtf8,
                    },
                };
                let last = !matches!(line, Line::Text(_));
                if tx.send(line).is_err() || last {
                    break;
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let tail = Arc::clone(&stderr_tail);
        let stderr_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = Arc::clone(&stderr_done);
        thread::spawn(move || {
            let mut r = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = tail.lock() {
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.len() > STDERR_KEEP {
                        let mut cut = t.len() - STDERR_KEEP;
                        while !t.is_char_boundary(cut) {
                            cut += 1;
                        }
                        t.drain(..cut);
                    }
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        Ok(Peer {
            label: label.to_string(),
            child,
            to_peer: Some(to_peer),
            lines,
            stderr_tail,
            stderr_done,
            next_id: 0,
            dead: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of what the peer wrote to stderr, on one line, for error messages.
    pub fn stderr_quote(&self) -> String {
        let t = self
            .stderr_tail
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        let t = t.trim();
        if t.is_empty() {
            return String::new();
        }
        let mut start = t.len().saturating_sub(STDERR_QUOTE);
        while !t.is_char_boundary(start) {
            start += 1;
        }
        let one_line: Vec<&str> = t[start..].lines().map(str::trim_end).collect();
        format!(
            "; peer stderr: {}{}",
            if start > 0 { "…" } else { "" },
            one_line.join(" | ")
        )
    }

    /// Send `call`, wait up to `timeout` for its response and read the result as `T`.
    pub fn call<T: DeserializeOwned>(
        &mut self,
        call: Call,
        timeout: Duration,
    ) -> Result<T, HarnessError> {
        if let Some(e) = &self.dead {
            return Err(e.clone());
        }
        let during = call.op();
        let r = self.exchange(call, timeout);
        if let Err(e) = &r {
            // Any broken exchange leaves the peer in an unknown state: kill it now (its stderr
            // is already quoted in the error) and refuse further requests.
            if !matches!(e, HarnessError::Unsupported { .. }) {
                self.dead = Some(e.clone());
                self.kill();
            }
        }
        let value = r?;
        serde_json::from_value(value).map_err(|e| {
            let err = self.protocol(during, format!("bad {during} result: {e}"));
            self.dead = Some(err.clone());
            self.kill();
            err
        })
    }

    /// The peer answered, but not as the protocol says (a result the caller checked itself):
    /// kill it, refuse further requests, and return the error.
    pub fn broken(&mut self, during: &str, detail: String) -> HarnessError {
        let e = self.protocol(during, detail);
        self.dead = Some(e.clone());
        self.kill();
        e
    }

    fn protocol(&self, during: &str, detail: String) -> HarnessError {
        HarnessError::Protocol {
            backend: self.label.clone(),
            during: during.to_string(),
            detail: format!("{detail}{}", self.stderr_quote()),
        }
    }

    fn crashed(&mut self, during: &str, what: &str) -> HarnessError {
        // Give the peer a moment to finish exiting so the status and the stderr are complete.
        let mut status = None;
        for _ in 0..50 {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s.to_string());
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
        // Once it has exited, its last stderr lines may still be in the pipe: let the reader
        // drain it (bounded: a grandchild may hold the pipe open).
        if status.is_some() {
            for _ in 0..50 {
                if self.stderr_done.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
        }
        HarnessError::Crashed {
            backend: self.label.clone(),
            during: during.to_string(),
            detail: format!(
                "{what} ({}){}",
                status.unwrap_or_else(|| "still running".into()),
                self.stderr_quote()
            ),
        }
    }

    fn exchange(
        &mut self,
        call: Call,
        timeout: Duration,
    ) -> Result<serde_json::Value, HarnessError> {
        let during = call.op();
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request { id, call })
            .map_err(|e| self.protocol(during, format!("cannot encode request: {e}")))?;
        line.push(b'\n');
        let sent = self.to_peer.as_ref().is_some_and(|t| t.send(line).is_ok());
        if !sent {
            return Err(self.crashed(during, "the peer closed its input"));
        }
        let text = match self.lines.recv_timeout(timeout) {
            Ok(Line::Text(t)) => t,
            Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => {
                return Err(self.crashed(during, "the peer exited or closed its output"))
            }
            Ok(Line::TooLong) => {
                return Err(self.protocol(during, format!("a line longer than {MAX_LINE} bytes")))
            }
            Ok(Line::NotUtf8) => {
                return Err(self.protocol(during, "a line that is not UTF-8".into()))
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(HarnessError::Timeout {
                    backend: self.label.clone(),
                    ms: timeout.as_millis() as u64,
                    during: format!("{during}{}", self.stderr_quote()),
                })
            }
        };
        let resp: Response = serde_json::from_str(&text).map_err(|e| {
            self.protocol(
                during,
                format!("not a response line ({e}): {}", clip(text.trim_end())),
            )
        })?;
        if resp.id != id {
            return Err(self.protocol(
                during,
                format!("response id {} to request id {id}", resp.id),
            ));
        }
        match (resp.ok, resp.error) {
            (Some(v), None) => Ok(v),
            (None, Some(e)) => Err(match e.kind {
                ErrorKind::Unsupported => HarnessError::Unsupported {
                    backend: self.label.clone(),
                    what: format!("{during}: {}", e.message),
                },
                ErrorKind::Failed => HarnessError::Crashed {
                    backend: self.label.clone(),
                    during: during.to_string(),
                    detail: format!("the peer reports failure: {}", e.message),
                },
                ErrorKind::BadRequest => self.protocol(
                    during,
                    format!("the peer could not read the request: {}", e.message),
                ),
            }),
            _ => Err(self.protocol(
                during,
                "a response must have exactly one of \"ok\" and \"error\"".into(),
            )),
        }
    }

    /// Ask the peer to exit (best effort, short wait), then kill its process group.
    pub fn bye(&mut self, wait: Duration) {
        if self.dead.is_none() {
            let _ = self.exchange(Call::Bye {}, wait);
        }
        self.kill();
    }

    /// SIGKILL the peer's process group and reap the peer. Idempotent.
    pub fn kill(&mut self) {
        self.to_peer = None;
        kill_group(&mut self.child);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.bye(Duration::from_millis(200));
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads (it was
        // spawned with process_group(0), so its pgid is its pid, and it cannot be reused
        // before we reap it below). No memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn clip(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
