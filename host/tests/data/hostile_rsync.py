#!/usr/bin/env python3
"""A hostile `rsync --server --sender` for hoard's tests: it speaks protocol 31 correctly up
to the file list, then lies in the way its first argument names (see SCENARIOS)."""
import struct
import sys

out = sys.stdout.buffer
inp = sys.stdin.buffer


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = inp.read(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data


def varint(x):
    b = struct.pack("<i", x)
    b = bytes([0]) + b  # b[1..5] is the value
    cnt = 4
    while cnt > 1 and b[cnt] == 0:
        cnt -= 1
    bit = 1 << (7 - cnt + 1)
    if b[cnt] >= bit:
        cnt += 1
        first = (~(bit - 1)) & 0xFF
    elif cnt > 1:
        first = (b[cnt] | ~(bit * 2 - 1)) & 0xFF
    else:
        first = b[1]
    return bytes([first]) + b[1:cnt]


def varlong(x, min_bytes):
    b = bytes([0]) + struct.pack("<q", x)
    cnt = 8
    while cnt > min_bytes and b[cnt] == 0:
        cnt -= 1
    bit = 1 << (7 - cnt + min_bytes)
    if b[cnt] >= bit:
        cnt += 1
        first = (~(bit - 1)) & 0xFF
    elif cnt > min_bytes:
        first = (b[cnt] | ~(bit * 2 - 1)) & 0xFF
    else:
        first = b[cnt]
    return bytes([first]) + b[1:cnt]


def frame(payload):
    return struct.pack("<I", (7 << 24) | len(payload)) + payload


XMIT_TOP_DIR = 1
XMIT_LONG_NAME = 1 << 6
XMIT_HLINKED = 1 << 9


def entry(name, mode, size=0, flags=0):
    """One file-list entry with every field sent (xattrs: an empty new set)."""
    data = varint(flags or XMIT_TOP_DIR)
    data += bytes([len(name)]) + name
    data += varlong(size, 3) + varlong(1_600_000_000, 4)
    data += struct.pack("<i", mode)
    data += varint(0) + varint(0)  # uid, gid
    data += varint(0) + varint(0)  # xattrs: new set, no items
    return data


def end_of_list():
    # flags 0, io_error 0, then empty uid and gid name lists
    return varint(0) + varint(0) + varint(0) + varint(0)


def main():
    scenario = sys.argv[1]
    read_exact(4)
    out.write(struct.pack("<i", 31))
    out.write(varint(8 | 32 | 128))  # safe flist, seed fix, varint flags
    out.write(bytes([3]) + b"md5")
    out.flush()
    n = read_exact(1)[0]
    if n & 0x80:
        n = (n & 0x7F) * 256 + read_exact(1)[0]
    read_exact(n)
    out.write(struct.pack("<i", 1234))
    out.flush()
    # The client's filter list: one multiplexed frame.
    header = struct.unpack("<I", read_exact(4))[0]
    read_exact(header & 0xFFFFFF)

    root = entry(b".", 0o040755)
    body = b""
    if scenario == "dotdot":
        body = root + entry(b"../escape", 0o100644, 3) + end_of_list()
    elif scenario == "absolute":
        body = root + entry(b"/etc/evil", 0o100644, 3) + end_of_list()
    elif scenario == "longname":
        body = root + varint(XMIT_LONG_NAME) + varint(100_000) + b"x" * 1000
    elif scenario == "truncated":
        body = root + entry(b"a", 0o100644, 3)[:7]
    elif scenario == "hardlink":
        body = root + varint(XMIT_HLINKED) + bytes([1]) + b"a" + varint(5)
    elif scenario in ("badindex", "badsum"):
        body = root + entry(b"a", 0o100644, 3) + end_of_list()
        if scenario == "badindex":
            body += bytes([0xFE, 0x27, 0x10]) + struct.pack("<H", 0xA000)
        else:
            body += bytes([2]) + struct.pack("<H", 0xA000)
            body += struct.pack("<iiii", 0, 0, 16, 0)
            body += struct.pack("<i", 3) + b"abc" + struct.pack("<i", 0)
            body += b"\x55" * 16  # not the MD5 of "abc"
            body += bytes([0, 0, 0]) + varlong(0, 3) * 5 + bytes([0])
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    out.write(frame(body))
    out.flush()
    if scenario in ("truncated", "longname", "hardlink"):
        return  # the stream ends here
    while inp.read(65536):
        pass


main()
