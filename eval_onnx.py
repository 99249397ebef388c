"""Evaluate an exported SRCNN ONNX model with onnxruntime (no MindSpore needed), same protocol as eval.py.

    python eval_onnx.py --data_path=Set5 --onnx_path=srcnn.onnx --scale=2 [--device_target=GPU|CPU]
                        [--device_id=0] [--output_json=FILE]

GPU uses onnxruntime's CUDAExecutionProvider; without it a warning is printed and the run goes on on CPU.
"""
import src  # noqa: F401  (kept for symmetry with the other entry points; sets no MindSpore state)
from src.utils.errors import run_cli


def main(argv):
    from src.model_utils.config import get_config

    cfg = get_config(argv, script=__file__, description=__doc__)
    from src.infer.evaluate_onnx import run_eval_onnx

    run_eval_onnx(cfg)


if __name__ == "__main__":
    run_cli(main)
