"""Kernels: the ground floor, which imports nothing else of the package.

`ops` (the checked entries of the compiled kernels), `reference` (their plain NumPy
twin), `tables` (the presets, parameter shapes, LeCun's C3 table and constants),
`codes` (the RBF output codes) and `_checks` (argument checks).
"""
