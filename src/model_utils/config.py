"""Settings for every entry point: defaults from <repo>/config.yaml, YAML files given with --config_path layered
over them, then --key=value / --key value flags. Nothing is read or parsed at import time; call get_config()."""
import difflib
import math
import os
import re
import sys
from collections import namedtuple

import yaml

from src import REPO_ROOT
from src.utils.errors import UserError

DEFAULT_CONFIG_PATH = os.path.join(REPO_ROOT, "config.yaml")

Schema = namedtuple("Schema", "defaults descriptions choices path")


class ConfigError(UserError):
    """A bad config key, value, flag or YAML file; the one-line message names it."""


MAX_CONFIG_BYTES = 1 << 20  # a recipe is a few kB; a bigger "config" is a mistake or an attack


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot (1e-4) as floats, as YAML 1.2 does, refuses a
    key given twice in one mapping (the later one would silently win) and refuses aliases (``*name``): a
    config file needs none, and nested aliases are the "billion laughs" expansion bomb."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"aliases (*{event.anchor}) are not allowed in a "
                                              "config file: write the value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        first = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first given at line {first[key] + 1})", key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))

_TYPE_NAMES = {bool: "a bool (true/false)", int: "an int", float: "a float", str: "a string",
               list: "a list of floats (e.g. 1.0,0.9)"}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _kind(default):
    return bool if isinstance(default, bool) else type(default)


def _finite(x):
    if not math.isfinite(x):
        raise ValueError(x)
    return x


def _from_text(kind, text):
    """Parse a command-line string as ``kind``; ValueError if it is not one."""
    t = text.strip()
    if kind is bool:
        if t.lower() in _TRUE + _FALSE:
            return t.lower() in _TRUE
        raise ValueError(text)
    if kind is int:
        return int(t)
    if kind is float:
        return _finite(float(t))
    if kind is list:
        t = t[1:-1] if t.startswith("[") and t.endswith("]") else t
        return [_finite(float(p)) for p in t.split(",")] if t.strip() else []
    return text


def _from_value(kind, value):
    """Check a value read from YAML (or given in Python) against ``kind``; ValueError if it does not fit."""
    if kind is str and value is None:  # `key:` left empty in YAML
        return ""
    if kind is float and type(value) is int:
        return float(value)
    if kind is list and isinstance(value, (list, tuple)):
        return [_from_value(float, v) for v in value]
    if kind is not list and type(value) is kind:
        return _finite(value) if kind is float else value
    raise ValueError(value)


