"""Fused members (``hydra/launcher=fused``): the runs of a multirun that can share a training step (the rows ×
seeds of a table, an α sweep on one CIFAR architecture) trained in one process as one fused model, each writing
the run directory its solo run writes and ending where its solo run ends. Beside ``engine/`` (which trains one
run), one module each:

- ``groups``: which runs can train together (``MEMBER_KEYS``: what a member may have of its own) and why the
  others run alone;
- ``model``: the fused model: k members' layers as one (grouped convolutions, per-member BatchNorm, ShakeDrop,
  stochastic depth and DropBlock drawing from each member's generator);
- ``members``: a member's run, random state, log lines and checkpoint cut out of the group's weights;
- ``step``: one step of the group (and its body for a captured CUDA graph);
- ``loop``: ``fit_fused``, the group's epochs, stops, preemption and divergence, as a solo run's.

The launcher is ``hydra_plugins/cutmix_repro_fused``. Nothing is imported here, so the launcher's grouping check
stays light.
"""
