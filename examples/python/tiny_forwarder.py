#!/usr/bin/env python3
"""tiny_forwarder.py: a toy invalidation forwarder in plain Python, plugged into smmu-conform as
an out-of-process forwarder backend (protocol version 1, docs/protocol.md). Standard library
only.

It plays the part of a VMM that takes a guest's stage-1 invalidations and issues them on the
host SMMU (the shape of the Linux iommufd vIOMMU invalidation path):
- CMD_TLBI_NH_VA / NH_VAA / NH_ASID / NH_ALL: reissued with VMID = the guest's host VMID
  (section 4.4.2: the NH_* commands are scoped by VMID on an SMMU with stage 2), rebuilt from
  their fields; a range NH_VA or NH_VAA becomes NH_ALL for the VMID: over-invalidation is legal
  and needs no range support on the host;
- CMD_CFGI_STE / CFGI_CD / CFGI_CD_ALL: the virtual StreamID is replaced by the physical one
  (CFGI_CD widened to CFGI_CD_ALL); an unmapped StreamID stops the batch with an error blaming
  that command;
- stage-1 commands for a guest whose virtual SMMU has no stage 1: an error blaming the command
  (the guest must see CERROR_ILL);
- CMD_SYNC: a host CMD_SYNC with CS = SIG_NONE (the guest's completion is its return), and one
  more after the last host invalidation of a batch, so that everything reported handled has
  completed on the host;
- anything else: an error blaming that command (a real VMM must refuse what it cannot confine).

stdout carries protocol lines only.
"""

import json
import sys

PROTOCOL = 1


def bits(v, hi, lo):
    return (v >> lo) & ((1 << (hi - lo + 1)) - 1)


class TinyForwarder:
    def __init__(self):
        self.vmid = 0
        self.sids = {}

    def setup(self, req):
        self.vmid = int(req["host_vmid"])
        self.sids = {int(v): int(p) for v, p in req["sids"]}
        # What the guest's virtual SMMU implements decides what the guest may issue:
        # stage 1 (SMMU_IDR0.S1P, bit 1) for the NH_* TLBIs and the CD invalidations (4.4.2).
        self.guest_s1p = bool(int(req["guest"]["idr0"]) >> 1 & 1)

    def forward(self, commands):
        host = []
        vmid = self.vmid << 32
        for i, (dw0, dw1) in enumerate(commands):
            op = dw0 & 0xFF
            asid = dw0 & (0xFFFF << 48)
            va_leaf = dw1 & (~0xFFF | 1)  # Address[63:12] and Leaf: the fields every host has
            ranged = bits(dw1, 11, 10) != 0  # TG != 0: a range invalidation (4.4.1.1)
            if op in (0x05, 0x06, 0x10, 0x11, 0x12, 0x13) and not self.guest_s1p:
                # ILLEGAL for this guest: report it so that the guest sees CERROR_ILL.
                return self.synced(host), (i, f"opcode {op:#04x} needs stage 1"), i
            if op in (0x12, 0x13) and ranged and bits(dw0, 16, 12) == 0 \
                    and bits(dw0, 25, 20) == 0 and bits(dw1, 9, 8) == 0:
                # TG != 0 with NUM == SCALE == TTL == 0 is the Reserved range encoding (4.4.1.1).
                return self.synced(host), (i, "Reserved range encoding"), i
            # Host commands are rebuilt from the fields they need, never passed through: the
            # guest's other bits may be RES0 or mean something else on the host (4.1.5).
            if op == 0x10:  # TLBI_NH_ALL
                host.append((0x10 | vmid, 0))
            elif op == 0x11:  # TLBI_NH_ASID
                host.append((0x11 | vmid | asid, 0))
            elif op == 0x12:  # TLBI_NH_VA: a range becomes the whole VMID (NH_ASID would miss
                # the global entries NH_VA must remove, 4.4.2.4): over-invalidation is legal
                host.append((0x10 | vmid, 0) if ranged else (0x12 | vmid | asid, va_leaf))
            elif op == 0x13:  # TLBI_NH_VAA: a range becomes the whole VMID
                host.append((0x10 | vmid, 0) if ranged else (0x13 | vmid, va_leaf))
            elif op in (0x03, 0x05, 0x06):  # CFGI_STE, CFGI_CD, CFGI_CD_ALL
                vsid = bits(dw0, 63, 32)
                if vsid not in self.sids:
                    return self.synced(host), (i, f"StreamID {vsid:#x} is not mapped"), i
                psid = self.sids[vsid] << 32
                if op == 0x03:
                    host.append((0x03 | psid, dw1 & 1))
                else:
                    # CFGI_CD becomes CFGI_CD_ALL: the host may have fewer SubstreamID bits
                    # than the guest, and over-invalidation is legal.
                    host.append((0x06 | psid, 0))
            elif op == 0x46:
                host.append((0x46, 0))
            else:
                return self.synced(host), (i, f"opcode {op:#04x} is not forwarded"), i
        return self.synced(host), None, len(commands)

    @staticmethod
    def synced(host):
        """Entries reported handled must be invalidated on the host: end with a host CMD_SYNC
        after the last invalidation (4.7.3; the model's FWD-SYNC rule)."""
        if host and host[-1][0] & 0xFF != 0x46:
            host.append((0x46, 0))
        return host


def main():
    fwd = TinyForwarder()
    for line in sys.stdin:
        req = json.loads(line)
        rid, op = req["id"], req["op"]
        if op == "hello":
            ok = {"protocol": PROTOCOL, "role": "forwarder", "name": "tiny-forwarder.py",
                  "capabilities": []}
        elif op == "setup":
            fwd.setup(req)
            ok = {}
        elif op == "forward":
            cmds = [(int(a, 16), int(b, 16)) for a, b in req["commands"]]
            host, err, handled = fwd.forward(cmds)
            ok = {
                "host_commands": [[hex(a), hex(b)] for a, b in host],
                "error": None if err is None else {"index": err[0], "message": err[1]},
                "handled": handled,
            }
        elif op == "bye":
            ok = {}
        else:
            out = {"id": rid, "error": {"kind": "unsupported", "message": f"no op {op}"}}
            print(json.dumps(out), flush=True)
            continue
        print(json.dumps({"id": rid, "ok": ok}), flush=True)
        if op == "bye":
            return


if __name__ == "__main__":
    main()
