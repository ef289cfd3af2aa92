"""The fake driver's consoles, answered in process so that the whole
console path (API, token, proxy) runs without a hypervisor:

* :class:`FakeRFBServer`: a minimal RFB 3.8 server (security type None)
  with a static framebuffer, sent raw-encoded in the client's pixel
  format on each non-incremental update request;
* :class:`SerialEcho`: a serial console that says which guest it is and
  echoes every byte typed into it.
"""

from __future__ import annotations

import struct

from twisted.internet import protocol

#: RFB 3.8 ServerInit pixel format: 32 bpp, depth 24, little endian, true
#: colour, 8 bits per channel, red at bit 16, green 8, blue 0.
_SERVER_FORMAT = struct.pack("!BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255,
                             16, 8, 0)

#: Bytes of each client message after its type byte, where fixed.
_FIXED = {0: 19, 3: 9, 4: 7, 5: 5}


def test_pattern(width: int, height: int) -> list[tuple[int, int, int]]:
    """A static picture: colour bars over a grey ramp (never blank)."""
    bars = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
            (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]
    pixels = []
    for y in range(height):
        for x in range(width):
            if y < height * 2 // 3:
                pixels.append(bars[x * len(bars) // width])
            else:
                level = x * 255 // max(1, width - 1)
                pixels.append((level, level, level))
    return pixels


class FakeRFBServer(protocol.Protocol):
    """One client of a guest's fake VNC server."""

    def __init__(self, name: str, width: int, height: int,
                 pixels: list[tuple[int, int, int]]):
        self.name = name.encode("utf-8")
        self.width = width
        self.height = height
        self.pixels = pixels
        self.buffer = b""
        self.state = "version"
        #: Client pixel format: bpp, big endian, shifts and maxima.
        self.format = (32, False, 16, 8, 0, 255, 255, 255)
        self.keys: list[int] = []

    def connectionMade(self):
        self.transport.write(b"RFB 003.008\n")

    def dataReceived(self, data: bytes):
        self.buffer += data
        while self._step():
            pass

    def _take(self, count: int) -> bytes | None:
        if len(self.buffer) < count:
            return None
        chunk, self.buffer = self.buffer[:count], self.buffer[count:]
        return chunk

    def _step(self) -> bool:
        if self.state == "version":
            version = self._take(12)
            if version is None:
                return False
            if not version.startswith(b"RFB 003.00"):
                self.transport.loseConnection()
                return False
            self.transport.write(b"\x01\x01")  # one type: None
            self.state = "security"
            return True
        if self.state == "security":
            choice = self._take(1)
            if choice is None:
                return False
            if choice != b"\x01":
                reason = b"only security type None is offered"
                self.transport.write(struct.pack("!II", 1, len(reason))
                                     + reason)
                self.transport.loseConnection()
                return False
            self.transport.write(struct.pack("!I", 0))
            self.state = "init"
            return True
        if self.state == "init":
            if self._take(1) is None:  # ClientInit (shared flag)
                return False
            self.transport.write(
                struct.pack("!HH", self.width, self.height) + _SERVER_FORMAT
                + struct.pack("!I", len(self.name)) + self.name)
            self.state = "normal"
            return True
        return self._message()

    def _message(self) -> bool:
        if not self.buffer:
            return False
        kind = self.buffer[0]
        if kind in _FIXED:
            body = self._take(1 + _FIXED[kind])
            if body is None:
                return False
            if kind == 0:
                (bpp, _, big, _true, rmax, gmax, bmax, rs, gs,
                 bs) = struct.unpack("!BBBBHHHBBB3x", body[4:20])
                self.format = (bpp, bool(big), rs, gs, bs, rmax, gmax, bmax)
            elif kind == 3:
                incremental = body[1]
                if not incremental:
                    self._send_frame()
            elif kind == 4:
                self.keys.append(struct.unpack("!I", body[4:8])[0])
            return True
        if kind == 2:  # SetEncodings
            if len(self.buffer) < 4:
                return False
            count = struct.unpack("!H", self.buffer[2:4])[0]
            return self._take(4 + 4 * count) is not None
        if kind == 6:  # ClientCutText
            if len(self.buffer) < 8:
                return False
            length = struct.unpack("!I", self.buffer[4:8])[0]
            return self._take(8 + length) is not None
        self.transport.loseConnection()
        return False

    def _send_frame(self) -> None:
        bpp, big, rs, gs, bs, rmax, gmax, bmax = self.format
        size = bpp // 8
        order = "big" if big else "little"
        out = bytearray()
        for r, g, b in self.pixels:
            value = ((r * rmax // 255) << rs) | ((g * gmax // 255) << gs) \
                | ((b * bmax // 255) << bs)
            out += value.to_bytes(size, order)
        header = struct.pack("!BxH", 0, 1) + struct.pack(
            "!HHHHi", 0, 0, self.width, self.height, 0)
        self.transport.write(header + bytes(out))


class FakeRFBFactory(protocol.Factory):
    def __init__(self, name: str, width: int = 320, height: int = 200):
        self.name = name
        self.width = width
        self.height = height
        self.pixels = test_pattern(width, height)

    def buildProtocol(self, addr):
        return FakeRFBServer(self.name, self.width, self.height,
                             self.pixels)


class SerialEcho(protocol.Protocol):
    """A guest's serial console: a banner, then every byte echoed."""

    def __init__(self, banner: bytes):
        self.banner = banner

    def connectionMade(self):
        self.transport.write(self.banner)

    def dataReceived(self, data: bytes):
        self.transport.write(data)


class SerialEchoFactory(protocol.Factory):
    def __init__(self, instance_uuid: str):
        self.banner = (f"fake serial console of {instance_uuid}\r\n"
                       .encode("utf-8"))

    def buildProtocol(self, addr):
        return SerialEcho(self.banner)
