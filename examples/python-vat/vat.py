#!/usr/bin/env python3
"""A vat in Python, standard library only: a worker speaking docs/vat-protocol.md.

The kernel runs it as `vat.py worker <vat-name>` (a cluster file names it by
`bundlePath`). Its root object `o+0` answers:

* `bootstrap(vats, services)`: sends `hello("python")` to `vats.bob`, and once bob's
  answer arrives (a `Notify`), resolves its own result to `python got: <answer>`;
* `increment()`: adds 1 to a count kept in the vat store (it survives restarts of the
  vat and of the kernel) and answers the count;
* anything else: rejected with an error.

Only this subset of CBOR is written and read: unsigned and negative integers, byte and
text strings, arrays, maps, tags, false, true, null, and floats (read only).
"""

import struct
import sys

# --- CBOR -----------------------------------------------------------------------------


class Tag:
    """A CBOR tag on a value (the protocol's Value tags: 27001 reference, 27002 error,
    27003 tagged, 27004 big integer, 27005 undefined)."""

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size, fmt in ((24, 1, ">B"), (25, 2, ">H"), (26, 4, ">I"), (27, 8, ">Q")):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError("integer too large for this codec")


def encode(value):
    """CBOR of a Python value: None, bool, int, str, bytes, list, dict (text keys, written
    sorted by their UTF-8 bytes, as a Value record must be; frames accept any order), Tag."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, (bytes, bytearray)):
        return _head(2, len(value)) + bytes(value)
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(encode(item) for item in value)
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-8"))
        return _head(5, len(keys)) + b"".join(encode(k) + encode(value[k]) for k in keys)
    if isinstance(value, Tag):
        return _head(6, value.tag) + encode(value.value)
    raise ValueError("cannot encode %r" % (value,))


def decode(data):
    """The one CBOR item `data` holds (trailing bytes are an error)."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return value


def _decode(data, at, depth):
    if depth > 256:
        raise ValueError("CBOR nested too deeply")
    initial = data[at]
    major, extra = initial >> 5, initial & 31
    at += 1
    if major == 7:
        if extra == 20:
            return False, at
        if extra == 21:
            return True, at
        if extra in (22, 23):
            return None, at
        if extra == 25:
            return struct.unpack(">e", data[at:at + 2])[0], at + 2
        if extra == 26:
            return struct.unpack(">f", data[at:at + 4])[0], at + 4
        if extra == 27:
            return struct.unpack(">d", data[at:at + 8])[0], at + 8
        raise ValueError("unsupported simple value %d" % extra)
    if extra < 24:
        n = extra
    elif extra <= 27:
        size = 1 << (extra - 24)
        n = int.from_bytes(data[at:at + size], "big")
        at += size
    else:
        raise ValueError("indefinite lengths are not used by the protocol")
    if major == 0:
        return n, at
    if major == 1:
        return -1 - n, at
    if major in (2, 3):
        chunk = data[at:at + n]
        if len(chunk) != n:
            raise ValueError("truncated string")
        return (bytes(chunk) if major == 2 else chunk.decode("utf-8")), at + n
    if major == 4:
        items = []
        for _ in range(n):
            item, at = _decode(data, at, depth + 1)
            items.append(item)
        return items, at
    if major == 5:
        fields = {}
        for _ in range(n):
            key, at = _decode(data, at, depth + 1)
            fields[key], at = _decode(data, at, depth + 1)
        return fields, at
    value, at = _decode(data, at, depth + 1)
    return Tag(n, value), at


# --- Frames ---------------------------------------------------------------------------

MAX_FRAME_LEN = 16 * 1024 * 1024


def read_frame(stream):
    """The next frame's CBOR item, or None when the kernel closed the stream."""
    header = stream.read(4)
    if not header:
        return None
    if len(header) != 4:
        raise ValueError("truncated frame header")
    (length,) = struct.unpack(">I", header)
    if length > MAX_FRAME_LEN:
        raise ValueError("oversized frame")
    body = stream.read(length)
    if len(body) != length:
        raise ValueError("truncated frame")
    return decode(body)


def write_frame(stream, value):
    body = encode(value)
    if len(body) > MAX_FRAME_LEN:
        raise ValueError("oversized frame")
    stream.write(struct.pack(">I", len(body)) + body)


def capdata(value, slots=()):
    """CapData of a Value: its CBOR as the body."""
    return {"body": encode(value), "slots": list(slots)}


def error_value(message):
    return Tag(27002, ["Error", message])


# --- The vat --------------------------------------------------------------------------


