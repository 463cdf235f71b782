#!/usr/bin/env python3
"""Copies a ROS1 bag (uncompressed chunks), flipping the lowest bit of the first byte of
the first N messages of one topic. Sizes and offsets stay the same, so the bag stays
valid and its index still points at every record; only those messages' values change.
Used by sql/diff.slt to make 'modified' rows.

usage: patch_bag.py IN OUT TOPIC N
"""
import struct
import sys


def fields(header):
    out, pos = {}, 0
    while pos < len(header):
        (n,) = struct.unpack_from("<I", header, pos)
        name, _, value = header[pos + 4 : pos + 4 + n].partition(b"=")
        out[name.decode()] = bytes(value)
        pos += 4 + n
    return out


def records(buf, pos, end):
    while pos < end:
        (hlen,) = struct.unpack_from("<I", buf, pos)
        header = fields(buf[pos + 4 : pos + 4 + hlen])
        (dlen,) = struct.unpack_from("<I", buf, pos + 4 + hlen)
        data = pos + 8 + hlen
        yield header, data, dlen
        pos = data + dlen


def main(src, dst, topic, n):
    buf = bytearray(open(src, "rb").read())
    magic = b"#ROSBAG V2.0\n"
    assert buf.startswith(magic), "not a ROS1 v2.0 bag"
    conns, left = set(), n
    for h, data, dlen in records(buf, len(magic), len(buf)):
        if h.get("op") != b"\x05":
            continue
        assert h.get("compression") == b"none", "only uncompressed chunks"
        for mh, mdata, mlen in records(buf, data, data + dlen):
            op = mh.get("op")
            if op == b"\x07" and mh.get("topic", b"").decode() == topic:
                conns.add(mh["conn"])
            elif op == b"\x02" and mh.get("conn") in conns and left > 0 and mlen > 0:
                buf[mdata] ^= 0x01
                left -= 1
    assert left == 0, f"found only {n - left} messages on {topic}"
    open(dst, "wb").write(buf)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
