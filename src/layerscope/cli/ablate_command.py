"""``layerscope ablate``: task accuracy with each decoder block removed (seed 001, second half).

The run directory keeps the finished configurations: interrupted, it resumes when rerun with the same --out.
"""

HELP = "task accuracy with decoder blocks removed, one configuration at a time"
DESCRIPTION = (
    "Accuracy on a task (a built-in task, see 'layerscope tasks', or your CSV/JSONL file with "
    "prompt,answer columns) with each "
    "decoder block removed in turn, or the sets given with --drop, against the unablated baseline; "
    "--part attn or mlp removes only the block's attention or MLP. "
    "Interrupted, it resumes when rerun with the same --out."
)
