"""A byte-level tokenizer: ids 0..255 are the UTF-8 bytes, then BOS, EOS and PAD.

Every string round-trips (`decode(encode(s)) == s`); special ids are dropped on decode.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ByteTokenizer:
    """UTF-8 bytes as tokens, plus three special ids (`vocab_size` = 259)."""

    num_bytes = 256
    bos_id = 256
    eos_id = 257
    pad_id = 258
    vocab_size = 259

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = False) -> list[int]:
        ids = list(text.encode("utf-8"))
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of the byte ids, stopping at the first EOS; BOS and PAD are skipped."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        out = bytearray()
        for i in values:
            i = int(i)
            if i == self.eos_id:
                break
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the byte vocabulary [0, {self.vocab_size})")
            if i < self.num_bytes:
                out.append(i)
        return out.decode("utf-8", errors="replace")

    def encode_batch(
        self, texts: Sequence[str], length: int | None = None, add_bos: bool = True, add_eos: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(ids [B, L], mask [B, L])`, right-padded with PAD to `length` (default: the longest).

        Raises ValueError when a text is longer than `length`.
        """
        encoded = [self.encode(t, add_bos=add_bos, add_eos=add_eos) for t in texts]
        longest = max((len(e) for e in encoded), default=0)
        length = longest if length is None else length
        if longest > length:
            raise ValueError(f"a text encodes to {longest} tokens, longer than the length {length}")
        ids = torch.full((len(encoded), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), length), dtype=torch.bool)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
            mask[row, : len(e)] = True
        return ids, mask

    def decode_batch(self, ids: torch.Tensor) -> list[str]:
        return [self.decode(row) for row in ids]
