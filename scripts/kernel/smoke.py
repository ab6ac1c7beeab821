#!/usr/bin/env python3
"""End-to-end check of the kernel backend's guest (docs/kernel.md), python3 stdlib only.

Boots the guest with scripts/kernel/run-guest.sh (the interface's QEMU command line), talks the
agent protocol over the unix socket, and checks:
  - the agent's greeting (hello, hwinfo, one device line per edu function, ready);
  - `setup` succeeds;
  - a batch [TLBI_NH_ASID ASID=1] returns rc=0 entry_num=1, and the host-queue trace lines of
    that ioctl (a TLBI_NH_ASID with the host's VMID, then a CMD_SYNC) all come BEFORE the
    virtio_console_flush_buf line of the result (the fence the Rust side relies on);
  - a batch with an illegal command returns rc=-1 errno=EIO;
  - `raw 16 1 <one command>` returns rc=0 entry_num=1;
  - the raw 16-byte entries each batch put on the host queue can be read from the guest-RAM
    file at CMDQ_BASE, and their opcodes match the trace;
  - `quit` powers the guest off and QEMU exits 0.
Prints the result lines and the host-queue trace lines between fences. Exits 0 if all holds,
1 if a check fails, 2 on bad usage or a missing build. QEMU is killed on every exit path.

  python3 scripts/kernel/smoke.py [--devices N] [--timeout SECONDS] [--verbose]
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("SMMU_KERNEL_CACHE", "/var/cache/smmu-conform/kernel")
GPA_RAM_BASE = 0x4000_0000  # virt board: guest RAM starts here = file offset 0
CMDQ_BASE_OFF = 0x90
STRTAB_BASE_OFF = 0x80
EIO = 5

OP_TLBI_NH_ASID = 0x11
OP_CMD_SYNC = 0x46
ILLEGAL_OP = 0x7F  # not an SMMUv3 opcode


class Failure(Exception):
    pass


class Trace:
    """QEMU's stderr (trace lines), read by a thread into a list with a condition variable."""

    def __init__(self, stream):
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def flush_indices(self):
        return [i for i, l in enumerate(self.lines) if "virtio_console_flush_buf" in l]

    def wait_flushes(self, count, deadline):
        """Wait until `count` flush_buf lines were seen; return their indices."""
        with self.cond:
            while True:
                idx = self.flush_indices()
                if len(idx) >= count:
                    return idx
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise Failure(f"saw {len(idx)} virtio_console_flush_buf trace lines, expected {count}")
                self.cond.wait(left)


