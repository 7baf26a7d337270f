"""Running the model and recording what passes through it: residual stream capture, layer ablation."""

from .engine import capture_residuals
from .layer_spec import (
    EMBED,
    FINAL_NORM,
    check_layers_syntax,
    layer_depth,
    layer_name,
    layer_title,
    parse_layers,
    resolve_layer,
)
from .prompts import CapturePrompt, prompts_at
from .storage import DEFAULT_MEMORY_BUDGET, parse_budget
