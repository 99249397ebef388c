"""src/model_utils: config loading, typing and validation, each script's own keys, the device adapter, the
ModelArts hooks off ModelArts (in-process: the --help and import checks that need a fresh interpreter are in
tests/integration/test_config.py)."""
import pickle
import sys

import pytest
import yaml

from src.model_utils.config import (
    Config,
    ConfigError,
    get_config,
    load_schema,
    print_config,
    validate,
)
from src.utils.errors import UserError


def _docs(repo_root):
    with open(repo_root / "config.yaml", encoding="utf-8") as f:
        return list(yaml.safe_load_all(f))


def _error(argv, **kw):
    with pytest.raises(ConfigError) as info:
        get_config(argv, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_load_with_their_types(repo_root):
    cfg = get_config([])
    values = _docs(repo_root)[0]
    assert cfg.to_dict() == values
    assert cfg.lr == 0.0001 and cfg.batch_size == 16 and cfg.arch == "9-1-5" and cfg.augment is False
    assert cfg.downscale_factors == [1.0] and cfg.scale == 2 and cfg.output_path == "./output"
    assert cfg.source("lr").endswith("config.yaml")


def test_three_documents_cover_the_same_keys(repo_root):
    values, descriptions, choices = _docs(repo_root)
    assert list(values) == list(descriptions)
    assert all(isinstance(d, str) and d.strip() and "\n" not in d for d in descriptions.values())
    assert set(choices) <= set(values)
    assert all(values[k] in c for k, c in choices.items())
    assert choices["scale"] == [2, 3, 4] and choices["arch"] == ["9-1-5", "9-3-5", "9-5-5"]
    assert load_schema().defaults == values


# ---------------------------------------------------------------- flags and typing

@pytest.mark.parametrize("argv", [["--lr=0.001"], ["--lr", "0.001"]])
def test_float_flag_both_spellings(argv):
    cfg = get_config(argv)
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float)
    assert cfg.source("lr") == " ".join(argv)


def test_float_accepts_int_and_exponent():
    cfg = get_config(["--loss_scale=512", "--lr=1e-3"])
    assert cfg.loss_scale == 512.0 and isinstance(cfg.loss_scale, float) and cfg.lr == 0.001


@pytest.mark.parametrize("text,expected", [("true", True), ("True", True), ("YES", True), ("1", True),
                                           ("false", False), ("False", False), ("no", False), ("0", False)])
def test_bool_flags(text, expected):
    assert get_config([f"--augment={text}"]).augment is expected


def test_bool_rejects_other_words():
    assert _error(["--augment=maybe"]) == \
        "config key 'augment' expects a bool (true/false), got 'maybe' (from --augment=maybe)"


def test_int_rejects_fraction_and_words():
    assert "config key 'batch_size' expects an int, got '1.5'" in _error(["--batch_size=1.5"])
    assert _error(["--batch_size", "abc"]) == \
        "config key 'batch_size' expects an int, got 'abc' (from --batch_size abc)"
    assert get_config(["--batch_size=8"]).batch_size == 8


def test_float_rejects_words_and_nan():
    assert "expects a float" in _error(["--lr=fast"])
    assert "expects a float" in _error(["--lr=nan"])


def test_negative_number_is_a_value_not_a_flag():
    assert "config key 'lr' must be > 0, got -0.1 (from --lr -0.1)" == _error(["--lr", "-0.1"])


def test_string_flag_and_empty_value():
    cfg = get_config(["--data_path=/data/train.mindrecord", "--output_path="])
    assert cfg.data_path == "/data/train.mindrecord" and cfg.output_path == ""
    assert get_config(["--file_name", "123"]).file_name == "123"


@pytest.mark.parametrize("text", ["1.0,0.9,0.8", "[1.0,0.9,0.8]", "[1, 0.9, 0.8]", " 1.0, 0.9 ,0.8 "])
def test_list_of_floats(text):
    assert get_config([f"--downscale_factors={text}"]).downscale_factors == [1.0, 0.9, 0.8]


def test_list_single_value_and_bad_items():
    assert get_config(["--downscale_factors=0.5"]).downscale_factors == [0.5]
    assert "expects a list of floats" in _error(["--downscale_factors=1.0,x"])
    assert "expects a list of floats" in _error(["--downscale_factors=1.0,,0.5"])


