"""train.py's work: SRCNN on MindRecord patches with MSE + Adam, checkpoints, validation, resume."""
import glob
import hashlib
import json
import math
import os
import re
import time

from src.utils.errors import UserError
from src.utils.file_io import read_jsonl, write_text_atomic

CKPT_PATTERN = re.compile(r"srcnn-(\d+)\.ckpt$")


# the settings that decide where a run ends: a resume must use the values the run started with
RECIPE_KEYS = ("arch", "n1", "n2", "padding", "scale", "lr", "lr_schedule", "min_lr", "batch_size", "epoch_size",
               "train_steps", "augment", "amp_level", "loss_scale", "seed", "pre_trained_path", "pre_trained_widen",
               "holdout_images")


def border(arch):
    """src.model.srcnn.border, imported when needed: this module loads without MindSpore, so that train.py checks
    its paths and locks output_path before the framework's seconds of start-up."""
    from src.model.srcnn import border as srcnn_border

    return srcnn_border(arch)


def _format_eta(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Trainer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.rank, self.world = 0, 1
        self.ckpt_dir = os.path.join(cfg.output_path, "ckpt_0")
        self.log_path = os.path.join(cfg.output_path, "train_log.jsonl")
        self.run_config_path = os.path.join(cfg.output_path, "run_config.yaml")
        self.lock = None  # the open lock file of output_path (see _lock)

    # ------------------------------------------------------------------ set-up
    def check_paths(self):
        """The paths of the configuration, checked before the data and the network load (nothing is created).
        validation_path only on rank 0, the one rank that validates."""
        cfg = self.cfg
        from src.utils.checks import check_output_folder

        if not cfg.data_path:
            raise UserError("data_path is empty: give --data_path=FILE.mindrecord or the folder holding it "
                            "(made by src/create_dataset.py)")
        if not cfg.output_path:
            raise UserError("output_path is empty: give --output_path=FOLDER for checkpoints and logs")
        check_output_folder(cfg.output_path, "output_path")
        if cfg.pre_trained_path and not os.path.isfile(cfg.pre_trained_path):
            what = "is not a file" if os.path.exists(cfg.pre_trained_path) else "does not exist"
            raise UserError(f"pre_trained_path {cfg.pre_trained_path} {what}: give a .ckpt file or leave it empty")
        if cfg.validation_path and self.rank == 0:
            from src.protocol.image_io import list_images

            list_images(cfg.validation_path, key="validation_path")
        self._check_outputs_spare_inputs()

    def _check_outputs_spare_inputs(self):
        """No file the run writes or deletes (run_config.yaml, train_log.jsonl, curves.png, ckpt_0/) is one of
        its inputs. run_config.yaml may be the --config_path: it is the run's own restart command."""
        from src.protocol.image_io import image_inputs
        from src.utils.checks import check_outputs_spare_inputs

        cfg = self.cfg
        data = glob.glob(os.path.join(cfg.data_path, "*.mindrecord")) if os.path.isdir(cfg.data_path) \
            else [cfg.data_path]
        inputs = [("data_path", f"{path}{suffix}") for path in data for suffix in ("", ".db", ".json")]
        inputs += [("pre_trained_path", cfg.pre_trained_path)] + image_inputs("validation_path", cfg.validation_path)
        own = os.path.realpath(self.run_config_path)
        inputs += [("config_path", f) for f in cfg.config_files() if os.path.realpath(f) != own]
        outputs = [("output_path", path) for path in (self.run_config_path, self.log_path,
                                                        os.path.join(cfg.output_path, "curves.png"))]
        check_outputs_spare_inputs(outputs, inputs, folders=[("output_path", self.ckpt_dir)])

    def setup(self):
        cfg = self.cfg
        import mindspore as ms
        import mindspore.nn as nn
        import mindspore.ops as ops

        from src.data.batches import PatchBatches
        from src.model.checkpoint import (
            arch_from_weights,
            load_weights,
            read_checkpoint,
            widen_middle_filter,
        )
        from src.model.network import build_network
        from src.model_utils.device import init_context
        from src.train.schedules import learning_rates

        device_id = cfg.device_id
        if cfg.run_distribute:
            # one device per rank: DEVICE_ID from the launcher (msrun and scripts/ export it: the local rank, or
            # the card of the rank table); without it MindSpore chooses. cfg.device_id would put every rank on
            # the same card.
            from src.model_utils.device_adapter import get_device_id

            device_id = get_device_id() if os.environ.get("DEVICE_ID", "").strip() else None
        init_context(cfg.device_target, device_id)
        if cfg.run_distribute:
            from mindspore.communication import get_group_size, get_rank, init

            init()
            self.rank, self.world = get_rank(), get_group_size()
            # after init(): a failure here reaches the other ranks through agree_start instead of leaving
            # them waiting for this rank to join the cluster
            self.check_paths()
            if self.rank == 0:  # the ranks of one run share output_path: the run holds it through rank 0
                self._lock()
            ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                         device_num=self.world)
        # every rank draws the initial weights from the same seed (src.train.cluster.agree_start then hands all ranks
        # rank 0's state, checked by digest)
        ms.set_seed(cfg.seed)
        self.data = PatchBatches(cfg.data_path, cfg.batch_size, self.rank, self.world, cfg.seed, cfg.augment)
        self._check_dataset()
        self.total_steps = cfg.train_steps or cfg.epoch_size * self.data.steps_per_epoch
        self.net = build_network(cfg.arch, cfg.n1, cfg.n2, cfg.padding, cfg.device_target, training=True,
                                 amp_level=cfg.amp_level)
        if cfg.pre_trained_path:
            weights = read_checkpoint(cfg.pre_trained_path)
            arch_from_weights(weights, cfg.pre_trained_path)
            if cfg.pre_trained_widen:
                weights = widen_middle_filter(weights, cfg.arch, cfg.pre_trained_path)
            load_weights(self.net, weights, cfg.pre_trained_path)
            self.log(f"loaded pre-trained weights from {cfg.pre_trained_path}")
        self.lrs = learning_rates(cfg.lr_schedule, cfg.lr, self.total_steps, cfg.min_lr)
        self.optimizer = nn.Adam(self.net.trainable_params(), learning_rate=self.lrs)

        net = self.net
        if cfg.amp_level != "O0":
            net = ms.amp.auto_mixed_precision(self.net, cfg.amp_level)
        # O2/O3 compute in float16: a fixed loss scale keeps small gradients representable; updates are
        # never dropped (CPU has no overflow status to drive a dynamic scale)
        loss_scale = cfg.loss_scale if cfg.amp_level != "O0" else 1.0
        crop = border(cfg.arch) if cfg.padding == "valid" else 0

        def forward(lr, hr):
            out = net(lr).astype(ms.float32)
            if crop:
                hr = hr[:, :, crop:-crop, crop:-crop]
            return ops.mean(ops.square(out - hr)) * loss_scale

        grad_fn = ms.value_and_grad(forward, None, self.optimizer.parameters)
        reducer = (nn.DistributedGradReducer(self.optimizer.parameters, mean=True, degree=self.world)
                   if cfg.run_distribute else None)
        optimizer = self.optimizer
        params = self.optimizer.parameters

        @ms.jit
        def train_step(lr, hr):
            loss, grads = grad_fn(lr, hr)
            if reducer is not None:
                grads = reducer(grads)
            if loss_scale != 1.0:
                # float16 layers can hand back float16 gradients: unscale in the parameters' dtype
                grads = tuple([ops.cast(g, p.dtype) / loss_scale for g, p in zip(grads, params)])
            optimizer(grads)
            return loss / loss_scale

        self.train_step = train_step
        # with several ranks only rank 0 reads checkpoints; src.train.cluster.agree_start hands its state to the others
        self.start_step = self._resume() if cfg.resume and self.rank == 0 else 0

    def _check_dataset(self):
        meta = self.data.meta or {}
        if meta.get("scale") not in (None, self.cfg.scale):
            raise UserError(f"{self.data.file} holds x{meta['scale']} patches but scale={self.cfg.scale}")
        if self.cfg.padding == "valid" and self.data.patch_size <= 2 * border(self.cfg.arch):
            raise UserError(f"patch_size {self.data.patch_size} of {self.data.file} is too small for "
                            f"padding=valid with arch {self.cfg.arch}: it must exceed {2 * border(self.cfg.arch)}")

    def _lock(self):
        """Hold output_path for this process's life (one run per folder, see src.utils.file_io.lock_folder), then
        remove the temporary checkpoint files of an earlier run that was killed: only under the lock, so
        never the file a running process is writing."""
        from src.utils.file_io import lock_folder

        self.lock = lock_folder(self.cfg.output_path, "output_path", "train.py")
        for stale in glob.glob(os.path.join(self.ckpt_dir, ".tmp_*")):
            os.remove(stale)  # a checkpoint being written when a previous run was killed
        earlier = self.checkpoints()
        if earlier and not self.cfg.resume:  # a fresh run here would mix its checkpoints with the earlier run's
            raise UserError(f"output_path {self.cfg.output_path} holds checkpoints of an earlier run (up to "
                            f"{os.path.basename(earlier[-1][1])}): continue it with --resume=true, or give another "
                            f"--output_path (or delete {self.ckpt_dir} to start over here)")

    def _forget_new_folder(self):
        """A run that failed before training undoes the output folder it created (only the lock file is in it)."""
        from src.utils.file_io import LOCK_NAME

        if self.lock is not None:
            self.lock.close()
            self.lock = None
        try:
            os.remove(os.path.join(self.cfg.output_path, LOCK_NAME))
            os.rmdir(self.cfg.output_path)
        except OSError:
            pass  # not empty: something else is in it now; leave it

    def _divergence_cause(self):
        """What in the settings most likely made the loss non-finite, and what to change."""
        cfg = self.cfg
        if cfg.amp_level != "O0":
            return (f"float16 overflow under amp_level={cfg.amp_level} with loss_scale={cfg.loss_scale:g} (from "
                    f"{cfg.source('loss_scale')}): lower loss_scale, lower lr={cfg.lr:g}, or use amp_level=O0")
        return (f"lr={cfg.lr:g} (from {cfg.source('lr')}) is too high for this network: lower it, e.g. "
                f"--lr={cfg.lr / 10:g}")

    # ------------------------------------------------------------------ state
    def log(self, message):
        prefix = f"[rank {self.rank}] " if self.world > 1 else ""
        print(prefix + message, flush=True)

    def state_entries(self):
        """The parameters a checkpoint holds (network, then optimizer), as save_checkpoint takes them."""
        entries = [{"name": p.name, "data": p} for p in self.net.get_parameters()]
        entries += [{"name": p.name, "data": p} for p in self.optimizer.get_parameters()
                    if p.name not in {e["name"] for e in entries}]
        return entries

    def _meta(self, step):
        cfg = self.cfg
        return {"arch": cfg.arch, "n1": cfg.n1, "n2": cfg.n2, "padding": cfg.padding, "scale": cfg.scale,
                "step": step, "total_steps": self.total_steps, "seed": cfg.seed}

    def save(self, step, name=None):
        from src.model.checkpoint import save_checkpoint

        path = os.path.join(self.ckpt_dir, name or f"srcnn-{step}.ckpt")
        save_checkpoint(self.state_entries(), path, self._meta(step))
        if name is None:
            for old in self.checkpoints()[:-self.cfg.keep_checkpoint_max]:
                os.remove(old[1])
        return path

    def checkpoints(self):
        """[(step, path)] of the periodic checkpoints, oldest first."""
        found = []
        for path in glob.glob(os.path.join(self.ckpt_dir, "srcnn-*.ckpt")):
            match = CKPT_PATTERN.search(os.path.basename(path))
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def data_fingerprint(self):
        """What the training data is, independent of where it lies: a digest of its sidecar's counts and
        settings (src/create_dataset.py writes one), else the MindRecord's size and modification time."""
        meta = self.data.meta
        if meta:
            keys = ("count", "images", "scale", "patch_size", "stride", "downscale_factors", "holdout_images",
                    "skipped")
            text = json.dumps({k: meta.get(k) for k in keys}, sort_keys=True)
            return "sidecar " + hashlib.sha256(text.encode()).hexdigest()[:16]
        stat = os.stat(self.data.file)
        return f"size {stat.st_size} mtime {stat.st_mtime_ns}"

    def _check_recipe(self):
        """A resumed run must continue the run it started: the recipe and the data saved in run_config.yaml."""
        import yaml

        fresh = "start fresh with --resume=false and another --output_path"
        try:
            with open(self.run_config_path, encoding="utf-8") as handle:
                text = handle.read()
            saved = yaml.safe_load(text)
        except FileNotFoundError:
            raise UserError(f"resume=true but {self.run_config_path} is missing: the run's settings are unknown, "
                            f"so its checkpoints cannot be continued safely; {fresh}") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            reason = " ".join(str(getattr(err, "strerror", None) or err).split())[:120]
            raise UserError(f"resume=true but {self.run_config_path} is unreadable ({reason}); {fresh}") from None
        if not isinstance(saved, dict):
            raise UserError(f"resume=true but {self.run_config_path} does not hold the run's settings; {fresh}")
        recorded = re.search(r"^# data_fingerprint: (.+)$", text, re.M)
        if recorded and recorded.group(1).strip() != self.data_fingerprint():
            raise UserError(f"{self.run_config_path}: this run was trained on other data ({recorded.group(1).strip()})"
                            f" than data_path {self.cfg.data_path} ({self.data_fingerprint()}); resume with the "
                            f"run's data, or {fresh}")
        for key in RECIPE_KEYS:
            if key in saved and saved[key] != getattr(self.cfg, key):
                raise UserError(f"{self.run_config_path}: this run started with {key}={saved[key]!r}, not "
                                f"{getattr(self.cfg, key)!r} (from {self.cfg.source(key)}); resume with the run's "
                                f"settings: --config_path={self.run_config_path} --resume=true")

    def _write_run_config(self, host):
        """Every setting of the run as YAML that --config_path reads back (the resume command)."""
        import yaml

        values = {k: v for k, v in self.cfg.to_dict().items() if k != "resume"}
        # the patches' own geometry (create_dataset keys), not the defaults this process happened to have
        values.update({k: (self.data.meta or {})[k] for k in ("patch_size", "stride") if k in (self.data.meta or {})})
        header = (f"# SRCNN training run: python train.py --config_path={self.run_config_path} [--resume=true]\n"
                  f"# data: {self.data.file} ({self.data.count} patches of {self.data.patch_size}x"
                  f"{self.data.patch_size}); {self.world} device(s); started on {host}\n"
                  f"# data_fingerprint: {self.data_fingerprint()}\n")
        write_text_atomic(self.run_config_path, header + yaml.safe_dump(values, sort_keys=False), "run settings")

    def _logged_best(self):
        """Best validation PSNR already in the (truncated) log: a resumed run keeps srcnn-best.ckpt honest."""
        if not os.path.exists(self.log_path):
            return -math.inf
        return max((r.get("val_psnr", -math.inf) for r in read_jsonl(self.log_path)), default=-math.inf)

    def _resume(self):
        import mindspore as ms

        if not self.checkpoints():
            self.log(f"resume=True but no checkpoint in {self.ckpt_dir}: starting from step 0")
            return 0
        self._check_recipe()
        for step, path in reversed(self.checkpoints()):
            try:
                state = ms.load_checkpoint(path)
            except (ValueError, RuntimeError, OSError) as err:
                self.log(f"warning: skipping unreadable checkpoint {path} ({str(err).splitlines()[0][:80]})")
                continue
            if int(state.get("total_steps", ms.Tensor(self.total_steps)).asnumpy()) != self.total_steps:
                raise UserError(f"{path} belongs to a run of {int(state['total_steps'].asnumpy())} steps, "
                                f"this run has {self.total_steps}: use the same schedule to resume")
            params = [p for p in self.net.get_parameters()] + list(self.optimizer.get_parameters())
            from src.model.checkpoint import check_finite

            for param in params:
                if param.name not in state:
                    raise UserError(f"{path} has no {param.name}: not a training checkpoint of this network")
                found = tuple(state[param.name].shape)
                if found != tuple(param.shape):
                    raise UserError(f"{path}: {param.name} has shape {found}, this run's network expects "
                                    f"{tuple(param.shape)}: resume with the run's settings, or start fresh with "
                                    "--resume=false and another --output_path")
                check_finite(param.name, state[param.name].asnumpy(), path)
            for param in params:
                param.set_data(state[param.name])
            self._truncate_log(step)
            self.log(f"resumed from {path} at step {step}")
            return step
        self.log(f"resume=True but no checkpoint in {self.ckpt_dir}: starting from step 0")
        return 0

    def _truncate_log(self, step):
        """Drop log records past the resumed step: the resumed run writes them again."""
        if self.rank != 0 or not os.path.exists(self.log_path):
            return
        kept = [r for r in read_jsonl(self.log_path) if r.get("step", 0) <= step]
        write_text_atomic(self.log_path, "".join(json.dumps(r) + "\n" for r in kept), "training log")

    # ------------------------------------------------------------------ validation
    def _validator(self):
        if not self.cfg.validation_path or self.rank != 0:
            return None
        from src.infer.mindspore_backend import MindSporePredictor
        from src.model.network import build_network, inference_padding
        from src.protocol.image_io import holdout_names
        from src.protocol.scoring import evaluate, iter_images, no_usable_images

        skipped = []
        images = list(iter_images(self.cfg.validation_path, self.cfg.scale, skipped, show_progress=False))
        held = holdout_names(self.cfg.holdout_images)
        if held:  # validate on the held-out images only: the rest of the folder may be training data
            found = {name.rsplit("/", 1)[-1] for name, _ in images}
            if held - found:
                raise UserError(f"holdout_images: no usable image named {', '.join(sorted(held - found))} "
                                f"in validation_path {self.cfg.validation_path}")
            images = [image for image in images if image[0].rsplit("/", 1)[-1] in held]
        if not images:
            raise no_usable_images(self.cfg.validation_path, skipped, key="validation_path")
        cfg = self.cfg
        eval_net = build_network(cfg.arch, cfg.n1, cfg.n2, inference_padding(cfg.padding), cfg.device_target,
                                 training=False)
        predictor = MindSporePredictor(eval_net, cfg.tile_size)
        eval_params = {p.name: p for p in eval_net.get_parameters()}

        def validate():
            for param in self.net.trainable_params():
                eval_params[param.name].set_data(param.data.copy())
            result = evaluate(predictor, images, cfg.scale, source=cfg.validation_path, skipped=skipped,
                              key="validation_path")
            return result["psnr"], result["bicubic_psnr"]

        return validate

    # ------------------------------------------------------------------ loop
    def run(self):
        cfg = self.cfg
        created = not os.path.exists(cfg.output_path)
        if not cfg.run_distribute:
            self.check_paths()  # before MindSpore loads; a distributed run checks them in setup(), after init()
            self._lock()  # at once: a second run on this folder stops before any work
        failure, validate = None, None
        try:
            self.setup()
            validate = self._validator()
        except BaseException as err:
            if created and self.rank == 0:
                self._forget_new_folder()
            if self.world == 1 or not isinstance(err, UserError):
                raise
            failure = err  # the other ranks must hear of it, or they would wait for this one
        if self.world > 1:
            from src.train.cluster import agree_start

            self.start_step = agree_start(self, failure)
        is_main = self.rank == 0
        if is_main:
            os.makedirs(self.ckpt_dir, exist_ok=True)
        self.log(f"training {cfg.arch} (n1={cfg.n1}, n2={cfg.n2}, padding={cfg.padding}) x{cfg.scale} on "
                 f"{self.data.file}: {self.data.count} patches, batch {cfg.batch_size} per device x "
                 f"{self.world} device(s) = global batch {cfg.batch_size * self.world}, "
                 f"{self.total_steps} steps ({self.data.steps_per_epoch} per epoch), lr {cfg.lr_schedule} "
                 f"{cfg.lr:g}, device {cfg.device_target}")
        from src.model_utils.device import code_commit, describe_host

        host = f"{describe_host(cfg.device_target)}, network {type(self.net).__name__}"
        self.log(f"host: {host}")
        if self.start_step >= self.total_steps:
            self.log(f"nothing to do: already at step {self.start_step} of {self.total_steps}")
            return
        if is_main:
            if not (self.start_step and os.path.exists(self.run_config_path)):
                self._write_run_config(host)
            if not self.start_step and os.path.exists(self.log_path):
                os.remove(self.log_path)  # a fresh run does not continue an older run's log
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": self.start_step, "event": "start", "host": host,
                                         "commit": code_commit(),
                                         "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
        best = self._logged_best() if self.start_step else -math.inf
        window_loss, window_start, window_steps = 0.0, time.time(), 0
        run_start = time.time()
        import mindspore as ms

        step = self.start_step
        for step, lr, hr in self.data.batches(self.start_step):
            if step >= self.total_steps:
                break
            loss = float(self.train_step(ms.Tensor(lr), ms.Tensor(hr)).asnumpy())
            if not math.isfinite(loss):
                last = self.checkpoints()
                raise UserError(f"loss became {loss} at step {step + 1}; stopped. The last good checkpoint "
                                f"is {last[-1][1] if last else 'none'}; likely cause: {self._divergence_cause()}")
            window_loss += loss
            window_steps += 1
            done = step + 1
            record = None
            if done % cfg.log_interval == 0 or done == self.total_steps:
                elapsed = time.time() - window_start
                rate = window_steps * cfg.batch_size * self.world / elapsed
                eta = (self.total_steps - done) * elapsed / window_steps
                record = {"step": done, "loss": window_loss / window_steps, "lr": self.lrs[step],
                          "samples_per_s": rate, "ms_per_step": 1000 * elapsed / window_steps}
                self.log(f"step {done}/{self.total_steps} epoch {step // self.data.steps_per_epoch + 1} "
                         f"loss {record['loss']:.6f} lr {self.lrs[step]:.3g} {record['ms_per_step']:.1f} ms/step "
                         f"{rate:.0f} samples/s ETA {_format_eta(eta)}")
                window_loss, window_start, window_steps = 0.0, time.time(), 0
            if validate and (done % cfg.val_interval == 0 or done == self.total_steps):
                psnr, bicubic = validate()
                record = dict(record or {"step": done}, val_psnr=psnr, val_bicubic_psnr=bicubic)
                self.log(f"step {done} validation PSNR {psnr:.2f} dB (bicubic {bicubic:.2f})")
                if psnr > best:
                    best = psnr
                    if is_main and cfg.save_checkpoint:
                        self.save(done, "srcnn-best.ckpt")
                window_start = time.time()
            if is_main and cfg.save_checkpoint and (done % cfg.save_checkpoint_steps == 0
                                                    or done == self.total_steps):
                self.save(done)
            if record and is_main:
                with open(self.log_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
        # every rank reports a digest of its weights: data-parallel ranks must end bit-identical
        digest = hashlib.sha256(b"".join(p.asnumpy().tobytes() for p in self.net.trainable_params()))
        self.log(f"final weights sha256 {digest.hexdigest()}")
        if is_main:
            final = self.save(self.total_steps, "srcnn-final.ckpt") if cfg.save_checkpoint else None
            if os.path.exists(self.log_path):
                from src.train.plot import plot_training_log

                self.log(f"curves: {plot_training_log(self.log_path, os.path.join(cfg.output_path, 'curves.png'))}")
            self.log(f"done: {self.total_steps - self.start_step} steps in {time.time() - run_start:.1f} s"
                     + (f", final checkpoint {final}" if final else ""))
