"""Find, check and load a Hugging Face decoder directory offline: the built-in one or a user's.

As for encoders (`families/encoder/model_dir.py`): local files only, safetensors only, never the folder's
own code, every file checked under `edgecompress.untrusted`'s limits first, every problem one line naming the
directory and what to pass instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgecompress.core.errors import UserError, first_line
from edgecompress.core.verbosity import quiet_libraries
from edgecompress.families.lm.conv1d import conv1d_as_linear
from edgecompress.families.lm.decoder import CausalLM
from edgecompress.untrusted.folders import check_folder
from edgecompress.untrusted.limits import MAX_TEXT_BYTES
from edgecompress.untrusted.regular_files import read_regular_text
from edgecompress.untrusted.safetensors_files import read_safetensors_header

FIELD = "model_dir"


@dataclass
class LoadedDecoder:
    model: CausalLM
    tokenizer: object  # a transformers PreTrainedTokenizerFast
    directory: Path
    context: int  # the most positions the model takes: prompt + generated tokens


def load_decoder(directory: str | Path | None = None) -> LoadedDecoder:
    """Load a causal language model and its tokenizer, offline; `None` is the built-in one (trained once).

    >>> loaded = load_decoder()  # doctest: +SKIP
    >>> loaded.model(loaded.tokenizer("def f(x):", return_tensors="pt")["input_ids"]).shape  # doctest: +SKIP
    torch.Size([1, 5, 4096])
    """
    if directory is None:
        from edgecompress.families.lm.builtin import builtin_model_dir

        directory = builtin_model_dir()
    path = Path(directory)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise UserError(f"{FIELD}: language models need transformers; run `pip install 'edgecompress[text]'`") from exc
    kind = _read_config(path)
    check_folder(path, FIELD)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise UserError(f"{FIELD}: {path} has no model.safetensors; edgecompress loads safetensors weights only (never pickles)")
    read_safetensors_header(weights, FIELD)
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        raise UserError(f"{FIELD}: {path} has no tokenizer (tokenizer.json); copy the model's tokenizer files into it")

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars; our own progress says what runs
    try:
        with quiet_libraries(loggers=("transformers",)):
            lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=True, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise UserError(f"{FIELD}: cannot load {path} ({kind}): {first_line(exc)} (expected config.json, model.safetensors and tokenizer files)") from None
    rows = lm.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise UserError(f"{FIELD}: the tokenizer has {len(tokenizer):,} tokens but the model's embedding has {rows:,} rows; "
                        "the tokenizer files do not belong to this model")
    if tokenizer.eos_token_id is None:
        raise UserError(f"{FIELD}: the tokenizer in {path} has no end-of-text token (eos_token); set it in tokenizer_config.json")
    lm.config.use_cache = True
    conv1d_as_linear(lm)  # GPT-2's layers: every stage then sees the nn.Linear it selects (conv1d.py)
    context = int(getattr(lm.config, "max_position_embeddings", 0) or getattr(lm.config, "n_positions", 0) or 2048)
    return LoadedDecoder(CausalLM(lm.eval()).eval(), tokenizer, path, context)


def _read_config(path: Path) -> str:
    """The model_type of a decoder directory's config.json, or a one-line refusal."""
    if not path.is_dir():
        raise UserError(f"{FIELD}: {path} is not a directory; pass a Hugging Face decoder directory or omit it for the built-in model")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(f"{FIELD}: {path} has no config.json; it is not a Hugging Face model directory")
    try:
        config = json.loads(read_regular_text(config_file, f"{FIELD}: file", MAX_TEXT_BYTES))
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{FIELD}: {config_file} is not valid JSON ({first_line(exc)[:120]})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise UserError(f"{FIELD}: {config_file} has no model_type; it is not a transformers config")
    kind = config["model_type"]
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if config.get("is_encoder_decoder") or kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise UserError(f"{FIELD}: {path} holds a {kind} model, not a decoder language model; pass a Llama-, Qwen2- or GPT-2-style directory")
    architectures = config.get("architectures") or []
    if architectures and not any(str(name).endswith(("ForCausalLM", "LMHeadModel")) for name in architectures):
        raise UserError(f"{FIELD}: {path} holds {', '.join(map(str, architectures))}, not a causal language model; "
                        "pass a directory whose config.json names a ...ForCausalLM architecture")
    return kind
