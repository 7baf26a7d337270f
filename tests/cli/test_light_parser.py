"""``--help`` and a bad option's one line come before any heavy import: the parser is built from light modules."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

#: modules a command loads when it runs, never to print its help or refuse a typo
HEAVY = ("torch", "transformers", "plotly", "matplotlib", "pandas", "accelerate", "safetensors")


def _imported(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m layerscope ARGV``: the process and the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "layerscope", *argv], capture_output=True, text=True, timeout=120
    )
    names = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done, names


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "--help"],
        ["--help"],
        ["sweep", "echo", "--help"],
        ["layers", "--help"],
        ["sensitivity", "--help"],
        ["patch", "--help"],
        ["compare", "--help"],
        ["report", "--help"],
        ["tour", "--help"],
        ["patch", "--method", "nope"],
        ["ablate", "--drop", "x"],
        ["inspect", "--top-k", "x"],
        ["echo", "--bos", "maybe"],
        ["tokens", "--no-such-flag"],
    ],
    ids=" ".join,
)
def test_help_and_bad_options_import_nothing_heavy(argv):
    done, names = _imported(argv)
    assert done.returncode in (0, 2), done.stderr[-2000:]
    assert not names & set(HEAVY), sorted(names & set(HEAVY))
    if done.returncode == 2:  # the one line names the bad value
        lines = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
        assert len(lines) <= 3 and "layerscope" in lines[-1], lines


def _cpu_seconds(argv: list[str]) -> float:
    """The processor time (user + system) of ``python -m layerscope ARGV``: its own work, whatever else the machine
    runs meanwhile (the suite's other workers), where wall time would count the waits too."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "layerscope", *argv], capture_output=True, timeout=120, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def test_help_is_quick():
    _cpu_seconds(["inspect", "--help"])  # warm the file cache
    best = min(_cpu_seconds(["inspect", "--help"]) for _ in range(2))
    # about 0.4 s on 2 cores; importing torch and transformers alone takes several times 1 s
    assert best < 1.0, f"layerscope inspect --help took {best:.2f} s of processor time"


def test_the_light_echo_config_names_the_analysis_bos_settings():
    from layerscope.analysis.echo import BOS_SETTINGS
    from layerscope.experiments import echo_config

    assert echo_config.BOS_SETTINGS == BOS_SETTINGS
    assert echo_config.BOS_CHOICES["both"] == BOS_SETTINGS
