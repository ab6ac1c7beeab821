#!/usr/bin/env python3
"""tiny_smmu.py: a small SMMUv3 in plain Python, plugged into smmu-conform as an
out-of-process device backend (protocol version 1, docs/protocol.md). Standard library only.

    smmu-conform run --backend exec:'python3 examples/python/tiny_smmu.py' \
        --expect corpus/expectations/python-example.toml

What it implements (Arm IHI 0070 section numbers):
- ID registers of a minimal SMMUv3.0: stage 1 only, AArch64 tables, 4K granule only, 8-bit
  ASIDs, linear stream tables only, no MSI, no stall, 44-bit OAS (section 6.3).
- The Command queue at CMDQ_BASE (256 entries): PROD/CONS with wrap bits, CERROR_ILL for
  illegal commands, GERROR/GERRORN.CMDQ_ERR and the acknowledge handshake (3.5, 7.1).
- A linear stream table of STEs; STE.Config abort, bypass and stage-1 translate (5.2); one
  stage-1 CD per stream (S1CDMax == 0), with TTB0 and TTB1 (5.4).
- A 4K-granule stage-1 walk with access flag, address size and permission checks for
  unprivileged data accesses (3.4, Arm ARM D8).
- Caches: an STE cache, a CD cache and a FIFO TLB of TLB_SIZE leaf entries (tagged by ASID,
  global bit and, more narrowly than required, StreamID). Invalidations take
  effect when consumed, so every CMD_SYNC finds them complete (4.7.3):
  CFGI_STE, CFGI_STE_RANGE (and CFGI_ALL), CFGI_CD, CFGI_CD_ALL (4.3);
  TLBI_NH_ALL, TLBI_NH_ASID, TLBI_NH_VA, TLBI_NH_VAA, TLBI_NSNH_ALL (4.4).

What it does not do (and declares, or the suite skips): stage 2, substreams, two-level tables,
16K/64K granules, MSIs, SEV, secure or realm queues. Reserved (RES0) command bits are ignored
(4.1.5). It reports fault event numbers (7.3) for faulting probes.

stdout carries protocol lines only; anything for people goes to stderr.
"""

import json
import sys

PROTOCOL = 1
NAME = "tiny-smmu.py"

# The harness's memory map (conformance/src/layout.rs).
CMDQ_BASE = 0x4010_0000
CMDQ_LOG2SIZE = 8

ID_REGS = {
    # IDR0: S1P [1], TTF [3:2] = 0b10 (AArch64), STALL_MODEL [25:24] = 0b01 (no stall),
    # ST_LEVEL [28:27] = 0 (linear only), ASID16 [12] = 0, MSI [13] = 0, SEV [14] = 0.
    "idr0": 0x0100_000A,
    # IDR1: SIDSIZE 16, SSIDSIZE 0, CMDQS 19, EVENTQS 19.
    "idr1": 0x0273_0010,
    "idr3": 0,
    # IDR5: OAS [2:0] = 0b100 (44 bits), GRAN4K [4].
    "idr5": 0x14,
    # AIDR: SMMUv3.0.
    "aidr": 0,
}
OAS_BITS = 44
SID_BITS = 16
TLB_SIZE = 8

# Event numbers (7.3).
C_BAD_STREAMID = 0x02
C_BAD_STE = 0x04
C_BAD_CD = 0x0A
F_TRANSLATION = 0x10
F_ADDR_SIZE = 0x11
F_ACCESS = 0x12
F_PERMISSION = 0x13

# Opcodes this profile accepts on the Non-secure queue (4.1.1, 4.1.3); everything else is
# CERROR_ILL.
PREFETCH_CONFIG, PREFETCH_ADDR = 0x01, 0x02
CFGI_STE, CFGI_STE_RANGE, CFGI_CD, CFGI_CD_ALL = 0x03, 0x04, 0x05, 0x06
TLBI_NH_ALL, TLBI_NH_ASID, TLBI_NH_VA, TLBI_NH_VAA = 0x10, 0x11, 0x12, 0x13
TLBI_NSNH_ALL = 0x30
SYNC = 0x46
LEGAL = {PREFETCH_CONFIG, PREFETCH_ADDR, CFGI_STE, CFGI_STE_RANGE, CFGI_CD, CFGI_CD_ALL,
         TLBI_NH_ALL, TLBI_NH_ASID, TLBI_NH_VA, TLBI_NH_VAA, TLBI_NSNH_ALL, SYNC}
