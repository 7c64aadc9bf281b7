"""Evaluating a trained model as the paper's §4.4 does, and beyond: ``attacks`` (FGSM), ``occlusion``
(centre and boundary occlusion, in-between-class samples), ``ood`` (out-of-distribution detection by
the maximum softmax probability), ``calibration`` (ECE, NLL, Brier, temperature scaling), ``official``
(the authors' released checkpoints). ``python -m cutmix_repro.evaluate`` runs them."""
