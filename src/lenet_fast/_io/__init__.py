"""Data and files: MNIST (`datasets`), safe file writes (`files`) and the model files
(`checkpoint`: npz; `safetensors_io`; `onnx_export`). These stand below the model and
never import it: they read into checked plain data that the model is built from.
"""
