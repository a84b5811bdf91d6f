"""A small MaxMind DB writer for the tests, written from the MaxMind DB File Format
Specification 2.0 (https://maxmind.github.io/MaxMind-DB/).

A file is three parts:

    [binary search tree][16 zero bytes][data section]["\\xab\\xcd\\xefMaxMind.com"][metadata]

The tree has one level per address bit (32 for ip_version 4, 128 for 6; IPv4 networks of an
IPv6 tree live at ::a.b.c.d, where libmaxminddb looks them up). Each node holds two records
(bit 0, bit 1) of record_size bits: a value below node_count is another node, node_count means
"no data", and a larger value v points at data section offset v - node_count - 16. Values are
encoded as a control byte (type in the top 3 bits, 0 = extended type in the next byte; size in
the low 5 bits, 29/30/31 meaning 1/2/3 more size bytes), then the payload. Only what the tests
need is written: maps, UTF-8 strings, unsigned integers, arrays; no pointers (each distinct
record is stored once and shared by the networks that map to it).

    write(path, {"127.0.0.2/32": {"country": {"iso_code": "US"}}}, ip_version=6, record_size=24)

Run as a script to write a file: python3 mmdb.py OUT [--ip-version 4|6] [--record-size N]
    CIDR=CC ... (CC becomes {"country": {"iso_code": CC}}).
"""

import ipaddress
import struct
import sys
import time

MARKER = b"\xab\xcd\xefMaxMind.com"

T_UTF8, T_UINT16, T_UINT32, T_MAP, T_UINT64, T_ARRAY = 2, 5, 6, 7, 9, 11


class U16(int):
    pass


class U32(int):
    pass


class U64(int):
    pass


def _control(type_, size):
    if size < 29:
        bits, extra = size, b""
    elif size < 29 + 256:
        bits, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        bits, extra = 30, struct.pack(">H", size - 285)
    else:
        bits, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_ <= 7:
        return bytes([(type_ << 5) | bits]) + extra
    return bytes([bits, type_ - 7]) + extra


def _uint(type_, v, width):
    if v < 0 or v >= 1 << (8 * width):
        raise ValueError("%d does not fit in %d bytes" % (v, width))
    payload = v.to_bytes(width, "big").lstrip(b"\0")
    return _control(type_, len(payload)) + payload


def encode(v):
    """The data-section bytes of v: dict (map), str (utf8_string), U16/U32/U64 or a plain int
    (uint32), list or tuple (array)."""
    if isinstance(v, dict):
        out = _control(T_MAP, len(v))
        for k, x in v.items():
            out += encode(str(k)) + encode(x)
        return out
    if isinstance(v, str):
        b = v.encode("utf-8")
        return _control(T_UTF8, len(b)) + b
    if isinstance(v, U16):
        return _uint(T_UINT16, v, 2)
    if isinstance(v, U64):
        return _uint(T_UINT64, v, 8)
    if isinstance(v, int) and not isinstance(v, bool):
        return _uint(T_UINT32, v, 4)
    if isinstance(v, (list, tuple)):
        out = _control(T_ARRAY, len(v))
        for x in v:
            out += encode(x)
        return out
    raise TypeError("cannot encode %r" % (v,))


class _Node:
    __slots__ = ("kids", "num")

    def __init__(self):
        self.kids = [None, None]  # None (empty), _Node, or ("data", offset)
        self.num = -1


def _bits(net, ip_version):
    """The network's address as an int of ip_version's width, and its prefix length there."""
    if ip_version == 4:
        if net.version != 4:
            raise ValueError("%s: IPv6 network in an IPv4 database" % net)
        return int(net.network_address), net.prefixlen, 32
    if net.version == 4:
        return int(net.network_address), 96 + net.prefixlen, 128  # ::a.b.c.d
    return int(net.network_address), net.prefixlen, 128


def build(networks, ip_version=6, record_size=24, database_type="Portico-Test-Country",
          languages=("en",), description=None, build_epoch=None):
    """The bytes of a database mapping each CIDR (str) of networks (dict or list of pairs) to its
    record. Networks must not overlap."""
    if ip_version not in (4, 6) or record_size not in (24, 28, 32):
        raise ValueError("ip_version 4 or 6, record_size 24, 28 or 32")
    items = networks.items() if isinstance(networks, dict) else networks
    data = bytearray()
    offsets = {}  # encoded record -> offset in the data section
    root = _Node()
    for cidr, record in items:
        net = ipaddress.ip_network(cidr, strict=False)
        addr, plen, width = _bits(net, ip_version)
        if plen == 0:
            raise ValueError("a /0 network has no tree node to hang from")
        blob = encode(record)
        if blob not in offsets:
            offsets[blob] = len(data)
            data += blob
        node = root
        for depth in range(plen):
            bit = (addr >> (width - 1 - depth)) & 1
            if depth == plen - 1:
                if node.kids[bit] is not None:
                    raise ValueError("%s overlaps another network" % cidr)
                node.kids[bit] = ("data", offsets[blob])
            else:
                nxt = node.kids[bit]
                if isinstance(nxt, tuple):
                    raise ValueError("%s lies inside another network" % cidr)
                if nxt is None:
                    nxt = node.kids[bit] = _Node()
                node = nxt
    # Number the nodes breadth-first, root first.
    order, queue = [], [root]
    while queue:
        n = queue.pop(0)
        n.num = len(order)
        order.append(n)
        queue.extend(k for k in n.kids if isinstance(k, _Node))
    node_count = len(order)

    def value(k):
        if k is None:
            return node_count
        if isinstance(k, _Node):
            return k.num
        return node_count + 16 + k[1]

    limit = 1 << record_size
    tree = bytearray()
    for n in order:
        left, right = value(n.kids[0]), value(n.kids[1])
        if left >= limit or right >= limit:
            raise ValueError("record_size %d is too small for this database" % record_size)
        if record_size == 24:
            tree += left.to_bytes(3, "big") + right.to_bytes(3, "big")
        elif record_size == 28:
            middle = ((left >> 24) << 4) | (right >> 24)
            tree += (left & 0xFFFFFF).to_bytes(3, "big") + bytes([middle])
            tree += (right & 0xFFFFFF).to_bytes(3, "big")
        else:
            tree += left.to_bytes(4, "big") + right.to_bytes(4, "big")
    meta = {
        "node_count": U32(node_count),
        "record_size": U16(record_size),
        "ip_version": U16(ip_version),
        "database_type": database_type,
        "languages": list(languages),
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(int(time.time()) if build_epoch is None else build_epoch),
        "description": dict(description or {"en": "Portico test database"}),
    }
    return bytes(tree) + b"\0" * 16 + bytes(data) + MARKER + encode(meta)


def country(code):
    """The record a country database holds for an address located in code."""
    return {"country": {"iso_code": code}}


def write(path, networks, **kw):
    """Writes build(networks, **kw) to path (in one write; see build for the arguments)."""
    blob = build(networks, **kw)
    with open(path, "wb") as f:
        f.write(blob)
    return path


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, kw, nets = argv[1], {}, []
    args = iter(argv[2:])
    for a in args:
        if a == "--ip-version":
            kw["ip_version"] = int(next(args))
        elif a == "--record-size":
            kw["record_size"] = int(next(args))
        else:
            cidr, _, code = a.partition("=")
            nets.append((cidr, country(code)))
    write(out, nets, **kw)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
