"""The configs of ``layerscope encode`` and ``layerscope similar`` (:func:`layerscope.encode`,
:func:`layerscope.similar`) and of every sentence-embedding command, declared apart from the experiments.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..experiment import ConfigError, ExperimentConfig, option
from ..model_spec import ModelSpec
from ..user_files import UserFileError, read_user_text, text_lines

if TYPE_CHECKING:  # pragma: no cover
    from ..models.embedding import Embedder
    from .encode import EncodeResult, SimilarResult


@dataclass(frozen=True, kw_only=True)
class EmbeddingConfig(ExperimentConfig):
    """What every sentence-embedding command reads: texts (arguments and ``--file``), the model, the batch size.

    Attributes:
        texts: the texts, in order (the command's arguments).
        file: more texts, one per non-blank line, after ``texts``.
        model: which sentence-embedding model (source None: all-MiniLM-L6-v2); only ``source``, ``name``
            and ``trust_remote_code`` apply.
        batch_size: texts per forward pass.
    """

    #: the runner loads no causal LM: :meth:`load_embedder` loads the sentence-embedding model
    loads_own_models = True

    model_options = ("trust_remote_code",)
    #: the name of the default model (``ModelSpec()``): ``models.embedding.DEFAULT_EMBEDDER``, not the causal LM's
    default_model_name: ClassVar[str] = "all-minilm-l6-v2"

    texts: tuple[str, ...] = option((), positional=True, metavar="TEXT")
    file: str | None = option(None, metavar="TEXTS.txt", help="more texts, one per line")
    model: ModelSpec = option(
        ModelSpec(),
        flag="--model",
        help="a sentence-transformers or MLX embedding directory, a cached hub id, or 'default' (all-minilm-l6-v2, "
        "offline; the default); NAME=SOURCE names it in tables and reports",
    )
    batch_size: int = option(32, minimum=1, help="texts per forward pass (default 32)")

    def validate(self) -> None:
        super().validate()
        if self.model.dtype is not None:
            raise self.error("dtype", self.model.dtype, "is not supported for sentence-embedding models (float32)")
        if self.model.device_map is not None:
            raise self.error("device_map", self.model.device_map, "is not supported for sentence-embedding models")
        for name in ("max_memory", "offload_dir"):
            if getattr(self.model, name) is not None:
                raise self.error(name, getattr(self.model, name), "is not supported for sentence-embedding models")
        self.all_texts()

    def all_texts(self) -> list[str]:
        """``texts`` then the non-blank lines of ``file``; a missing file or no text at all is a ConfigError."""
        if isinstance(self.texts, str):
            raise self.error("texts", self.texts, "must be a tuple of texts (the Python API accepts one text)")
        texts = [str(t) for t in self.texts]
        if self.file is not None:
            try:
                text = read_user_text(self.file, "texts file")
            except UserFileError as exc:
                raise self.error("file", self.file, exc.problem) from None
            texts += [line for line in text_lines(text) if line.strip()]
        if not texts:
            problem = "is empty" + (" and the file holds no text" if self.file else "") + "; give at least one text"
            raise ConfigError("texts", self.texts, problem, flag="TEXT")
        return texts

    def load_embedder(self, model: Embedder | None, timings: dict[str, float]) -> Embedder:
        """``model`` when one is given, else the embedder of ``self.model`` (timed in ``timings["load"]``)."""
        if model is not None:
            return model
        from ..models.embedding import load_embedder  # torch: only when a model loads

        start = time.perf_counter()
        embedder = load_embedder(self.model.source, trust_remote_code=self.model.trust_remote_code)
        if self.model.name:
            embedder.name = self.model.name
        timings["load"] = timings.get("load", 0.0) + time.perf_counter() - start
        return embedder


@dataclass(frozen=True, kw_only=True)
class EncodeConfig(EmbeddingConfig):
    """What ``layerscope encode`` runs (see :class:`EmbeddingConfig`).

    Attributes:
        prompt_name: one of the model's own prompts (EmbeddingGemma: ``"query"``, ``"document"``, ...).
    """

    experiment = "encode"

    prompt_name: str | None = option(None, metavar="NAME", help="one of the model's own prompts (e.g. query)")

    def run(self, model=None) -> EncodeResult:
        from .encode import run_encode  # the experiment itself, with its heavy imports: only when it runs

        return run_encode(self, model)


@dataclass(frozen=True, kw_only=True)
class SimilarConfig(EmbeddingConfig):
    """What ``layerscope similar`` runs (see :class:`EmbeddingConfig`).

    Attributes:
        query: the query text.
        query_prompt, document_prompt: a prompt name of the model, ``"auto"`` (the model's own ``query`` /
            ``document`` prompts when it defines them) or ``"none"``.
    """

    experiment = "similar"

    query: str = option(flag="--query", metavar="Q", help="the query text")
    query_prompt: str = option("auto", metavar="NAME", help="prompt name for the query ('none' for none)")
    document_prompt: str = option("auto", metavar="NAME", help="prompt name for the texts ('none' for none)")

    def validate(self) -> None:
        super().validate()
        if not self.query.strip():
            raise self.error("query", self.query, "is empty; give the text to rank the others against")
        for param in ("query_prompt", "document_prompt"):
            if getattr(self, param) is None or not str(getattr(self, param)).strip():
                raise self.error(param, getattr(self, param), "is not valid; give a prompt name, 'auto' or 'none'")

    def run(self, model=None) -> SimilarResult:
        from .encode import run_similar  # the experiment itself, with its heavy imports: only when it runs

        return run_similar(self, model)
