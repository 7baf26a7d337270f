"""The runner shared by the command line, the Python API and tour: validate -> load once -> run -> write.

Example:
    >>> config = TokensConfig(sets=("digits",), model=ModelSpec())
    >>> result = execute(config, out="runs/digits")     # loads the default model, runs, writes
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from pathlib import Path
from typing import Literal

from .errors import LayerscopeError
from .experiment import ConfigError, ExperimentConfig, Result
from .model_spec import ModelSpec
from .text_storage import python_strings

Caller = Literal["python", "cli"]

#: set by the command line's Ctrl-C handler; a run starting after it (a tour's next step) stops at once, even if
#: the interrupt itself was swallowed somewhere (an ``Exception ignored`` in a finalizer or a callback)
INTERRUPTED = threading.Event()


@contextlib.contextmanager
def named_for(via: Caller):
    """From the CLI, a :class:`ConfigError` raised in the block names the flag instead of the parameter."""
    try:
        yield
    except ConfigError as exc:
        if via == "cli":
            raise LayerscopeError(exc.cli_message()) from None
        raise


def validate(config: ExperimentConfig, via: Caller = "python") -> None:
    """``config.validate()``; from the CLI, a bad value is named by its flag instead of its parameter."""
    with named_for(via):
        config.validate()


def execute(
    config: ExperimentConfig,
    model=None,
    *,
    out: str | os.PathLike | None = None,
    via: Caller = "python",
    force: bool = False,
) -> Result:
    """Validate ``config`` (no model needed), load its model once (timed) unless ``model`` is given, run, write.

    Args:
        config: any experiment's config.
        model: an already loaded :class:`~layerscope.Model` (or a list of them, for experiments over
            several models); None loads what the config names.
        out: the run directory to write; None writes nothing.
        via: ``"cli"`` names bad values by their flags.
        force: empty ``out`` first when it holds another run or unrelated files (else they are refused).

    Returns:
        The experiment's :class:`~layerscope.experiment.Result` (its ``timings`` hold ``load`` when a
        model was loaded here).
    """
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt
    validate(config, via)
    if out is not None:
        from .rundir import RunDir

        run_dir = RunDir(out)
        created = run_dir.claim(config.experiment, force=force)  # locked for the whole run, checked writable
        try:
            result = _execute(config, model, out, via)
        except BaseException:
            run_dir.release(created)
            raise
        run_dir.unlock()
        return result
    return _execute(config, model, out, via)


def _execute(config: ExperimentConfig, model, out, via: Caller) -> Result:
    if out is not None and getattr(config, "resume_dir", False) is None:  # a resumable run keeps its parts in out
        config = dataclasses.replace(config, resume_dir=os.fspath(out))
    from .notebook import quiet_step

    timings: dict[str, float] = {}
    spec = getattr(config, "model", None)
    # in a notebook, the libraries' warnings and log lines are held while the step runs; token text keeps its
    # lone surrogates in the tables even where pyarrow is installed
    with quiet_step(), python_strings():
        if model is None and isinstance(spec, ModelSpec) and not config.loads_own_models:
            from .models.loading import load_spec_timed  # torch: kept off `import layerscope` and --help

            model = load_spec_timed(spec, timings)
        with named_for(via):  # checks that need the model (a layer it lacks) raise ConfigError from run
            result = config.run(model)
    for key, seconds in timings.items():  # a model loaded here adds to what the run loaded itself
        result.timings[key] = result.timings.get(key, 0.0) + seconds
    if out is not None:
        result.save(Path(out))
    return result
