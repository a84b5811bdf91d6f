"""A tiny authoritative DNS server over UDP on 127.0.0.1 (RFC 1035), standard library only, for
the DNS re-resolution tests: it answers A queries from a dict that the test changes while it
runs, answers other types of a known name with an empty NOERROR (so an AAAA query finds
nothing), and unknown names with NXDOMAIN. It counts the queries it receives per name."""

import socket
import struct
import threading

TTL = 1


class DnsServer:
    def __init__(self, records):
        """records: {name: [ipv4, ...]} (names compared without case and trailing dot)."""
        self.lock = threading.Lock()
        self.records = {}
        self.queries = {}
        for name, addrs in records.items():
            self.set(name, addrs)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="dns")
        self.thread.start()

    def set(self, name, addrs):
        with self.lock:
            self.records[name.lower().rstrip(".")] = list(addrs)

    def count(self, name):
        with self.lock:
            return self.queries.get(name.lower().rstrip("."), 0)

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    pass

    def _answer(self, data):
        if len(data) < 12:
            return None
        qid, flags, qdcount = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or qdcount != 1:
            return None  # a response, or more than one question: ignored
        labels, i = [], 12
        while i < len(data):
            n = data[i]
            i += 1
            if n == 0:
                break
            if n & 0xC0 or i + n > len(data):
                return None  # no compression in questions
            labels.append(data[i:i + n].decode("ascii", "replace"))
            i += n
        if i + 4 > len(data):
            return None
        qtype, qclass = struct.unpack("!HH", data[i:i + 4])
        question = data[12:i + 4]
        name = ".".join(labels).lower()
        with self.lock:
            self.queries[name] = self.queries.get(name, 0) + 1
            addrs = self.records.get(name)
        rcode = 0 if addrs is not None else 3
        answers = b""
        n_answers = 0
        if addrs and qtype == 1 and qclass == 1:
            for a in addrs:
                answers += struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + socket.inet_aton(a)
                n_answers += 1
        # QR, the query's opcode and RD, AA, RA.
        rflags = 0x8000 | (flags & 0x7800) | (flags & 0x0100) | 0x0400 | 0x0080 | rcode
        head = struct.pack("!HHHHHH", qid, rflags, 1, n_answers, 0, 0)
        return head + question + answers