class Agent:
    """The agent's port: line reads with a deadline; every received line is counted, because
    the k-th line the agent wrote is the k-th virtio_console_flush_buf in the trace."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.received = 0

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def recv(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("timed out waiting for the agent")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Failure("timed out waiting for the agent")
            if not chunk:
                raise Failure("the agent's port closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        self.received += 1
        text = line.decode("utf-8", "replace")
        if text.startswith("error "):
            raise Failure(f"agent: {text}")
        return text


def parse_kv(text):
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", text))


def mmio_writes(lines, offset):
    """Values written to an SMMU register offset, from smmuv3_write_mmio trace lines."""
    vals = []
    for l in lines:
        if "smmuv3_write_mmio" not in l:
            continue
        m = re.search(r"addr:\s*0x([0-9a-f]+)\s+val:\s*0x([0-9a-f]+)", l)
        if m and int(m.group(1), 16) == offset:
            vals.append(int(m.group(2), 16))
    return vals


def consumed_indices(lines):
    """Queue index (with its wrap bit) of every command QEMU took from the queue: QEMU traces
    smmuv3_cmdq_consume once per command, before executing the entry at `cons`."""
    out = []
    for l in lines:
        if not re.search(r"\bsmmuv3_cmdq_consume\b", l):
            continue
        m = re.search(r"prod=(\d+) cons=(\d+) prod\.wrap=(\d+) cons\.wrap=(\d+)", l)
        if m:
            out.append((int(m.group(2)), int(m.group(4))))
    return out


def host_entries(segment, mem_path, cmdq_base):
    """The raw 16-byte host commands of a trace segment, read from the guest-RAM file exactly
    as the kernel wrote them (word 0, word 1; little-endian)."""
    log2size = cmdq_base & 0x1F
    base = cmdq_base & ((1 << 52) - 1) & ~0x1F
    entries = []
    with open(mem_path, "rb") as f:
        for cons, _wrap in consumed_indices(segment):
            f.seek(base - GPA_RAM_BASE + 16 * (cons & ((1 << log2size) - 1)))
            b = f.read(16)
            entries.append((int.from_bytes(b[:8], "little"), int.from_bytes(b[8:], "little")))
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120.0, help="per step, seconds")
    ap.add_argument("--verbose", action="store_true", help="also print the console and all trace lines")
    args = ap.parse_args()
    for f in ("Image", "initrd.gz"):
        if not os.path.exists(os.path.join(CACHE, "current", f)):
            print(f"smoke.py: {CACHE}/current/{f} missing: run scripts/kernel/build.sh", file=sys.stderr)
            return 2

    tmp = tempfile.mkdtemp(prefix="smmu-smoke.")
    sock_path = os.path.join(tmp, "agent.sock")
    fd, mem_path = tempfile.mkstemp(prefix="smmu-smoke-mem.", dir="/dev/shm")
    os.close(fd)
    console_path = os.path.join(tmp, "console.log")
    console = open(console_path, "wb")
    proc = None
    sock = None
    t_start = time.monotonic()
    try:
        # Own process group: killing the group takes QEMU down with the wrapper script.
        proc = subprocess.Popen(
            [os.path.join(HERE, "run-guest.sh"), "--sock", sock_path, "--mem", mem_path,
             "--devices", str(args.devices)],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.PIPE,
            start_new_session=True)
        trace = Trace(proc.stderr)
        deadline = time.monotonic() + args.timeout
        while True:
            if proc.poll() is not None:
                raise Failure(f"QEMU exited early with status {proc.returncode}")
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(sock_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                sock = None
                if time.monotonic() > deadline:
                    raise Failure("the agent socket never appeared")
                time.sleep(0.05)
        agent = Agent(sock)

        # Greeting.
        hello = agent.recv(deadline)
        if hello != "hello 1":
            raise Failure(f"expected 'hello 1', got {hello!r}")
        hw = agent.recv(deadline)
        print(hw)
        if not hw.startswith("hwinfo "):
            raise Failure(f"expected hwinfo, got {hw!r}")
        hwinfo = {k: int(v, 16) for k, v in parse_kv(hw).items()}
        for k in ("idr0", "idr1", "idr2", "idr3", "idr4", "idr5", "iidr", "aidr"):
            if k not in hwinfo:
                raise Failure(f"hwinfo lacks {k}")
        devices = []
        while True:
            line = agent.recv(deadline)
            print(line)
            if line == "ready":
                break
            m = re.fullmatch(r"device (\d+) bdf=([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])", line)
            if not m or int(m.group(1)) != len(devices):
                raise Failure(f"unexpected greeting line {line!r}")
            devices.append(m.group(2))
        t_ready = time.monotonic()
        if len(devices) != args.devices:
            raise Failure(f"{len(devices)} devices reported, {args.devices} edu functions given")

        # setup
        vsids = [0x10 + i for i in range(len(devices))]
        agent.send("setup vsid=" + ",".join(f"{v:x}" for v in vsids))
        line = agent.recv(time.monotonic() + args.timeout)
        print(line)
        if not re.fullmatch(r"setup ok viommu=\d+", line):
            raise Failure(f"setup failed: {line!r}")

        def batch(cmds, deadline):
            """Send one batch; return (result dict, the trace segment between its fences)."""
            t0 = time.monotonic()
            agent.send(f"batch {len(cmds)} " + " ".join(f"{a:016x}:{b:016x}" for a, b in cmds))
            line = agent.recv(deadline)
            rtt = time.monotonic() - t0
            print(f"{line}    (round trip {rtt * 1000:.1f} ms)")
            m = re.fullmatch(r"result rc=(-?\d+) errno=(\d+) entry_num=(\d+)", line)
            if not m:
                raise Failure(f"bad result line {line!r}")
            flushes = trace.wait_flushes(agent.received, deadline)
            lo, hi = flushes[agent.received - 2], flushes[agent.received - 1]
            with trace.cond:
                segment = trace.lines[lo + 1:hi]
            return dict(rc=int(m.group(1)), errno=int(m.group(2)), entry_num=int(m.group(3))), segment, rtt

        def show(title, segment, entries):
            print(f"-- host queue trace between the fences ({title}):")
            for l in segment:
                if "smmuv3_cmdq" in l or "smmuv3_range_inval" in l:
                    print("   " + l)
            print(f"-- raw host entries read at CMDQ_BASE ({title}):")
            for a, b in entries:
                print(f"   {a:016x}:{b:016x}  opcode 0x{a & 0xff:02x}")

        with trace.cond:
            cmdq_bases = mmio_writes(trace.lines, CMDQ_BASE_OFF)
            strtab_bases = mmio_writes(trace.lines, STRTAB_BASE_OFF)
        if not cmdq_bases:
            raise Failure("no CMDQ_BASE write in the smmuv3_write_mmio trace")
        cmdq_base = cmdq_bases[-1]
        print(f"CMDQ_BASE=0x{cmdq_base:x} (queue at GPA 0x{cmdq_base & ~0x1F & ((1 << 52) - 1):x}, "
              f"{1 << (cmdq_base & 0x1F)} entries)"
              + (f"; STRTAB_BASE=0x{strtab_bases[-1]:x}" if strtab_bases else ""))

        # Batch 1: [TLBI_NH_ASID ASID=1].
        res, seg, rtt1 = batch([(OP_TLBI_NH_ASID | (1 << 48), 0)], time.monotonic() + args.timeout)
        ents = host_entries(seg, mem_path, cmdq_base)
        show("TLBI_NH_ASID ASID=1", seg, ents)
        if res != dict(rc=0, errno=0, entry_num=1):
            raise Failure(f"TLBI_NH_ASID ASID=1: expected rc=0 errno=0 entry_num=1, got {res}")
        if not any("smmuv3_cmdq_tlbi_nh_asid" in l for l in seg):
            raise Failure("no smmuv3_cmdq_tlbi_nh_asid trace line before the result's flush_buf")
        ops = [a & 0xFF for a, _ in ents]
        if OP_TLBI_NH_ASID not in ops or OP_CMD_SYNC not in ops:
            raise Failure(f"raw host entries lack TLBI_NH_ASID or CMD_SYNC: opcodes {ops}")
        asid_entries = [(a, b) for a, b in ents if a & 0xFF == OP_TLBI_NH_ASID]
        if any(a >> 48 != 1 for a, _ in asid_entries):
            raise Failure("the host TLBI_NH_ASID does not carry ASID 1")
        if ops.index(OP_CMD_SYNC) < ops.index(OP_TLBI_NH_ASID):
            raise Failure("no CMD_SYNC after the host TLBI_NH_ASID")
        n_opcode_lines = sum(1 for l in seg if "smmuv3_cmdq_opcode" in l)
        if n_opcode_lines != len(ents):
            raise Failure(f"{n_opcode_lines} smmuv3_cmdq_opcode trace lines but {len(ents)} raw entries")
        print(f"host VMID of the vIOMMU: {(asid_entries[0][0] >> 32) & 0xFFFF}")
        # The other half of the fence: nothing of that ioctl may trail the result's flush_buf.
        # Give QEMU time to print anything late, then look past the fence.
        time.sleep(0.2)
        with trace.cond:
            after = trace.lines[trace.flush_indices()[agent.received - 1] + 1:]
        late = [l for l in after if "smmuv3_cmdq" in l]
        if late:
            raise Failure(f"host-queue trace lines after the result's flush_buf: {late}")
        print("fence: every host-queue trace line of the batch precedes the result's flush_buf, none follows")

        # Batch 2: [TLBI_NH_ASID ASID=2, an illegal opcode]: the kernel must refuse with EIO.
        res, seg, _ = batch([(OP_TLBI_NH_ASID | (2 << 48), 0), (ILLEGAL_OP, 0)],
                            time.monotonic() + args.timeout)
        ents = host_entries(seg, mem_path, cmdq_base)
        show("TLBI_NH_ASID ASID=2 + illegal opcode 0x7f", seg, ents)
        if res["rc"] != -1 or res["errno"] != EIO:
            raise Failure(f"illegal command: expected rc=-1 errno={EIO}, got {res}")
        if any(a & 0xFF == ILLEGAL_OP for a, _ in ents):
            raise Failure("the illegal command reached the host queue")
        if any("consume_error" in l for l in seg):
            raise Failure("the host queue raised a command error")

        # raw: the same ioctl with the bytes as given (the uAPI-contract checks use it with odd
        # entry lengths); a well-formed 16-byte entry must behave like a batch of one.
        agent.send("raw 16 1 " + (OP_TLBI_NH_ASID | (3 << 48)).to_bytes(8, "little").hex() + "00" * 8)
        line = agent.recv(time.monotonic() + args.timeout)
        print(f"{line}    (raw 16 1 [TLBI_NH_ASID ASID=3])")
        if line != "result rc=0 errno=0 entry_num=1":
            raise Failure(f"raw TLBI_NH_ASID ASID=3: expected rc=0 errno=0 entry_num=1, got {line!r}")

        # quit: the agent exits, init powers off, QEMU exits 0.
        t_quit = time.monotonic()
        agent.send("quit")
        try:
            rc = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            raise Failure("the guest did not power off after quit")
        t_end = time.monotonic()
        if rc != 0:
            raise Failure(f"QEMU exited with status {rc} after quit")
        print(f"timing: boot to ready {t_ready - t_start:.2f} s, batch round trip {rtt1 * 1000:.1f} ms, "
              f"quit to exit {t_end - t_quit:.2f} s, boot to poweroff {t_end - t_start:.2f} s")
        print("smoke: 1 passed, 0 failed")
        return 0
    except Failure as e:
        print(f"smoke.py: FAILED: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"smoke.py: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if sock is not None:
            sock.close()
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        console.close()
        with open(console_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        if args.verbose:
            print("-- console:\n" + text)
            print("-- trace:")
            for l in trace.lines if proc is not None else []:
                print("   " + l)
        else:
            # The console is short with `quiet`; show the agent's and init's own lines.
            for l in text.splitlines():
                if l.startswith(("agent:", "init:")) or "Kernel panic" in l:
                    print("console: " + l)
        os.unlink(mem_path)
        os.unlink(console_path)
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
