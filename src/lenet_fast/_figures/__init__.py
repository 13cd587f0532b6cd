"""Figures and the report: the figures of a model and of training runs (`plot`,
matplotlib) and the HTML report of a model (`report`)."""