class Vat:
    def __init__(self, output):
        self.output = output
        self.state = {}  # the vat store: text -> bytes
        self.sets = {}  # what this delivery changed, for its checkpoint
        self.deletes = set()
        self.waiting = {}  # our promise p+N -> the result promise to resolve with its answer

    def syscall(self, syscall):
        write_frame(self.output, {"Syscall": syscall})

    def put(self, key, value):
        self.state[key] = value
        self.sets[key] = value
        self.deletes.discard(key)

    def resolve(self, promise, value, rejected=False):
        if promise is not None:
            resolution = {"promise": promise, "rejected": rejected, "data": capdata(value)}
            self.syscall({"Resolve": [resolution]})

    def fresh_promise(self):
        # Kept in the vat store: a later incarnation must not reuse a promise id.
        n = int(self.state.get("nextPromise", b"1").decode())
        self.put("nextPromise", str(n + 1).encode())
        return "p+%d" % n

    def message(self, target, message):
        body = decode(message["methargs"]["body"])
        slots = message["methargs"]["slots"]
        method, args = body[0], body[1]
        result = message.get("result")
        if target != "o+0":
            self.resolve(result, error_value("no such object"), rejected=True)
        elif method == "bootstrap":
            bob = args[0].get("bob") if args and isinstance(args[0], dict) else None
            if not isinstance(bob, Tag) or bob.tag != 27001:
                self.resolve(result, error_value("bootstrap: no vat named bob"), True)
                return
            answer = self.fresh_promise()
            hello = {
                "target": slots[bob.value[0]],
                "message": {"methargs": capdata(["hello", ["python"]]), "result": answer},
            }
            self.syscall({"Send": hello})
            self.syscall({"Subscribe": answer})
            self.waiting[answer] = result
        elif method == "increment":
            count = int(self.state.get("count", b"0").decode()) + 1
            self.put("count", str(count).encode())
            self.resolve(result, count)
        else:
            self.resolve(result, error_value("no method %s" % method), rejected=True)

    def notify(self, resolutions):
        for resolution in resolutions:
            result = self.waiting.pop(resolution["promise"], None)
            answer = decode(resolution["data"]["body"])
            if resolution["rejected"]:
                self.resolve(result, answer, rejected=True)
            else:
                self.resolve(result, "python got: %s" % answer)

    def done(self, error=None):
        checkpoint = {"sets": sorted(self.sets.items()), "deletes": sorted(self.deletes)}
        checkpoint["sets"] = [[key, value] for key, value in checkpoint["sets"]]
        self.sets, self.deletes = {}, set()
        write_frame(self.output, {"Done": {"checkpoint": checkpoint, "error": error}})
        self.output.flush()


PROTOCOL_VERSION = 1  # docs/vat-protocol.md §5: the version this worker speaks


class VersionMismatch(Exception):
    pass


def serve(input_stream, output):
    vat = Vat(output)
    started = False
    expecting = 0  # vat store entries still to come in State frames
    while True:
        frame = read_frame(input_stream)
        if frame is None or frame == "Shutdown":
            return
        if frame == "Ping":
            write_frame(output, "Pong")
            output.flush()
        elif "Start" in frame:
            # The answer to a start begins with this worker's version, whatever the kernel's.
            write_frame(output, {"Hello": {"protocol": PROTOCOL_VERSION}})
            kernel = frame["Start"].get("protocol", 0)
            if kernel != PROTOCOL_VERSION:
                output.flush()
                raise VersionMismatch(
                    "the kernel speaks vat protocol version %d, this worker speaks version %d"
                    % (kernel, PROTOCOL_VERSION))
            expecting = frame["Start"]["state_entries"]
            if expecting == 0:
                started = True
                vat.done()
        elif "State" in frame:
            for key, value in frame["State"]:
                vat.state[key] = value
            expecting -= len(frame["State"])
            if expecting == 0:
                started = True
                vat.done()
        elif "Deliver" in frame:
            delivery = frame["Deliver"]
            if not started:
                vat.done("cannot deliver before the vat is started")
            elif isinstance(delivery, dict) and "Message" in delivery:
                vat.message(delivery["Message"]["target"], delivery["Message"]["message"])
                vat.done()
            elif isinstance(delivery, dict) and "Notify" in delivery:
                vat.notify(delivery["Notify"])
                vat.done()
            else:
                # BringOutYourDead and the GC deliveries: this vat keeps nothing to drop.
                vat.done()
        else:
            raise ValueError("unknown kernel frame")


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[1] != "worker":
        sys.stderr.write("%s is an ocap vat: name it in a cluster file by bundlePath\n" % sys.argv[0])
        sys.exit(2)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (ValueError, IndexError, KeyError, TypeError, VersionMismatch) as error:
        sys.stderr.write("python vat: %s\n" % error)
        sys.exit(1)


if __name__ == "__main__":
    main()
