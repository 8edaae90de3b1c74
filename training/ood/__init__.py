"""Evaluation-only out-of-distribution query generator.

Nothing here is used to train, and nothing here imports ``training.synth``: its backgrounds,
stickers, hand pool (the evaluation subjects of ``training.handsplit``), geometry, lighting,
sensor noise and compression are its own, so a model cannot have learned them.
"""
