"""src/model_utils/config.py in fresh interpreters: importing it reads nothing, --help prints every key, errors
reach the user as one line through run_cli. (The in-process tests of parsing and validation are in
tests/unit/test_config_parsing.py; ModelArts copies against a real object store in test_modelarts.py.)"""
import subprocess
import sys

import yaml


def _docs(repo_root):
    with open(repo_root / "config.yaml", encoding="utf-8") as f:
        return list(yaml.safe_load_all(f))


# ---------------------------------------------------------------- import and defaults

def test_import_has_no_side_effects(repo_root):
    # In a fresh interpreter (so this session's modules stay untouched): garbage argv and no file opens allowed.
    code = """if True:
        import builtins, sys
        sys.argv = ["prog", "--garbage", "positional", "--lr=oops", "--config_path=/nope.yaml", "--help"]
        def no_open(*args, **kwargs):
            raise AssertionError(f"file opened at import time: {args}")
        builtins.open = no_open
        import src.model_utils, src.model_utils.config, src.model_utils.device_adapter
        import src.model_utils.moxing_adapter
        print("imported", "mindspore" in sys.modules, "moxing" in sys.modules)
    """
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True)
    assert (out.returncode, out.stderr, out.stdout) == (0, "", "imported False False\n")


def test_errors_are_user_errors_through_run_cli(repo_root):
    code = ("from src.utils.errors import run_cli; from src.model_utils.config import get_config; "
            "run_cli(lambda argv: get_config(argv) and 0)")
    out = subprocess.run([sys.executable, "-c", code, "--lrr=0.1"], cwd=repo_root, capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "error: unknown config key 'lrr' (from --lrr=0.1); did you mean 'lr'?\n"


# ---------------------------------------------------------------- --help

def test_help_lists_every_key(repo_root):
    values, descriptions, choices = _docs(repo_root)
    code = "from src.model_utils.config import get_config; get_config(description='Train SRCNN.')"
    for flag in ("--help", "-h"):
        out = subprocess.run([sys.executable, "-c", code, "--lr=0.5", flag], cwd=repo_root,
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stderr == ""
        assert out.stdout.startswith("usage: ") and "Train SRCNN." in out.stdout and "--config_path" in out.stdout
        lines = out.stdout.splitlines()
        for key, description in descriptions.items():
            line = next(l for l in lines if l.strip().startswith(f"--{key}="))
            assert description in line
            if key in choices:
                assert ", ".join(map(str, choices[key])) in line
        assert any(l.strip().startswith("--augment=false") for l in lines)
        assert any(l.strip().startswith('--data_path=""') for l in lines)
        assert any(l.strip().startswith("--lr=0.0001") for l in lines)