def test_unknown_key_suggests():
    assert _error(["--lrr=0.1"]) == "unknown config key 'lrr' (from --lrr=0.1); did you mean 'lr'?"
    assert "did you mean 'batch_size'" in _error(["--batchsize", "4"])
    assert "unknown config key 'zzzzzz'" in _error(["--zzzzzz=1"])


def test_choices():
    assert _error(["--scale=5"]) == "config key 'scale' must be one of 2, 3, 4, got 5 (from --scale=5)"
    assert "must be one of 9-1-5, 9-3-5, 9-5-5" in _error(["--arch=9-9-9"])
    assert "must be one of replicate, zeros, valid" in _error(["--padding=same"])
    cfg = get_config(["--scale=3", "--device_target=gpu", "--amp_level=o2", "--file_format=onnx"])
    assert (cfg.scale, cfg.device_target, cfg.amp_level, cfg.file_format) == (3, "GPU", "O2", "ONNX")


@pytest.mark.parametrize("argv,needle", [
    (["--lr"], "option --lr needs a value"),
    (["--lr", "--batch_size=2"], "option --lr needs a value"),
    (["train.mindrecord"], "unexpected argument 'train.mindrecord'"),
    (["-lr=0.1"], "unexpected argument '-lr=0.1'"),
    (["--augment"], "option --augment needs a value"),
])
def test_malformed_command_lines(argv, needle):
    assert needle in _error(argv)


def test_last_flag_wins():
    assert get_config(["--lr=0.1", "--lr=0.2"]).lr == 0.2


# ---------------------------------------------------------------- --config_path layering

def test_config_path_layers_a_subset(tmp_path):
    layer = tmp_path / "gpu.yaml"
    layer.write_text("device_target: GPU\nbatch_size: 64\nlr: 1e-3\nloss_scale: 256\ndata_path:\n")
    cfg = get_config([f"--config_path={layer}", "--batch_size=32"])
    assert cfg.device_target == "GPU" and cfg.lr == 0.001 and cfg.loss_scale == 256.0 and cfg.data_path == ""
    assert cfg.batch_size == 32  # flags win over the file, whatever their order
    assert cfg.epoch_size == 20  # untouched keys keep the defaults
    assert cfg.source("device_target") == str(layer)
    assert get_config(["--config_path", str(layer)]).batch_size == 64


def test_config_path_three_document_format(tmp_path, repo_root):
    layer = tmp_path / "full.yaml"
    text = (repo_root / "config.yaml").read_text().replace('arch: "9-1-5"', 'arch: "9-5-5"', 1)
    layer.write_text(text)
    assert get_config([f"--config_path={layer}"]).arch == "9-5-5"


def test_config_path_rejects_unknown_keys_and_bad_types(tmp_path):
    layer = tmp_path / "bad.yaml"
    layer.write_text("lr: 0.01\nbatchsize: 4\n")
    assert _error([f"--config_path={layer}"]) == \
        f"unknown config key 'batchsize' (from {layer}); did you mean 'batch_size'?"
    layer.write_text('augment: "true"\n')
    assert f"config key 'augment' expects a bool (true/false), got 'true' (from {layer})" == \
        _error([f"--config_path={layer}"])
    layer.write_text("batch_size: 2.0\n")
    assert "expects an int" in _error([f"--config_path={layer}"])
    layer.write_text("batch_size: true\n")
    assert "expects an int" in _error([f"--config_path={layer}"])
    layer.write_text("downscale_factors: [1.0, yes]\n")
    assert "expects a list of floats" in _error([f"--config_path={layer}"])
    layer.write_text("scale: 8\n")
    assert "must be one of 2, 3, 4" in _error([f"--config_path={layer}"])


