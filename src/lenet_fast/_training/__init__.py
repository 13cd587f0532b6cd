"""Training: optimizers (`optim`, SDLM included), learning-rate `schedules`,
distortions (`augment`), the `trainer`, the tuned `recipes` and `metrics`.
"""
