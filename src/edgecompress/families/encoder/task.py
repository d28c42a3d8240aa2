"""The sentence-encoder family as a `Task`: its data, metric, export and input signature. Nothing else.

`edgecompress run` compresses an encoder like any other model: the stages (`remove_ffn`, `distill`,
`block_qat`, `quantize`, ...) are the pipeline's, and this task says what is particular to encoders:

- data: the standard library's docstring sentences, shuffled with the seed and split once: 2,000 held out
  for scoring (never used for training, calibration or choices), the rest for training and calibration, in
  batches of 32 tokenized sentences, each padded to its longest sentence (named inputs `input_ids`,
  `attention_mask`);
- metric: mean cosine to the uncompressed model's embeddings of the held-out sentences, with the 5th
  percentile and overlap@10 of nearest neighbours beside it (`fidelity.py`);
- export: `export.py` (dynamic batch and sequence), latency on real token batches of 1 and 32 sentences;
- shipping: the tokenizer and `encoder.json` beside the final model in `artifact/`, so `edgecompress embed`
  runs it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgecompress.core.errors import UserError
from edgecompress.core.progress import console
from edgecompress.core.tasks.task import Metric, Task
from edgecompress.families.encoder.artifact import save_artifact
from edgecompress.families.encoder.batches import token_batches
from edgecompress.families.encoder.corpus import docstring_corpus
from edgecompress.families.encoder.export import export_encoder
from edgecompress.families.encoder.fidelity import fidelity
from edgecompress.families.encoder.model_dir import LoadedEncoder

TASK_NAME = "sentence-encoder"
EVAL_SENTENCES = 2000
TRAIN_SENTENCES = 6000
BATCH_SIZE = 32
ARTIFACT_DIR = "artifact"  # final model + tokenizer: what `edgecompress embed` reads


def sentence_encoder_task(encoder: LoadedEncoder, seed: int = 0, n_eval: int = EVAL_SENTENCES, n_train: int = TRAIN_SENTENCES) -> Task:
    """The task of keeping `encoder`'s embeddings: data, fidelity metric, export and shipping.

    The reference embeddings are the uncompressed model's, computed in torch when the scoring first needs them
    (`ReferenceBatches`).

    >>> task = sentence_encoder_task(load_encoder(), seed=0)  # doctest: +SKIP
    >>> task.metric.name  # doctest: +SKIP
    'cosine'
    """
    corpus = docstring_corpus(n_eval=n_eval, n_train=n_train, seed=seed)
    train = [(_tensors(feed), _no_labels(feed)) for feed in token_batches(encoder.tokenizer, corpus.train, BATCH_SIZE, encoder.max_length)]
    eval_inputs = [_tensors(feed) for feed in token_batches(encoder.tokenizer, corpus.eval, BATCH_SIZE, encoder.max_length)]
    evaluation = ReferenceBatches(encoder.model, eval_inputs)

    def latency_inputs(batch: int) -> dict[str, torch.Tensor]:
        return _first(eval_inputs[0], batch)

    def ship(final_onnx: Path, run_dir: Path) -> None:
        save_artifact(final_onnx, encoder.tokenizer, encoder.max_length, run_dir / ARTIFACT_DIR)

    return Task(
        name=TASK_NAME,
        train_loader=train,
        eval_loader=evaluation,
        metric=Metric("cosine", _mean_cosine, higher_is_better=True, details=_fidelity_details),
        loss_fn=_no_label_loss,
        export=export_encoder,
        latency_inputs=latency_inputs,
        latency_batches=(1, BATCH_SIZE),
        ship=ship,
        labels=False,
        class_dim=None,  # an embedding: distilled by cosine
    )


class ReferenceBatches:
    """The held-out batches with the uncompressed model's embeddings as targets, computed when first needed:
    the first batch alone (what the checks before a run read, so `validate` embeds 32 sentences, not 2,000),
    the rest in one pass at the first full read, then kept."""

    def __init__(self, model, inputs: list[dict[str, torch.Tensor]]):
        self.model, self.inputs = model, inputs
        self._first: torch.Tensor | None = None
        self._all: list[torch.Tensor] | None = None

    def __iter__(self):
        for index, inputs in enumerate(self.inputs):
            yield inputs, self._reference(index)

    def __len__(self) -> int:
        return len(self.inputs)

    def _reference(self, index: int) -> torch.Tensor:
        if self._first is None:
            self._first = _embed(self.model, self.inputs[:1])[0]
        if index == 0:
            return self._first
        if self._all is None:
            console.log(f"{TASK_NAME}: embedding {sum(len(b['input_ids']) for b in self.inputs):,} held-out sentences with the uncompressed model")
            self._all = _embed(self.model, self.inputs)
        return self._all[index]


def _tensors(feed) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(value) for name, value in feed.items()}


def _no_labels(feed) -> torch.Tensor:
    return torch.zeros(len(feed["input_ids"]), 0)


def _no_label_loss(outputs, targets):
    raise UserError(f"finetune: the {TASK_NAME} task has no labels; recover fidelity with a distill stage (stage: distill) instead")


def _embed(model, batches: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """The model's embeddings of every sentence, returned in `batches`' shape. Computed on the same sentences
    re-batched by length (half the tokens of batches padded to their longest sentence, so half the time); a
    sentence's embedding does not depend on its batch's padding, up to float rounding."""
    ids = [row[mask.bool()] for batch in batches for row, mask in zip(batch["input_ids"], batch["attention_mask"])]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    embeddings: list[torch.Tensor | None] = [None] * len(ids)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), BATCH_SIZE):
                chunk = order[start : start + BATCH_SIZE]
                width = len(ids[chunk[-1]])
                input_ids = torch.zeros(len(chunk), width, dtype=torch.int64)
                mask = torch.zeros_like(input_ids)
                for row, index in enumerate(chunk):
                    input_ids[row, : len(ids[index])], mask[row, : len(ids[index])] = ids[index], 1
                for index, embedding in zip(chunk, model(input_ids=input_ids, attention_mask=mask)):
                    embeddings[index] = embedding.clone()
    finally:
        model.train(was_training)
    sizes = [len(batch["input_ids"]) for batch in batches]
    rows = torch.stack(embeddings)
    return list(rows.split(sizes))


def _first(feed: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """The first `n` sentences of a batch, trimmed to their own length (no padding beyond it)."""
    mask = feed["attention_mask"][:n]
    length = int(mask.sum(dim=1).max())
    return {name: value[:n, :length] for name, value in feed.items()}


def _mean_cosine(outputs: torch.Tensor, reference: torch.Tensor) -> float:
    return fidelity(reference, outputs).cosine_mean


def _fidelity_details(outputs: torch.Tensor, reference: torch.Tensor) -> dict:
    return {"fidelity": fidelity(reference, outputs).to_json()}
