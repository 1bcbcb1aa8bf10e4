"""The nearest entries to a batch of questions: a first pass over int8 copies of the
vectors, then the exact cosine of the few the first pass cannot rule out.

The first pass is one integer matrix product for the whole batch, run by
onnxruntime (`MatMulInteger`, which uses the CPU's int8 dot-product
instructions): at 100,000 entries it cost 0.3 ms a question at a batch of 32,
against 1.3-2 ms for the float32 product, and 2.9 ms against 12.6 alone.

It is exact, not approximate. Each entry's row is kept as int8 with a scale of its
own, each question's likewise; the error of the first pass's cosine is then at
most `|q| * E + |q - q'| * (1 + E)` (Cauchy-Schwarz), where `E` is the largest
distance between a row and its int8 copy and `|q - q'|` the question's own, both
measured. An entry whose first-pass cosine is more than twice that below the k-th
best first-pass cosine cannot be among the k nearest; the others (about 200 of
100,000) get their exact cosine from the float32 rows.

The model is a graph of one node, written here in ONNX's protobuf encoding (a few
fields; the `onnx` package is not needed to run it). The int8 rows are handed to
onnxruntime from memory, which keeps one copy; with the buffer the products land
in, the first pass costs about 60 MB at 100,000 entries of 384 dimensions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.ops import heap

if TYPE_CHECKING:
    import numpy as np

QUANTIZE_ROWS = 8_192  # rows turned into int8 at a time (no float copy of the whole)
SHARD_ROWS = 32_768  # rows of one onnxruntime session (made one after another)
ZERO = 128  # the questions' zero point: int8 values stored as uint8
# The k-th best first-pass cosine is found among the values at or above the k-th best
# of every SAMPLE_STRIDE-th one (a floor no higher than the k-th best of all).
SAMPLE_STRIDE = 16
SLACK = 1e-5  # for the float32 rounding of the scales and of the exact cosines
MAX_BATCH = 32  # questions in one product (the products' buffer: 13 MB at 100,000 rows)


# --- ONNX's protobuf encoding, as much of it as one MatMulInteger needs ---------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _number(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(field << 3 | 2) + _varint(len(data)) + data


_UINT8, _INT8, _INT32 = 2, 3, 6  # TensorProto.DataType


def _tensor(name: str, array: np.ndarray, kind: int) -> bytes:
    dims = b"".join(_number(1, size) for size in array.shape)
    return dims + _number(2, kind) + _bytes(8, name) + _bytes(9, array.tobytes())


def _outside(name: str, shape: tuple[int, ...], kind: int) -> bytes:
    """A tensor whose data the session is handed from memory (`add_external_initializers`):
    not copied into the model, nor by onnxruntime."""
    dims = b"".join(_number(1, size) for size in shape)
    where = _bytes(13, _bytes(1, "location") + _bytes(2, "memory")) + _number(14, 1)
    return dims + _number(2, kind) + _bytes(8, name) + where


def _value(name: str, kind: int, dims: tuple[int | str, ...]) -> bytes:
    shape = b"".join(_bytes(1, _number(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _number(1, kind) + _bytes(2, shape)))


def _matmul_model(dimensions: int, count: int) -> bytes:
    """questions (uint8, batch × d) · rows' int8 copies (d × n) → int32 (batch × n)."""
    import numpy as np

    node = (
        _bytes(1, "questions")
        + _bytes(1, "rows")
        + _bytes(1, "zero")
        + _bytes(2, "products")
        + _bytes(3, "first_pass")
        + _bytes(4, "MatMulInteger")
    )
    graph = (
        _bytes(1, node)
        + _bytes(2, "nearest")
        + _bytes(5, _outside("rows", (dimensions, count), _INT8))
        + _bytes(5, _tensor("zero", np.array(ZERO, dtype=np.uint8), _UINT8))
        + _bytes(11, _value("questions", _UINT8, ("batch", dimensions)))
        + _bytes(12, _value("products", _INT32, ("batch", count)))
    )
    opset = _bytes(1, "") + _number(2, 13)
    return _number(1, 8) + _bytes(8, opset) + _bytes(7, graph)


# --- the search ----------------------------------------------------------------------


