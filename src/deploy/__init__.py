"""Deployment: export to MINDIR/ONNX/AIR, the Ascend 310 pre- and post-processing, and the MINDIR reference
runner that stands in for the 310 harness on CPU."""
