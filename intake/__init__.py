"""Ways in: an ONNX file with named arrays, a PyTorch module, a scikit-learn estimator, a model
already logged to MLflow. Each becomes an ONNX graph, a contract read from it (and from what the
user says), and named-tensor data, checked and packaged (``lifecycle.version_builder``) and
registered (``intake.register``). ``intake.zoo`` holds the real pretrained models of the tests."""