class Int8Rows:
    """int8 copies of a float32 matrix's rows, for the first pass, in shards of
    SHARD_ROWS: each is handed to onnxruntime as soon as it is made, so that making
    them never holds more than one shard twice."""

    def __init__(self, matrix: np.ndarray) -> None:
        import numpy as np

        count, _ = matrix.shape
        self.count = count
        self.scales = np.empty(count, dtype=np.float32)
        self.error = 0.0  # the largest distance between a row and its int8 copy
        self._shards = []
        for start in range(0, count, SHARD_ROWS):
            self._shards.append((start, self._shard(matrix[start : start + SHARD_ROWS], start)))
            heap.trim()  # the shard's int8 rows, now copied into its session
        # The products land in buffers of ours, reused: onnxruntime's arena would keep
        # as much again for every batch size it saw.
        self._products = np.empty((0, count), dtype=np.int32)

    def _shard(self, matrix: np.ndarray, first: int) -> Any:
        import numpy as np
        import onnxruntime

        count, dimensions = matrix.shape
        rows = np.empty((dimensions, count), dtype=np.int8)  # transposed, as the model wants
        for start in range(0, count, QUANTIZE_ROWS):
            block = matrix[start : start + QUANTIZE_ROWS]
            scales = np.abs(block).max(axis=1) / 127
            scales[scales == 0] = 1.0
            quantized = np.rint(block / scales[:, None])
            distance = np.linalg.norm(block - quantized * scales[:, None], axis=1)
            self.error = max(self.error, float(distance.max(initial=0.0)))
            self.scales[first + start : first + start + len(block)] = scales
            rows[:, start : start + len(block)] = quantized.T.astype(np.int8)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # Handed over from memory, not written into the model: onnxruntime copies them
        # into the session once (documented of AddExternalInitializers), and ours go
        # when this returns.
        options.add_external_initializers(
            ["rows"], [onnxruntime.OrtValue.ortvalue_from_numpy(rows)]
        )
        return onnxruntime.InferenceSession(
            _matmul_model(dimensions, count), options, providers=["CPUExecutionProvider"]
        )

    def first_pass(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each question's first-pass cosine with every row, and its error bound."""
        import numpy as np

        scales = np.abs(queries).max(axis=1) / 127
        scales[scales == 0] = 1.0
        quantized = np.rint(queries / scales[:, None])
        distance = np.linalg.norm(queries - quantized * scales[:, None], axis=1)
        cosines = np.empty((len(queries), self.count), dtype=np.float32)
        for at in range(0, len(queries), MAX_BATCH):
            block = (quantized[at : at + MAX_BATCH] + ZERO).astype(np.uint8)
            if len(self._products) < len(block):
                self._products = np.empty((len(block), self.count), dtype=np.int32)
            for start, session in self._shards:
                size = min(SHARD_ROWS, self.count - start)
                # A contiguous (batch × shard) block of the buffer, for this shard.
                products = self._products.reshape(-1)[: len(block) * size].reshape(-1, size)
                binding = session.io_binding()
                binding.bind_cpu_input("questions", block)
                binding.bind_output(
                    "products", "cpu", 0, np.int32, products.shape, products.ctypes.data
                )
                session.run_with_iobinding(binding)
                cosines[at : at + len(block), start : start + size] = products
        cosines *= self.scales
        cosines *= scales[:, None].astype(np.float32)
        norms = np.linalg.norm(queries, axis=1)
        bounds = norms * self.error + distance * (1 + self.error) + SLACK
        return cosines, bounds


def candidates(first: np.ndarray, bound: float, k: int) -> np.ndarray:
    """The rows that may be among the k nearest, given first-pass cosines within
    `bound` of the exact ones (rows ruled out beforehand are -inf)."""
    import numpy as np

    if len(first) <= k:
        return np.flatnonzero(np.isfinite(first))
    sample = first[::SAMPLE_STRIDE]
    if len(sample) > k:
        floor = -np.partition(-sample, k - 1)[k - 1]
        above = first[first >= floor]
    else:
        above = first
    kth = -np.partition(-above, k - 1)[k - 1]  # the k-th best first-pass cosine
    if not np.isfinite(kth):
        return np.flatnonzero(np.isfinite(first))
    # The k-th best exact cosine is at least kth - bound; a row below kth - 2 * bound
    # has an exact cosine below that.
    return np.flatnonzero(first >= kth - 2 * bound)
