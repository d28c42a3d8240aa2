"""An offline English corpus: sentences from the docstrings of Python's standard library.

No labelled sentence-similarity data ships offline, and the encoder's job here is to keep its embeddings,
so any real English text will do. The standard library's docstrings are on every machine with Python.
Files are parsed with `ast`, never imported (importing `antigravity` opens a browser), and read in sorted
order, so the corpus is the same on every run with the same Python version.
"""

from __future__ import annotations

import ast
import random
import re
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")
_PLAIN_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*[,;:]?$")
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "__pycache__"}


@dataclass(frozen=True)
class Corpus:
    """Disjoint sentence lists: `train` for distillation and calibration, `eval` only for scoring."""

    train: list[str]
    eval: list[str]


def docstring_corpus(n_eval: int = 2000, n_train: int = 4000, seed: int = 0) -> Corpus:
    """Shuffle the standard library's docstring sentences with `seed` and split them.

    >>> corpus = docstring_corpus(n_eval=200, n_train=100)
    >>> len(corpus.eval), len(set(corpus.eval) & set(corpus.train))
    (200, 0)
    """
    sentences = list(_all_sentences())
    needed = n_eval + n_train
    if needed > len(sentences):
        raise ValueError(f"corpus: asked for {needed} sentences, the standard library gives {len(sentences)}")
    random.Random(seed).shuffle(sentences)
    return Corpus(train=sentences[n_eval:needed], eval=sentences[:n_eval])


@lru_cache(maxsize=1)
def _all_sentences() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for path in _stdlib_files():
        for doc in _docstrings(path):
            for sentence in _sentences(doc):
                seen.setdefault(sentence)
    return tuple(seen)


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(root).parts[:-1])]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)))]
    return [doc for node in nodes if (doc := ast.get_docstring(node))]


def _sentences(doc: str) -> list[str]:
    """Prose sentences only: 6-30 plain words, a capital first letter and a full stop; no code or tables."""
    paragraphs = re.split(r"\n\s*\n", doc)
    found = []
    for paragraph in paragraphs:
        if ">>>" in paragraph or "::" in paragraph:
            continue
        text = " ".join(paragraph.split())
        for sentence in _SENTENCE_END.split(text):
            words = sentence.split()
            if not 6 <= len(words) <= 30 or not sentence[0].isupper() or not sentence.endswith("."):
                continue
            plain = sum(bool(_PLAIN_WORD.match(w.rstrip("."))) for w in words)
            if plain >= 0.9 * len(words):
                found.append(sentence)
    return found
