"""A minimal ONNX protobuf writer for tests (no onnx Python package needed).

Not a test itself. Field numbers are those of onnx.proto (ONNX 1.12)."""

import struct


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    return varint(num << 3 | wire) + payload


def vint(num, n):
    return field(num, 0, varint(n))


def blob(num, data):
    if isinstance(data, str):
        data = data.encode()
    return field(num, 2, varint(len(data)) + data)


def f32(num, x):
    return field(num, 5, struct.pack("<f", x))


FLOAT, INT64 = 1, 7


def tensor(name, dims, values=None, data_type=FLOAT, raw=None, external=None):
    b = b"".join(vint(1, d) for d in dims) + vint(2, data_type) + blob(8, name)
    if external is not None:
        for k, v in external.items():
            b += blob(13, blob(1, k) + blob(2, str(v)))
        b += vint(14, 1)
    elif raw is not None:
        b += blob(9, raw)
    elif values is not None:
        if data_type == FLOAT:
            b += blob(9, struct.pack("<%df" % len(values), *values))
        else:
            b += blob(9, struct.pack("<%dq" % len(values), *values))
    return b


def attr_int(name, i):
    return blob(1, name) + vint(3, i) + vint(20, 2)


def attr_ints(name, ints):
    return blob(1, name) + b"".join(vint(8, i) for i in ints) + vint(20, 7)


def attr_float(name, f):
    return blob(1, name) + f32(2, f) + vint(20, 1)


def node(op, inputs, outputs, name="", attrs=()):
    b = b"".join(blob(1, i) for i in inputs) + b"".join(blob(2, o) for o in outputs)
    b += blob(3, name) + blob(4, op)
    b += b"".join(blob(5, a) for a in attrs)
    return b


def value_info(name, dims):
    dim_msgs = b"".join(blob(1, (vint(1, d) if isinstance(d, int) else blob(2, d))) for d in dims)
    tensor_type = vint(1, FLOAT) + blob(2, dim_msgs)
    return blob(1, name) + blob(2, blob(1, tensor_type))


def model(nodes, initializers, inputs, outputs, opset=13):
    graph = b"".join(blob(1, n) for n in nodes) + blob(2, "g")
    graph += b"".join(blob(5, t) for t in initializers)
    graph += b"".join(blob(11, value_info(n, d)) for n, d in inputs)
    graph += b"".join(blob(12, value_info(n, d)) for n, d in outputs)
    return vint(1, 8) + blob(2, "wanwu-tests") + blob(7, graph) + blob(8, blob(1, "") + vint(2, opset))
