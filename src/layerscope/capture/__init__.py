"""Running the model and recording what passes through it: residual stream capture, layer ablation."""
