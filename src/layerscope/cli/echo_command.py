"""``layerscope echo``: one token in, what comes out, with and without BOS, across models (seed 004)."""

from __future__ import annotations

import sys

from .common import run_config

HELP = "feed single words with and without BOS: does the model repeat the word?"
DESCRIPTION = (
    "Feed each word alone (with and without BOS) to one or more models and record the next-token "
    "distribution: top-k, the probability and rank of the word itself, and the echo rate per model. "
    "Free prompts are completed greedily with and without BOS. Models are loaded one at a time."
)


def run(config, args) -> int:
    """Run, write ``--out``, print the summary and the page; a model that failed is one error line (exit 2)."""
    result = run_config(config, args.out, args.force)
    for message in result.failures.values():
        print(f"layerscope: error: {message}", file=sys.stderr)
    return 2 if result.failures else 0