CERROR_ILL = 1


def bits(v, hi, lo):
    return (v >> lo) & ((1 << (hi - lo + 1)) - 1)


def bit(v, n):
    return (v >> n) & 1


def mask(hi, lo):
    return ((1 << (hi - lo + 1)) - 1) << lo


class Fault(Exception):
    """A probe that does not translate: an event number, or None for an abort (5.2 Config)."""

    def __init__(self, event):
        super().__init__(event)
        self.event = event


class TinySmmu:
    def __init__(self):
        self.reset()

    # ---- state -----------------------------------------------------------------------------

    def reset(self):
        self.mem = {}
        self.strtab_base = 0
        self.strtab_cfg = 0
        self.smmuen = False
        qmask = (1 << (CMDQ_LOG2SIZE + 1)) - 1
        self.qmask = qmask
        self.prod = 0
        self.cons = 0
        self.cons_err = 0
        self.gerror = 0
        self.gerrorn = 0
        self.ste_cache = {}
        self.cd_cache = {}
        # FIFO of dicts: asid, global, va (base), size, pa (base), ap, table_ap.
        self.tlb = []

    def read64(self, pa):
        return self.mem.get(pa, 0)

    def write64(self, pa, value):
        self.mem[pa] = value

    # ---- Command queue (3.5, 7.1) ----------------------------------------------------------

    def entry_pa(self, ptr):
        return CMDQ_BASE + (ptr & ((1 << CMDQ_LOG2SIZE) - 1)) * 16

    def incr(self, ptr):
        return (ptr + 1) & self.qmask

    def submit(self, commands):
        p = self.prod
        for dw0, dw1 in commands:
            self.write64(self.entry_pa(p), dw0)
            self.write64(self.entry_pa(p) + 8, dw1)
            p = self.incr(p)
        self.prod = p
        return self.run_queue()

    def acknowledge(self, replace, drop):
        if replace is not None:
            self.write64(self.entry_pa(self.cons), replace[0])
            self.write64(self.entry_pa(self.cons) + 8, replace[1])
        if drop:
            self.prod = self.cons
        # GERRORN.CMDQ_ERR = GERROR.CMDQ_ERR acknowledges the error; consumption resumes.
        self.gerrorn = (self.gerrorn & ~1) | (self.gerror & 1)
        return self.run_queue()

    def run_queue(self):
        irqs = 0
        while (self.gerror ^ self.gerrorn) & 1 == 0 and self.cons != self.prod:
            dw0 = self.read64(self.entry_pa(self.cons))
            dw1 = self.read64(self.entry_pa(self.cons) + 8)
            if not self.legal(dw0, dw1):
                # CONS stays on the failing command; the error is active until acknowledged.
                self.cons_err = CERROR_ILL
                self.gerror ^= 1
                break
            if self.execute(dw0, dw1):
                irqs += 1
            self.cons = self.incr(self.cons)
        return {
            "cons": (self.cons & self.qmask) | (self.cons_err << 24),
            "gerror": self.gerror,
            "msi_writes": [],
            "wired_irqs": irqs,
            "sev_events": 0,
        }

    @staticmethod
    def legal(dw0, dw1):
        op = dw0 & 0xFF
        if op not in LEGAL:
            return False
        # SSec == 1 on the Non-secure queue (4.1.6).
        if op in (PREFETCH_CONFIG, PREFETCH_ADDR, CFGI_STE, CFGI_STE_RANGE, CFGI_CD,
                  CFGI_CD_ALL) and bit(dw0, 10):
            return False
        # CMD_SYNC CS == 0b11 is Reserved (4.7.3).
        if op == SYNC and bits(dw0, 13, 12) == 0b11:
            return False
        return True

    def execute(self, dw0, dw1):
        """Carry out a legal command; True when it is a CMD_SYNC raising the wired interrupt."""
        op = dw0 & 0xFF
        sid = bits(dw0, 63, 32)
        if op == CFGI_STE:
            self.forget_config(sid, sid)
        elif op == CFGI_STE_RANGE:
            span = 1 << (bits(dw1, 4, 0) + 1)
            lo = sid & ~(span - 1)
            self.forget_config(lo, lo + span - 1)
        elif op in (CFGI_CD, CFGI_CD_ALL):
            self.cd_cache.pop(sid, None)
        elif op == TLBI_NH_ALL or op == TLBI_NSNH_ALL:
            self.tlb = []
        elif op == TLBI_NH_ASID:
            asid = bits(dw0, 55, 48)  # ASID[15:8] is RES0 without ASID16: ignored.
            self.tlb = [e for e in self.tlb if e["global"] or e["asid"] != asid]
        elif op == TLBI_NH_VA:
            asid = bits(dw0, 55, 48)
            va = dw1 & mask(63, 12)
            self.tlb = [e for e in self.tlb
                        if not (self.covers(e, va) and (e["global"] or e["asid"] == asid))]
        elif op == TLBI_NH_VAA:
            va = dw1 & mask(63, 12)
            self.tlb = [e for e in self.tlb if not self.covers(e, va)]
        elif op == SYNC:
            # SIG_IRQ without MSI support asserts the wired interrupt (4.7.3).
            return bits(dw0, 13, 12) == 0b01
        return False

    def forget_config(self, lo, hi):
        for sid in [s for s in self.ste_cache if lo <= s <= hi]:
            del self.ste_cache[sid]
        # Over-invalidation is always allowed: CDs found through these STEs go too.
        for sid in [s for s in self.cd_cache if lo <= s <= hi]:
            del self.cd_cache[sid]

    @staticmethod
    def covers(entry, va):
        # VA[63:56] are not part of the TLB tag (TBI); compare the 56-bit VA.
        va56 = va & mask(55, 0)
        return entry["va"] <= va56 < entry["va"] + entry["size"]

    # ---- translation (3.4, 5.2, 5.4) -------------------------------------------------------

    def probe(self, sid, ssid, addr, write):
        try:
            return {"kind": "translated", "pa": hex(self.translate(sid, ssid, addr, write))}
        except Fault as f:
            if f.event is None:
                return {"kind": "abort"}
            return {"kind": "fault", "event": f.event}

    def ste(self, sid):
        if self.smmuen and sid in self.ste_cache:
            return self.ste_cache[sid]
        log2size = bits(self.strtab_cfg, 5, 0)
        if bits(self.strtab_cfg, 17, 16) != 0:
            raise Fault(C_BAD_STE)  # two-level tables are not implemented (ST_LEVEL == 0)
        if sid >= (1 << min(log2size, SID_BITS)):
            raise Fault(C_BAD_STREAMID)
        base = self.strtab_base & mask(OAS_BITS - 1, 6)
        words = [self.read64(base + sid * 64 + 8 * i) for i in range(8)]
        self.check_ste(words)
        if self.smmuen:
            self.ste_cache[sid] = words
        return words

    @staticmethod
    def check_ste(w):
        if not bit(w[0], 0):
            raise Fault(C_BAD_STE)
        config = bits(w[0], 3, 1)
        if config == 0b000 or config == 0b100:
            return
        if config != 0b101:
            raise Fault(C_BAD_STE)  # Reserved, or stage 2 on an SMMU without S2P
        if bits(w[0], 5, 4) != 0 or bits(w[0], 63, 59) != 0:
            raise Fault(C_BAD_STE)  # substreams need SSIDSIZE > 0
        if (w[0] & mask(55, 6)) >> OAS_BITS:
            raise Fault(C_BAD_STE)
        # STE.STRW is IGNORED without Hyp (5.2.2): every stream is NS-EL1 here.

    def cd(self, sid, ste):
        if self.smmuen and sid in self.cd_cache:
            return self.cd_cache[sid]
        ptr = ste[0] & mask(55, 6)
        words = [self.read64(ptr + 8 * i) for i in range(8)]
        self.check_cd(words)
        if self.smmuen:
            self.cd_cache[sid] = words
        return words

    @staticmethod
    def ips_bits(cd0):
        ips = [32, 36, 40, 42, 44, 48, 52, 52][bits(cd0, 34, 32)]
        return min(ips, OAS_BITS)

    def check_cd(self, w):
        w0 = w[0]
        if not bit(w0, 31):
            raise Fault(C_BAD_CD)  # V
        if not bit(w0, 41):
            raise Fault(C_BAD_CD)  # AA64
        if bit(w0, 42) or bit(w0, 43):
            raise Fault(C_BAD_CD)  # HD/HA without HTTU
        epd = (bit(w0, 14), bit(w0, 30))
        if bit(w0, 15) and not (epd[0] and epd[1]):
            raise Fault(C_BAD_CD)  # big-endian tables are not implemented
        if bits(w0, 63, 56) != 0:
            raise Fault(C_BAD_CD)  # ASID[15:8] must be 0 without ASID16
        ips = self.ips_bits(w0)
        for region in (0, 1):
            if epd[region]:
                continue
            tg = bits(w0, 7, 6) if region == 0 else bits(w0, 23, 22)
            if tg != (0b00 if region == 0 else 0b10):
                raise Fault(C_BAD_CD)  # only the 4K granule
            tsz = bits(w0, 5, 0) if region == 0 else bits(w0, 21, 16)
            if tsz < 16 or tsz > 39:
                raise Fault(C_BAD_CD)
            ttb = w[1 + region] & mask(55, 4)
            if ttb >> min(ips, 48):
                raise Fault(C_BAD_CD)

    def translate(self, sid, ssid, addr, write):
        ste = self.ste(sid)
        config = bits(ste[0], 3, 1)
        if config == 0b000:
            raise Fault(None)
        if config == 0b100:
            return addr
        if ssid is not None:
            raise Fault(0x08)  # C_BAD_SUBSTREAMID: no substreams
        cd = self.cd(sid, ste)
        w0 = cd[0]
        asid = bits(w0, 55, 48)
        upper = bit(addr, 55)
        region = 1 if upper else 0
        if (bit(w0, 14), bit(w0, 30))[region]:
            raise Fault(F_TRANSLATION)  # EPDx: the region is disabled
        tsz = bits(w0, 5, 0) if region == 0 else bits(w0, 21, 16)
        tbi = bit(w0, 38 + region)
        top = 55 if tbi else 63
        ib = 64 - tsz
        field = bits(addr, top, ib)
        if field != (bits((1 << 64) - 1, top, ib) if upper else 0):
            raise Fault(F_TRANSLATION)
        privileged = bits(ste[1], 49, 48) == 0b11  # STE.PRIVCFG: else the probe's own (user)
        va56 = addr & mask(55, 0)
        # Entries are also tagged with the StreamID they were walked for: narrower than the
        # architecture's ASID/VMID tags (always allowed), and it keeps two streams that share
        # an ASID on this SMMU without stage 2 (an UNPREDICTABLE setup, 5.4.1) apart.
        for e in self.tlb if self.smmuen else []:
            if e["sid"] != sid:
                continue
            if (e["global"] or e["asid"] == asid) and e["va"] <= va56 < e["va"] + e["size"]:
                return self.check_perms(e, write, privileged) + (va56 - e["va"])
        e = self.walk(cd[1 + region], ib, addr, self.ips_bits(w0), bit(w0, 35))
        e["asid"] = asid
        e["sid"] = sid
        if self.smmuen and TLB_SIZE:
            self.tlb.append(e)
            if len(self.tlb) > TLB_SIZE:
                self.tlb.pop(0)
        return self.check_perms(e, write, privileged) + (va56 - e["va"])

    def walk(self, ttb, ib, va, out_bits, affd):
        """The stage-1 walk of a 4K-granule region with `ib` input bits (Arm ARM D8.2)."""

        def shift(lvl):
            return 12 + 9 * (3 - lvl)

        level = 3 - (ib - 13) // 9
        index_bits = ib - shift(level)
        # Table base bits below the start table's size are treated as zero.
        table = ttb & mask(55, 0) & ~((8 << index_bits) - 1)
        ap_table = 0
        while level <= 3:
            idx = (va >> shift(level)) & ((1 << index_bits) - 1)
            index_bits = 9
            desc = self.read64(table + idx * 8)
            if not bit(desc, 0):
                raise Fault(F_TRANSLATION)
            is_table = bit(desc, 1)
            if level < 3 and is_table:
                nxt = desc & mask(51, 12)
                if nxt >> out_bits:
                    raise Fault(F_ADDR_SIZE)
                ap_table |= bits(desc, 62, 61)
                table = nxt
                level += 1
                continue
            if level == 3 and not is_table:
                raise Fault(F_TRANSLATION)
            if level == 0:
                raise Fault(F_TRANSLATION)  # no level-0 blocks with 4K (no 52-bit)
            size = 1 << (12 + 9 * (3 - level))
            oa = desc & mask(51, 12) & ~(size - 1)
            if oa >> out_bits:
                raise Fault(F_ADDR_SIZE)
            if not bit(desc, 10) and not affd:
                raise Fault(F_ACCESS)
            return {
                "global": not bit(desc, 11),
                "va": (va & mask(55, 0)) & ~(size - 1),
                "size": size,
                "pa": oa,
                "ap": bits(desc, 7, 6),
                "ap_table": ap_table,
            }
        raise Fault(F_TRANSLATION)

    @staticmethod
    def check_perms(e, write, privileged):
        ap = e["ap"]
        if e["ap_table"] & 2:
            ap |= 2  # APTable[1]: read-only below
        if e["ap_table"] & 1:
            ap &= ~1  # APTable[0]: no unprivileged access below
        if privileged:
            ok = not write or ap & 2 == 0
        else:
            ok = ap & 1 and (not write or ap == 0b01)
        if not ok:
            raise Fault(F_PERMISSION)
        return e["pa"]


