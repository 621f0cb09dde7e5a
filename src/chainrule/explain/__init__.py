"""The explainer: training runs and gradients turned into tables and derivations.

Everything here reads the engine's graph and the numbers a training run recorded; nothing
computes a slope a second way.
"""