def test_config_path_file_problems(tmp_path):
    missing = tmp_path / "missing.yaml"
    assert _error([f"--config_path={missing}"]) == \
        f"config file '{missing}' not found (from --config_path={missing})"
    assert "is a directory" in _error([f"--config_path={tmp_path}"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [0.1\nbatch_size: 2\n")
    message = _error([f"--config_path={broken}"])
    assert message.startswith(f"config file '{broken}' is not valid YAML at line")
    broken.write_text("- 1\n- 2\n")
    assert "must hold 'key: value' mappings, got a list" in _error([f"--config_path={broken}"])
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00lr")
    assert str(binary) in _error([f"--config_path={binary}"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert get_config([f"--config_path={empty}"]) == get_config([])


def test_broken_defaults_file_is_named(tmp_path):
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("a: 1\nb: x\n---\na: first\n---\n")
    assert f"config file '{defaults}': key 'b' needs a description" in _error([], defaults_path=defaults)
    defaults.write_text("a: 1\n---\na: first\n---\na: [2, 3]\n")
    assert "must be one of 2, 3, got 1" in _error([], defaults_path=defaults)
    defaults.write_text("a: 1\n---\na: first\nc: orphan\n")
    assert "description or choices for unknown key 'c'" in _error([], defaults_path=defaults)
    defaults.write_text("a: {x: 1}\n---\na: first\n")
    assert "key 'a' needs a description and a bool, int" in _error([], defaults_path=defaults)
    defaults.write_text("a: 1\n---\na: first\n---\na: 2\n")
    assert "choices of 'a' must be a non-empty list" in _error([], defaults_path=defaults)


# ---------------------------------------------------------------- range validation

@pytest.mark.parametrize("argv,needle", [
    (["--lr=0"], "config key 'lr' must be > 0, got 0.0"),
    (["--min_lr=-1"], "config key 'min_lr' must be >= 0"),
    (["--min_lr=0.01"], "config key 'min_lr' must be between 0 and lr (0.0001)"),
    (["--batch_size=0"], "config key 'batch_size' must be > 0"),
    (["--epoch_size=0"], "config key 'epoch_size' must be > 0"),
    (["--train_steps=-1"], "config key 'train_steps' must be >= 0"),
    (["--patch_size=0"], "config key 'patch_size' must be > 0"),
    (["--stride=0"], "config key 'stride' must be > 0"),
    (["--n1=0"], "config key 'n1' must be > 0"),
    (["--n2=-3"], "config key 'n2' must be > 0"),
    (["--num_workers=0"], "config key 'num_workers' must be >= 1"),
    (["--keep_checkpoint_max=0"], "config key 'keep_checkpoint_max' must be >= 1"),
    (["--save_checkpoint_steps=0"], "config key 'save_checkpoint_steps' must be > 0"),
    (["--val_interval=0"], "config key 'val_interval' must be > 0"),
    (["--log_interval=0"], "config key 'log_interval' must be > 0"),
    (["--image_height=-1", "--image_width=-1"], "config key 'image_height' must be >= 0"),
    (["--image_height=32"], "'image_height' and 'image_width' must both be 0 (dynamic) or both > 0, got 32 and 0"),
    (["--downscale_factors=1.0,0"], "config key 'downscale_factors' must be a non-empty list of values in (0, 1]"),
    (["--downscale_factors=1.5"], "must be a non-empty list of values in (0, 1]"),
    (["--downscale_factors=[]"], "must be a non-empty list of values in (0, 1]"),
    (["--loss_scale=0"], "config key 'loss_scale' must be > 0"),
    (["--tile_size=16"], "config key 'tile_size' must be 0 (whole image) or >= 32, got 16 (from --tile_size=16)"),
])
def test_range_validation(argv, needle):
    assert needle in _error(argv)


def test_valid_edge_values():
    cfg = get_config(["--min_lr=0.0001", "--tile_size=32", "--image_height=64", "--image_width=48",
                      "--train_steps=0", "--downscale_factors=1,0.5"])
    assert cfg.tile_size == 32 and (cfg.image_height, cfg.image_width) == (64, 48)


# ---------------------------------------------------------------- Config object

def test_config_object_behaviour():
    cfg = get_config([])
    with pytest.raises(AttributeError, match="read-only"):
        cfg.lr = 0.1
    with pytest.raises(AttributeError, match="did you mean 'lr'"):
        _ = cfg.lrr
    assert getattr(cfg, "nope", 7) == 7
    d = cfg.to_dict()
    d["downscale_factors"].append(0.5)
    assert cfg.downscale_factors == [1.0]
    assert repr(cfg).startswith("Config(\n    data_path=''") and "    lr=0.0001,\n" in repr(cfg)
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_replace_is_validated_like_flags():
    cfg = get_config([])
    new = cfg.replace(lr=0.01, augment="yes", scale=3, loss_scale=8)
    assert (new.lr, new.augment, new.scale, new.loss_scale) == (0.01, True, 3, 8.0)
    assert cfg.lr == 0.0001  # original untouched
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        cfg.replace(lrr=1.0)
    with pytest.raises(ConfigError, match="expects an int"):
        cfg.replace(batch_size=1.5)
    with pytest.raises(ConfigError, match="must be one of 2, 3, 4"):
        cfg.replace(scale=5)
    with pytest.raises(ConfigError, match="must be > 0"):
        cfg.replace(batch_size=0)


def test_validate_and_print_config(capsys):
    cfg = validate(Config({"lr": 0.5, "batch_size": 2}))
    assert cfg.replace(batch_size="4").batch_size == 4
    with pytest.raises(ConfigError, match="'lr' must be > 0"):
        validate(Config({"lr": 0.0}))
    print_config(get_config([]))
    out = capsys.readouterr().out
    assert "lr" in out and "0.0001" in out and "downscale_factors" in out


# ---------------------------------------------------------------- device and ModelArts adapters

def test_device_adapter(monkeypatch):
    from src.model_utils import device_adapter as da
    for name in ("DEVICE_ID", "RANK_SIZE", "RANK_ID", "JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    assert (da.get_device_id(), da.get_device_num(), da.get_rank_id(), da.get_job_id()) == (0, 1, 0, "Local")
    monkeypatch.setenv("DEVICE_ID", "3")
    monkeypatch.setenv("RANK_SIZE", "8")
    monkeypatch.setenv("RANK_ID", "5")
    monkeypatch.setenv("JOB_ID", "job42")
    assert (da.get_device_id(), da.get_device_num(), da.get_rank_id(), da.get_job_id()) == (3, 8, 5, "job42")
    monkeypatch.setenv("RANK_SIZE", "eight")
    with pytest.raises(UserError, match="RANK_SIZE must be an integer, got 'eight'"):
        da.get_device_num()


def test_moxing_hooks_are_noops_off_modelarts(monkeypatch):
    from src.model_utils.moxing_adapter import (
        modelarts_post_process,
        modelarts_pre_process,
        moxing_wrapper,
    )
    monkeypatch.setitem(sys.modules, "moxing", None)  # importing it would fail
    cfg = get_config(["--data_url=obs://b/data"])
    modelarts_pre_process(cfg)
    modelarts_post_process(cfg)
    assert moxing_wrapper(cfg, pre_process=lambda: 1 / 0)(lambda: "ok")() == "ok"


def test_checkpoint_url_needs_a_local_path(monkeypatch, tmp_path):
    # refused before any copy: no object-store client is involved (none is importable here)
    from src.model_utils.moxing_adapter import modelarts_pre_process
    monkeypatch.setitem(sys.modules, "moxing", None)
    monkeypatch.setitem(sys.modules, "obs", None)
    cfg = get_config(["--enable_modelarts=true", "--checkpoint_url=obs://b/ckpt", f"--output_path={tmp_path}/out"])
    with pytest.raises(UserError, match="checkpoint_url is set but checkpoint_path is empty"):
        modelarts_pre_process(cfg)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- each entry script its own keys

ENTRY_SCRIPTS = ("train.py", "eval.py", "eval_onnx.py", "export.py", "test.py", "preprocess.py", "postprocess.py",
                 "create_dataset.py", "run_infer_reference.py", "convert_official_weights.py")


def _help_flags(script, capsys):
    with pytest.raises(SystemExit) as info:
        get_config(["--help"], script=script)
    assert info.value.code == 0
    import re

    return re.findall(r"^  --(\w+)=", capsys.readouterr().out, re.M)


def test_every_key_belongs_to_a_script_and_every_script_key_exists():
    from src.model_utils.config import SCRIPT_KEYS

    assert sorted(SCRIPT_KEYS) == sorted(ENTRY_SCRIPTS)
    declared = set().union(*map(set, SCRIPT_KEYS.values()))
    assert declared == set(load_schema().defaults)


@pytest.mark.parametrize("script", ENTRY_SCRIPTS)
def test_help_lists_exactly_the_scripts_keys(script, capsys):
    from src.model_utils.config import SCRIPT_KEYS

    flags = _help_flags(script, capsys)
    assert flags[0] == "config_path"
    # in config.yaml's order, each once
    assert flags[1:] == [key for key in load_schema().defaults if key in SCRIPT_KEYS[script]]
    assert _help_flags(f"/some/where/{script}", capsys) == flags  # the script's path works as well as its name


def test_help_of_a_script_keeps_the_descriptions_and_choices(capsys):
    with pytest.raises(SystemExit):
        get_config(["--lr=0.5", "-h"], script="eval.py", description="Evaluate SRCNN.")
    out = capsys.readouterr().out
    assert out.startswith("usage: ") and "Evaluate SRCNN." in out
    line = next(text for text in out.splitlines() if text.strip().startswith("--scale=2 "))
    assert "super-resolution factor" in line and "[choices: 2, 3, 4]" in line


@pytest.mark.parametrize("script, flag, users", [
    ("eval.py", "--lr=0.01", "train.py"),
    ("train.py", "--onnx_path=m.onnx", "eval_onnx.py"),
    ("preprocess.py", "--checkpoint_path=a.ckpt", "eval.py, test.py, export.py"),
    ("create_dataset.py", "--seed=3", "train.py"),
    ("eval_onnx.py", "--src_folder=T91", "create_dataset.py"),
    ("export.py", "--save_images=out", "eval.py"),
    ("postprocess.py", "--file_format=ONNX", "export.py"),
])
def test_a_flag_of_another_script_names_the_scripts_that_use_it(script, flag, users):
    key = flag[2:].split("=")[0]
    message = _error([flag], script=script)
    expected = f"config key '{key}' is not used by {script} (it is a key of {users}; from {flag})"
    # a key of the script spelled like it may be suggested (train.py: onnx_path -> output_path?)
    assert message == expected or message.startswith(expected + "; did you mean '")


def test_a_flag_of_another_script_is_refused_before_its_value_is_read():
    # the value would be invalid for train.py too: the message is about the script, not the value
    assert "is not used by eval.py" in _error(["--lr=fast"], script="eval.py")


def test_unknown_flag_suggests_one_of_the_scripts_own_keys():
    assert _error(["--tile=64"], script="eval.py") == \
        "unknown config key 'tile' (from --tile=64); did you mean 'tile_size'?"
    # 'lrr' is close to train.py's lr, which eval.py does not take: no suggestion to use it
    assert _error(["--lrr=0.1"], script="eval.py") == \
        "unknown config key 'lrr' (from --lrr=0.1); run with --help to list the keys"
    assert _error(["--lrr=0.1"], script="train.py") == \
        "unknown config key 'lrr' (from --lrr=0.1); did you mean 'lr'?"


def test_a_shared_recipe_may_carry_other_scripts_keys(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("arch: 9-5-5\nlr: 0.0003\nbatch_size: 64\nsrc_folder: T91\nfile_format: ONNX\n")
    cfg = get_config([f"--config_path={recipe}", "--scale=3"], script="eval.py")
    assert (cfg.arch, cfg.lr, cfg.scale, cfg.file_format) == ("9-5-5", 0.0003, 3, "ONNX")
    assert cfg.source("lr") == str(recipe)
    # ... but its values are still checked, and an unknown key is still an error
    recipe.write_text("lr: -1\n")
    assert _error([f"--config_path={recipe}"], script="eval.py") == \
        f"config key 'lr' must be > 0, got -1.0 (from {recipe})"
    recipe.write_text("learning_rate: 0.1\n")
    assert _error([f"--config_path={recipe}"], script="eval.py").startswith("unknown config key 'learning_rate'")


def test_library_use_without_a_script_takes_every_key():
    cfg = get_config(["--lr=0.01", "--onnx_path=m.onnx", "--src_folder=T91"])
    assert (cfg.lr, cfg.onnx_path, cfg.src_folder) == (0.01, "m.onnx", "T91")


@pytest.mark.parametrize("entry", ["train.py", "eval.py", "eval_onnx.py", "export.py", "test.py", "preprocess.py",
                                   "postprocess.py", "src/create_dataset.py"])
def test_each_entry_script_parses_with_its_own_name(entry, repo_root):
    # the script= argument of its get_config call is its own file (__file__) or its own name
    import ast
    import os

    tree = ast.parse((repo_root / entry).read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) == "get_config"]
    assert len(calls) == 1, entry
    script = next(k.value for k in calls[0].keywords if k.arg == "script")
    assert (isinstance(script, ast.Name) and script.id == "__file__") or \
        (isinstance(script, ast.Constant) and script.value == os.path.basename(entry))
