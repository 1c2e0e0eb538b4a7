#!/usr/bin/env python3
"""Turns the captured keepalived adverts (vrrp-core/tests/data/*.pcap) into seed inputs for the
fuzz target packet_decode, in the `arbitrary` encoding of its `Input` struct:
v6 (1 byte), v2_style_checksum (1), src (16), dst (16), fix_checksum (1), then the VRRP bytes.

Usage: scripts/fuzz-seeds-from-pcaps.py [PCAP_DIR] [SEED_DIR]
"""
import hashlib
import os
import struct
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pcap_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "vrrp-core/tests/data")
seed_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "fuzz/seeds/packet_decode")
os.makedirs(seed_dir, exist_ok=True)


def packets(path):
    data = open(path, "rb").read()
    endian = ">" if data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d") else "<"
    at = 24
    while at < len(data):
        incl = struct.unpack(endian + "I", data[at + 8:at + 12])[0]
        frame = data[at + 16:at + 16 + incl]
        at += 16 + incl
        ethertype = struct.unpack(">H", frame[12:14])[0]
        ip = frame[14:]
        if ethertype == 0x0800:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            yield False, ip[12:16] + bytes(12), ip[16:20] + bytes(12), ip[ihl:total]
        elif ethertype == 0x86DD:
            length = struct.unpack(">H", ip[4:6])[0]
            yield True, ip[8:24], ip[24:40], ip[40:40 + length]


count = 0
for name in sorted(os.listdir(pcap_dir)):
    if not name.endswith(".pcap"):
        continue
    seen = set()
    for v6, src, dst, payload in packets(os.path.join(pcap_dir, name)):
        if payload in seen:
            continue
        seen.add(payload)
        for v2_style in (0, 1):
            seed = bytes([int(v6), v2_style]) + src + dst + bytes([0]) + payload
            digest = hashlib.sha1(seed).hexdigest()[:16]
            with open(os.path.join(seed_dir, f"{name[:-5]}-{digest}"), "wb") as f:
                f.write(seed)
            count += 1
print(f"{count} seeds -> {seed_dir}")
