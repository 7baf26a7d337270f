"""The sweep's config, and the swept experiment's config for one model.

A :class:`SweepConfig` holds the experiment's own config (``base``) and the models; :func:`per_model` gives
``base`` for one model (``dataclasses.replace`` of its ``model``/``models`` field, and its run directory),
:func:`config_of` rebuilds a config from its ``run.json`` record (what a Ray task is given).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ...errors import LayerscopeError, choices_text
from ...experiment import ConfigError, ExperimentConfig, option
from ...load_run import config_from_record
from ...model_spec import ModelSpec, specs_argv
from ...registry import ENTRIES, swept

if TYPE_CHECKING:  # pragma: no cover
    from .result import SweepResult


@dataclass(frozen=True, kw_only=True)
class SweepConfig(ExperimentConfig):
    """What ``layerscope sweep`` runs.

    Attributes:
        base: the experiment's config; its model fields are replaced by each model in turn.
        models: the models, in order (``--model``, repeatable).
        ray_address: an existing Ray cluster (``ray start --head`` prints it); None: a local instance.
        use_ray: False (``--no-ray``) runs the models one after another in this process, as without Ray.
        num_cpus: CPUs of a local Ray instance (default: every core); each model takes one.
        memory_per_model: bytes (or ``"8GB"``) each model's task asks Ray for instead of the estimate.
        resume_dir: the sweep's directory (the runner sets it to ``out``).
    """

    experiment = "sweep"
    loads_own_models = True

    base: ExperimentConfig = option(flag="")
    models: tuple[ModelSpec, ...] = option((ModelSpec(),), flag="--model")
    ray_address: str | None = option(
        None,
        metavar="ADDR",
        help="an existing Ray cluster (HOST:PORT or ray://HOST:PORT); default: a local Ray instance",
    )
    use_ray: bool = option(True, flag="--no-ray", help="run the models one after another in this process")
    num_cpus: int | None = option(None, minimum=1, metavar="N", help="CPUs of the local Ray instance (default: all)")
    memory_per_model: int | str | None = option(
        None,
        metavar="SIZE",
        help="memory each model's Ray task asks for (e.g. 8GB) instead of the estimate from its checkpoint",
    )
    resume_dir: str | None = option(None, flag="")

    def validate(self) -> None:
        if not isinstance(self.base, ExperimentConfig) or isinstance(self.base, SweepConfig):
            raise self.error("base", self.base, "must be an experiment's config, e.g. EchoConfig()")
        if self.base.experiment not in {e.name for e in swept("python")} or model_field(self.base) is None:
            raise self.error(
                "base", self.base.experiment, "cannot be swept over models; give an experiment with a model option"
            )
        if isinstance(self.models, (str, ModelSpec)) or not self.models:
            raise self.error("models", self.models, "must be a non-empty tuple of ModelSpec")
        if not all(isinstance(m, ModelSpec) for m in self.models):
            raise self.error("models", self.models, "must hold ModelSpec values; use ModelSpec.of(source)")
        super().validate()
        for spec in self.models:
            try:
                spec.validate()
            except LayerscopeError as exc:
                raise self.error("models", spec.value, f"is not valid: {exc}") from None
        for spec in self.models:  # every source, before the first model runs
            try:
                spec.check_source()
            except LayerscopeError as exc:
                raise self.error("models", spec.value, f"is not valid: {exc}") from None
        for spec in self.models:  # the experiment's own options, named by their flags, against each model
            per_model(self.base, spec).validate()
        if self.memory_per_model is not None:
            memory_bytes(self)
        if self.ray_address is not None and not str(self.ray_address).strip():
            raise self.error("ray_address", self.ray_address, "is empty; give HOST:PORT or ray://HOST:PORT")

    def to_record(self) -> dict:
        return {**dataclasses.asdict(self), "swept": self.base.experiment}

    @classmethod
    def from_record(cls, data: dict) -> SweepConfig:
        """The config of :meth:`to_record`'s data: ``base`` rebuilt as the config of the ``swept`` experiment."""
        base = config_of(str(data.get("swept")), data.get("base") or {})
        return config_from_record(cls, {k: v for k, v in data.items() if k != "base"}, base=base)

    def command(self) -> list[str]:
        """``layerscope sweep EXPERIMENT --model A --model B [the experiment's options] [sweep options]``."""
        inner = without_models(self.base).command()
        argv = ["layerscope", "sweep", self.base.experiment, *specs_argv(self.models), *inner[2:]]
        if self.ray_address:
            argv += ["--ray-address", str(self.ray_address)]
        if not self.use_ray:
            argv.append("--no-ray")
        if self.num_cpus:
            argv += ["--num-cpus", str(self.num_cpus)]
        if self.memory_per_model is not None:
            argv += ["--memory-per-model", str(self.memory_per_model)]
        return argv

    def run(self, model=None) -> SweepResult:
        from .run import run_sweep

        return run_sweep(self)


def memory_bytes(config: SweepConfig) -> int | None:
    from ...capture import parse_budget

    if config.memory_per_model is None:
        return None
    try:
        value = parse_budget(config.memory_per_model)
    except LayerscopeError:
        value = 0
    if value < 1:
        raise config.error("memory_per_model", config.memory_per_model, "is not a size; give bytes or e.g. '8GB'")
    return value


def model_field(config: ExperimentConfig) -> str | None:
    """``"model"`` or ``"models"``: the field of ``config`` a sweep replaces (None: it has neither)."""
    names = {f.name: f for f in fields(config)}
    if isinstance(getattr(config, "models", None), tuple) and "models" in names:
        return "models"
    if isinstance(getattr(config, "model", None), ModelSpec) and "model" in names:
        return "model"
    return None


def per_model(base: ExperimentConfig, spec: ModelSpec, run_dir: str | None = None) -> ExperimentConfig:
    """``base`` for the one model ``spec`` (and, for a resumable experiment, its run directory)."""
    name = model_field(base)
    config = dataclasses.replace(base, **{name: (spec,) if name == "models" else spec})
    if run_dir is not None and any(f.name == "resume_dir" for f in fields(config)):
        config = dataclasses.replace(config, resume_dir=run_dir)
    return config


def without_models(base: ExperimentConfig) -> ExperimentConfig:
    """``base`` with its model field (and resume directory) at their defaults: its options alone."""
    changes = {}
    for f in fields(base):
        if f.name in ("model", "models", "resume_dir"):
            changes[f.name] = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    return dataclasses.replace(base, **changes)


def config_of(experiment: str, record: dict, resume_dir: str | None = None) -> ExperimentConfig:
    """An experiment's config rebuilt from its ``run.json`` record (what a Ray task is given)."""
    found = ENTRIES.get(experiment)
    if found is None or found.config is None:
        raise LayerscopeError(f"unknown experiment {experiment!r}")
    config = config_from_record(found.config_class(), record)
    if resume_dir is not None and any(f.name == "resume_dir" for f in fields(config)):
        config = dataclasses.replace(config, resume_dir=resume_dir)
    return config


def config_class(experiment: str) -> type[ExperimentConfig]:
    """The config class of an experiment named as on the command line (``echo``, ``layers``, ``ablate``, ...)."""
    names = [e.name for e in swept("python")]
    if experiment not in names:
        raise ConfigError("experiment", experiment, f"cannot be swept; valid: {choices_text(names)}")
    return ENTRIES[experiment].config_class()


def plain(value: Any) -> Any:
    """JSON data as ``run.json`` holds it (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))
