"""eval_onnx.py's work: an exported SRCNN ONNX model run by onnxruntime, scored by the shared protocol.

Framework-free: imports onnxruntime and numpy, never MindSpore (tests/integration/test_deploy.py checks it).
"""
import os

from src.infer.onnx_backend import OnnxPredictor
from src.protocol.image_io import list_images
from src.protocol.report import report
from src.protocol.scoring import evaluate, iter_images
from src.utils.checks import check_output_file, check_outputs_spare_inputs
from src.utils.errors import UserError


def run_eval_onnx(cfg):
    """Score cfg.onnx_path on cfg.data_path, print the table and result line; returns the result dict."""
    if not cfg.data_path:
        raise UserError("data_path is empty: give --data_path=FOLDER of images (e.g. Set5)")
    images = list_images(cfg.data_path, key="data_path")  # a missing or empty folder fails before the model loads
    check_output_file(cfg.output_json, "output_json")
    check_outputs_spare_inputs([("output_json", cfg.output_json)],
                               [("onnx_path", cfg.onnx_path)] + [("data_path", path) for path in images]
                               + [("config_path", f) for f in cfg.config_files()])
    predict = OnnxPredictor(cfg.onnx_path, cfg.device_target, cfg.device_id)
    skipped = []
    result = evaluate(predict, iter_images(cfg.data_path, cfg.scale, skipped, paths=images), cfg.scale,
                      source=cfg.data_path, skipped=skipped)
    report(result, cfg.output_json, onnx_model=os.path.abspath(cfg.onnx_path), providers=predict.providers)
    return result
