#!/usr/bin/env python3
"""tiny_forwarder.py: a toy invalidation forwarder in plain Python, plugged into smmu-conform as
an out-of-process forwarder backend (protocol version 1, docs/protocol.md). Standard library
only.

It plays the part of a VMM that takes a guest's stage-1 invalidations and issues them on the
host SMMU (the shape of the Linux iommufd vIOMMU invalidation path):
- CMD_TLBI_NH_VA / NH_VAA / NH_ASID / NH_ALL: reissued with VMID = the guest's host VMID
  (section 4.4.2: the NH_* commands are scoped by VMID on an SMMU with stage 2);
- CMD_CFGI_STE / CFGI_CD / CFGI_CD_ALL: the virtual StreamID is replaced by the physical one;
  an unmapped StreamID stops the batch with an error blaming that command;
- CMD_SYNC: a host CMD_SYNC with CS = SIG_NONE (the guest's completion is its return);
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

    def forward(self, commands):
        host = []
        for i, (dw0, dw1) in enumerate(commands):
            op = dw0 & 0xFF
            if op in (0x10, 0x11, 0x12, 0x13):
                # VMID is DW0[47:32] of the NH_* TLBIs.
                host.append((dw0 & ~(0xFFFF << 32) | (self.vmid << 32), dw1))
            elif op in (0x03, 0x05, 0x06):
                vsid = bits(dw0, 63, 32)
                if vsid not in self.sids:
                    return host, (i, f"StreamID {vsid:#x} is not mapped"), i
                host.append((dw0 & 0xFFFF_FFFF | (self.sids[vsid] << 32), dw1))
            elif op == 0x46:
                host.append((0x46, 0))
            else:
                return host, (i, f"opcode {op:#04x} is not forwarded"), i
        return host, None, len(commands)


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