# ---- the protocol (docs/protocol.md) ---------------------------------------------------------

def num(v):
    """Integers arrive as "0x..." strings (64-bit fields) or JSON numbers."""
    return int(v, 16) if isinstance(v, str) else int(v)


def command(w):
    return (num(w[0]), num(w[1]))


def handle(smmu, req):
    op = req["op"]
    if op == "hello":
        if req["protocol"] != PROTOCOL or req["role"] != "device":
            return None, ("unsupported", "tiny_smmu.py speaks protocol 1 as a device")
        # Probes are translations and faults with event numbers; no write-probe restriction.
        caps = ["translation", "write_probes", "fault_events", "cons", "gerror"]
        return {"protocol": PROTOCOL, "role": "device", "name": NAME, "capabilities": caps}, None
    if op == "id_regs":
        return dict(ID_REGS), None
    if op == "reset":
        smmu.reset()
        return {}, None
    if op == "write":
        for w in req["writes"]:
            smmu.write64(num(w["pa"]), num(w["value"]))
        return {}, None
    if op == "stream_table":
        smmu.strtab_base = num(req["base"])
        smmu.strtab_cfg = num(req["cfg"])
        return {}, None
    if op == "enable":
        smmu.smmuen = bool(req["on"])
        return {}, None
    if op == "submit":
        return smmu.submit([command(c) for c in req["commands"]]), None
    if op == "acknowledge":
        r = req["replace"]
        return smmu.acknowledge(None if r is None else command(r), bool(req["drop"])), None
    if op == "probe":
        ssid = req["ssid"]
        return smmu.probe(num(req["sid"]), None if ssid is None else num(ssid),
                          num(req["addr"]), bool(req["write"])), None
    if op == "bye":
        return {}, None
    return None, ("unsupported", f"unknown op {op!r}")


def main():
    smmu = TinySmmu()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            rid = req.get("id", 0)
        except ValueError as e:
            print(json.dumps({"id": 0, "error": {"kind": "bad_request", "message": str(e)}}),
                  flush=True)
            continue
        try:
            ok, err = handle(smmu, req)
        except (KeyError, TypeError, ValueError) as e:
            ok, err = None, ("bad_request", f"{type(e).__name__}: {e}")
        if err is None:
            out = {"id": rid, "ok": ok}
        else:
            out = {"id": rid, "error": {"kind": err[0], "message": err[1]}}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
        if req.get("op") == "bye":
            return


if __name__ == "__main__":
    main()
