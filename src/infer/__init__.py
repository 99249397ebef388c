"""Inference: one predictor interface (base.py) with MindSpore, ONNX Runtime, MINDIR and Ascend 310 .bin
backends, and the work of eval.py, eval_onnx.py and test.py on top of it."""
