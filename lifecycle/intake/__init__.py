"""Ways in: an ONNX file with named arrays, a PyTorch module, a scikit-learn estimator. Each
becomes an ONNX graph, a contract read from it (and from what the user says), and named-tensor
data, ready for ``lifecycle.packaging.package_onnx_model``."""