def _coerce(schema, key, value, source, text):
    """Return ``value`` converted to the type of ``key``'s default and checked against its choices."""
    if key not in schema.defaults:
        close = difflib.get_close_matches(key, list(schema.defaults), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; run with --help to list the keys"
        raise ConfigError(f"unknown config key '{key}' (from {source}){hint}")
    kind = _kind(schema.defaults[key])
    try:
        value = _from_text(kind, value) if text else _from_value(kind, value)
    except (ValueError, TypeError):
        raise ConfigError(f"config key '{key}' expects {_TYPE_NAMES[kind]}, got {value!r} (from {source})") from None
    choices = schema.choices.get(key)
    if choices is not None and value not in choices:
        same = [c for c in choices if isinstance(value, str) and str(c).lower() == value.lower()]
        if not same:
            raise ConfigError(f"config key '{key}' must be one of {', '.join(map(str, choices))}, "
                              f"got {value!r} (from {source})")
        value = same[0]
    return value


def _read_yaml(path, source):
    """All documents of a YAML file as dicts (an empty document is {}); ConfigError names the file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file '{path}' is larger than {MAX_CONFIG_BYTES} bytes: not a config file "
                              f"(from {source})")
        docs = list(yaml.load_all(text, Loader=_Loader))
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' not found (from {source})") from None
    except IsADirectoryError:
        raise ConfigError(f"config file '{path}' is a directory, expected a YAML file (from {source})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file '{path}': {err} (from {source})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"config file '{path}' is not valid YAML{where}: {problem} (from {source})") from None
    docs = [{} if d is None else d for d in docs] or [{}]
    for d in docs:
        if not isinstance(d, dict):
            raise ConfigError(f"config file '{path}' must hold 'key: value' mappings, got a {type(d).__name__}")
    return docs


def load_schema(path=DEFAULT_CONFIG_PATH):
    """Read a 3-document config file (values, descriptions, choices) and check it is consistent."""
    defaults, descriptions, choices = (_read_yaml(path, "defaults") + [{}, {}])[:3]
    defaults = {str(k): v for k, v in defaults.items()}
    for key, value in defaults.items():
        if _kind(value) not in _TYPE_NAMES or not descriptions.get(key):
            raise ConfigError(f"config file '{path}': key '{key}' needs a description and a bool, int, float, "
                              f"string or list-of-floats default")
    for key in list(descriptions) + list(choices):
        if str(key) not in defaults:
            raise ConfigError(f"config file '{path}': description or choices for unknown key '{key}'")
    for key, options in choices.items():
        if not isinstance(options, list) or not options:
            raise ConfigError(f"config file '{path}': choices of '{key}' must be a non-empty list")
    schema = Schema(defaults, dict(descriptions), dict(choices), path)
    for key, value in defaults.items():
        _coerce(schema, key, value, path, text=False)  # defaults must fit their own choices
    return schema


class Config:
    """Read-only settings with attribute access (``cfg.lr``); ``cfg.replace(lr=0.01)`` gives a changed copy."""
    __slots__ = ("_values", "_schema", "_sources", "_files")

    def __init__(self, values, schema=None, sources=None, files=()):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_schema", schema or Schema(dict(values), {}, {}, "<dict>"))
        object.__setattr__(self, "_sources", dict(sources or {}))
        object.__setattr__(self, "_files", tuple(files))

    def __getattr__(self, name):
        if not name.startswith("_") and name in self._values:
            return self._values[name]
        close = difflib.get_close_matches(name, list(self._values), n=1) if not name.startswith("_") else []
        raise AttributeError(f"config has no key '{name}'" + (f"; did you mean '{close[0]}'?" if close else ""))

    def __setattr__(self, name, value):
        raise AttributeError(f"Config is read-only; use cfg = cfg.replace({name}=...)")

    def __reduce__(self):
        return Config, (self._values, self._schema, self._sources, self._files)

    def __eq__(self, other):
        return isinstance(other, Config) and self._values == other._values

    def __repr__(self):
        return "Config(\n" + "".join(f"    {k}={v!r},\n" for k, v in self._values.items()) + ")"

    def to_dict(self):
        """A plain dict copy of every key and value."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._values.items()}

    def source(self, key):
        """Where ``key``'s value came from: the defaults file, a --config_path file, a flag or replace()."""
        return self._sources.get(key, self._schema.path)

    def given(self, key):
        """Whether the user set ``key`` (a flag, a --config_path file or replace()): not is_default(key)."""
        return not self.is_default(key)

    def config_files(self):
        """The --config_path files this configuration was read from (inputs no output may replace)."""
        return list(self._files)

    def is_default(self, key):
        """True when ``key`` holds the defaults file's value: no --config_path file, flag or replace() set it."""
        return key not in self._sources

    def replace(self, **changes):
        """A copy with ``changes`` applied, typed, checked against choices and validated like flags.
        String values are parsed like flags (``replace(augment="yes")``); others must have the key's type."""
        values, sources = dict(self._values), dict(self._sources)
        for key, value in changes.items():
            sources[key] = f"replace({key}={value!r})"
            values[key] = _coerce(self._schema, key, value, sources[key], text=isinstance(value, str))
        return validate(Config(values, self._schema, sources, self._files))


_POSITIVE = ("lr", "batch_size", "epoch_size", "patch_size", "stride", "n1", "n2", "save_checkpoint_steps",
             "val_interval", "log_interval", "loss_scale")
_AT_LEAST = {"min_lr": 0, "train_steps": 0, "num_workers": 1, "keep_checkpoint_max": 1, "image_height": 0,
             "image_width": 0, "device_id": 0, "seed": 0, "tile_size": 0}
# upper bounds: what MindSpore and NumPy take without overflow (int32 sizes and counts, a uint32 seed, float32
# values), tighter where a larger value is surely a slip (4096 workers, a 4096-pixel training patch)
INT32_MAX, FLOAT32_MAX = 2 ** 31 - 1, 3.4028234663852886e38
_AT_MOST = {"seed": 2 ** 32 - 1, "num_workers": 4096, "patch_size": 4096, "device_id": 4095, "lr": 1e30,
            "loss_scale": 2.0 ** 24}


def validate(cfg):
    """Check the ranges shared by all scripts; returns ``cfg`` or raises ConfigError naming the key."""
    v = cfg.to_dict()

    def fail(key, expected):
        raise ConfigError(f"config key '{key}' must be {expected}, got {v[key]!r} (from {cfg.source(key)})")

    for key in _POSITIVE:
        if key in v and not v[key] > 0:
            fail(key, "> 0")
    for key, low in _AT_LEAST.items():
        if key in v and not v[key] >= low:
            fail(key, f">= {low}")
    for key, value in v.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        high = _AT_MOST.get(key, INT32_MAX if isinstance(value, int) else FLOAT32_MAX)
        if not abs(value) <= high:
            fail(key, f"at most {high:g}" if isinstance(high, float) else f"at most {high}")
    if "min_lr" in v and "lr" in v and v["min_lr"] > v["lr"]:
        fail("min_lr", f"between 0 and lr ({v['lr']})")
    if "image_height" in v and "image_width" in v and (v["image_height"] == 0) != (v["image_width"] == 0):
        raise ConfigError(f"config keys 'image_height' and 'image_width' must both be 0 (dynamic) or both > 0, "
                          f"got {v['image_height']} and {v['image_width']}")
    factors = v.get("downscale_factors", [1.0])
    if not factors or not all(0 < f <= 1 for f in factors):
        fail("downscale_factors", "a non-empty list of values in (0, 1]")
    if "tile_size" in v and v["tile_size"] != 0 and v["tile_size"] < 32:
        fail("tile_size", "0 (whole image) or >= 32")
    return cfg


_CHECKPOINT_KEYS = ("checkpoint_path", "pretrained_family", "arch", "n1", "n2", "padding", "scale",
                    "override_checkpoint", "device_target", "device_id")
# The config keys each entry script uses: the only ones its command line accepts and its --help lists. A
# --config_path file may hold any key (recipes are shared between scripts); its values are still checked.
SCRIPT_KEYS = {
    "train.py": ("data_path", "output_path", "validation_path", "holdout_images", "arch", "n1", "n2", "padding",
                 "scale", "device_target", "device_id", "lr", "lr_schedule", "min_lr", "batch_size", "epoch_size",
                 "train_steps", "augment", "amp_level", "loss_scale", "seed", "log_interval", "save_checkpoint",
                 "save_checkpoint_steps", "keep_checkpoint_max", "val_interval", "tensorboard", "pre_trained_path",
                 "pre_trained_widen", "resume", "run_distribute", "tile_size", "enable_modelarts", "data_url",
                 "train_url", "checkpoint_url"),
    "create_dataset.py": ("src_folder", "output_folder", "scale", "patch_size", "stride", "downscale_factors",
                          "num_workers", "holdout_images"),
    "eval.py": ("data_path", "output_json", "save_images", "tile_size") + _CHECKPOINT_KEYS,
    "test.py": ("input_path", "output_path", "mode", "compare", "output_json", "tile_size") + _CHECKPOINT_KEYS,
    "export.py": ("file_name", "file_format", "image_height", "image_width") + _CHECKPOINT_KEYS,
    "eval_onnx.py": ("data_path", "onnx_path", "scale", "device_target", "device_id", "output_json"),
    "preprocess.py": ("data_path", "output_path", "scale", "image_height", "image_width"),
    "postprocess.py": ("data_path", "result_path", "preprocess_path", "scale", "output_json"),
    "convert_official_weights.py": ("mat_path", "output", "scale"),
    "run_infer_reference.py": ("mindir_path", "input_path", "result_path", "device_type", "device_id", "data_path",
                               "scale", "output_json", "print_input_shape"),
}


def script_keys(script):
    """The keys ``script`` (an entry script's path or name) accepts; None = every key (library use)."""
    if script is None:
        return None
    return SCRIPT_KEYS[os.path.basename(script)]


def _check_flag_is_for(script, keys, key, source):
    """ConfigError if the command-line flag ``key`` is a known key that ``script`` does not use."""
    if keys is None or key in keys:
        return
    users = [name for name, used in SCRIPT_KEYS.items() if key in used]
    close = difflib.get_close_matches(key, list(keys), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    where = f"it is a key of {', '.join(users)}" if users else "no script uses it"
    raise ConfigError(f"config key '{key}' is not used by {os.path.basename(script)} ({where}; from {source})"
                      f"{hint}")


def _show(value):
    """A default as it would be typed on the command line."""
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return text.lower() if isinstance(value, bool) else text or '""'


def format_help(schema, description=None, keys=None):
    """The --help text: usage, then every key (of ``keys``, default all) with its default, description and
    choices."""
    lines = [f"usage: {os.path.basename(sys.argv[0] or 'script')} [--config_path=FILE] [--key=value | --key value ...]"]
    lines += ["", description] if description else []
    rows = [("--config_path=FILE", "YAML file layered over the defaults (repeatable; flags win)")]
    for key, default in schema.defaults.items():
        if keys is not None and key not in keys:
            continue
        choices = schema.choices.get(key)
        rows.append((f"--{key}={_show(default)}", schema.descriptions.get(key, "")
                     + (f" [choices: {', '.join(map(str, choices))}]" if choices else "")))
    rows.append(("-h, --help", "show this message and exit"))
    width = max(len(flag) for flag, _ in rows)
    lines += ["", f"options (defaults from {schema.path}):"] + [f"  {f:<{width}}  {t}" for f, t in rows]
    return "\n".join(lines)


def _parse_argv(argv):
    """Split argv into ([(file, source)], [(key, text, source)]); ConfigError on anything else."""
    files, flags, i = [], [], 0
    while i < len(argv):
        arg, i = argv[i], i + 1
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}; options look like --key=value (see --help)")
        name, eq, text = arg[2:].partition("=")
        if eq:
            source = arg
        elif i < len(argv) and not argv[i].startswith("--"):
            text, source, i = argv[i], f"{arg} {argv[i]}", i + 1
        else:
            raise ConfigError(f"option {arg} needs a value: --{name}=VALUE or --{name} VALUE")
        if name == "config_path":
            files.append((text, source))
        else:
            flags.append((name, text, source))
    return files, flags


def get_config(argv=None, *, defaults_path=DEFAULT_CONFIG_PATH, description=None, script=None):
    """Build the Config for a script from the defaults file, --config_path files and --key=value flags
    (``argv`` defaults to sys.argv[1:]). --help/-h prints the keys and exits 0. With ``script`` (an entry
    script's name, see SCRIPT_KEYS) only that script's keys are accepted as flags and listed by --help."""
    argv = sys.argv[1:] if argv is None else list(argv)
    schema = load_schema(defaults_path)
    keys = script_keys(script) if defaults_path == DEFAULT_CONFIG_PATH else None
    if "--help" in argv or "-h" in argv:
        print(format_help(schema, description, keys))
        sys.exit(0)
    files, flags = _parse_argv(argv)
    for key, _, source in flags:
        if key in schema.defaults:
            _check_flag_is_for(script, keys, key, source)
        elif keys is not None:  # suggest one of this script's own keys, not another script's
            _coerce(schema._replace(defaults={k: v for k, v in schema.defaults.items() if k in keys}), key, "",
                    source, text=True)
    values, sources = dict(schema.defaults), {}
    for path, source in files:
        for key, value in _read_yaml(path, source)[0].items():
            values[str(key)] = _coerce(schema, str(key), value, path, text=False)
            sources[str(key)] = path
    for key, text, source in flags:
        values[key] = _coerce(schema, key, text, source, text=True)
        sources[key] = source
    return validate(Config(values, schema, sources, [path for path, _ in files]))


def print_config(cfg, file=None):
    """Print every key and value, aligned, for logs."""
    values = cfg.to_dict()
    width = max(map(len, values), default=0)
    body = "".join(f"{key:<{width}} : {value!r}\n" for key, value in values.items())
    print(f"{'=' * 20} config {'=' * 20}\n{body}{'=' * 48}", file=file or sys.stdout, flush=True)
