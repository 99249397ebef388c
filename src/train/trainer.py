"""train.py's work: SRCNN on MindRecord patches with MSE + Adam, checkpoints, validation, resume.

The Trainer strings together the parts, each a module of src/train: recipe (run_config.yaml, what a resume
must keep), step (the network, the optimizer, one update), checkpoints (save, keep, resume), validation,
run_log (train_log.jsonl), events (TensorBoard) and plot (curves.png); cluster makes the ranks of a
distributed run agree. This module loads without MindSpore: train.py checks its paths and locks output_path
before the framework's seconds of start-up.
"""
import glob
import hashlib
import importlib.util
import math
import os
import time

from src.data.batches import PatchBatches
from src.model_utils.device import code_commit, describe_host, init_context
from src.model_utils.device_adapter import get_device_id
from src.protocol.image_io import image_inputs, list_images
from src.train import checkpoints, run_log
from src.train.cluster import agree_start
from src.train.events import EVENTS_FOLDER, EventLog, side_by_side
from src.train.plot import plot_training_log
from src.train.recipe import check_recipe, data_fingerprint, write_run_config
from src.train.step import border, build_model, make_train_step
from src.train.validation import build_validator
from src.utils.checks import check_output_folder, check_outputs_spare_inputs
from src.utils.errors import UserError
from src.utils.file_io import LOCK_NAME, lock_folder


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
        self.events_dir = os.path.join(cfg.output_path, EVENTS_FOLDER) if cfg.tensorboard else ""
        self.lock = None  # the open lock file of output_path (see _lock)

    # ------------------------------------------------------------------ set-up
    def check_paths(self):
        """The paths of the configuration, checked before the data and the network load (nothing is created).
        validation_path only on rank 0, the one rank that validates."""
        cfg = self.cfg
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
            list_images(cfg.validation_path, key="validation_path")
        if self.events_dir and self.rank == 0:
            if importlib.util.find_spec("tensorboardX") is None:
                raise UserError("tensorboard=true needs the tensorboardX package (requirements.txt): pip install "
                                "tensorboardX, or give --tensorboard=false")
        self._check_outputs_spare_inputs()

    def _check_outputs_spare_inputs(self):
        """No file the run writes or deletes (run_config.yaml, train_log.jsonl, curves.png, ckpt_0/,
        tensorboard/) is one of its inputs. run_config.yaml may be the --config_path: it is the run's own
        restart command."""
        cfg = self.cfg
        data = glob.glob(os.path.join(cfg.data_path, "*.mindrecord")) if os.path.isdir(cfg.data_path) \
            else [cfg.data_path]
        inputs = [("data_path", f"{path}{suffix}") for path in data for suffix in ("", ".db", ".json")]
        inputs += [("pre_trained_path", cfg.pre_trained_path)] + image_inputs("validation_path", cfg.validation_path)
        own = os.path.realpath(self.run_config_path)
        inputs += [("config_path", f) for f in cfg.config_files() if os.path.realpath(f) != own]
        outputs = [("output_path", path) for path in (self.run_config_path, self.log_path,
                                                        os.path.join(cfg.output_path, "curves.png"))]
        check_outputs_spare_inputs(outputs, inputs, folders=[("output_path", self.ckpt_dir),
                                                             ("output_path", self.events_dir)])

    def setup(self):
        cfg = self.cfg
        import mindspore as ms  # here, not at the top: train.py checks and locks output_path before it loads


        device_id = cfg.device_id
        if cfg.run_distribute:
            # one device per rank: DEVICE_ID from the launcher (msrun and scripts/ export it: the local rank, or
            # the card of the rank table); without it MindSpore chooses. cfg.device_id would put every rank on
            # the same card.
            device_id = get_device_id() if os.environ.get("DEVICE_ID", "").strip() else None
        init_context(cfg.device_target, device_id)
        if cfg.run_distribute:
            # imported here, not at the top: the command checks its inputs before MindSpore starts (seconds)
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
        # every rank draws the initial weights from the same seed (src.train.cluster.agree_start then hands all
        # ranks rank 0's state, checked by digest)
        ms.set_seed(cfg.seed)
        self.data = PatchBatches(cfg.data_path, cfg.batch_size, self.rank, self.world, cfg.seed, cfg.augment)
        self._check_dataset()
        self.total_steps = cfg.train_steps or cfg.epoch_size * self.data.steps_per_epoch
        self.net, self.optimizer, self.lrs = build_model(cfg, self.total_steps, self.log)
        self.train_step = make_train_step(self.net, self.optimizer, cfg.arch, cfg.padding, cfg.amp_level,
                                          cfg.loss_scale, cfg.run_distribute, self.world)
        # with several ranks only rank 0 reads checkpoints; src.train.cluster.agree_start hands its state to the
        # others
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
        self.lock = lock_folder(self.cfg.output_path, "output_path", "train.py")
        checkpoints.remove_temporaries(self.ckpt_dir)
        earlier = self.checkpoints()
        if earlier and not self.cfg.resume:  # a fresh run here would mix its checkpoints with the earlier run's
            raise UserError(f"output_path {self.cfg.output_path} holds checkpoints of an earlier run (up to "
                            f"{os.path.basename(earlier[-1][1])}): continue it with --resume=true, or give another "
                            f"--output_path (or delete {self.ckpt_dir} to start over here)")

    def release(self):
        """Let go of output_path (the process's end does it too)."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def _forget_new_folder(self):
        """A run that failed before training undoes the output folder it created (only the lock file is in it)."""
        self.release()
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
        return checkpoints.state_entries(self.net, self.optimizer)

    def save(self, step, name=None):
        meta = checkpoints.checkpoint_meta(self.cfg, step, self.total_steps)
        return checkpoints.save(self.ckpt_dir, self.state_entries(), meta, name, self.cfg.keep_checkpoint_max)

    def checkpoints(self):
        """[(step, path)] of the periodic checkpoints, oldest first."""
        return checkpoints.list_checkpoints(self.ckpt_dir)

    def data_fingerprint(self):
        return data_fingerprint(self.data)

    def _resume(self):
        if self.checkpoints():
            check_recipe(self.cfg, self.run_config_path, self.data)
            params = list(self.net.get_parameters()) + list(self.optimizer.get_parameters())
            resumed = checkpoints.load_latest(self.ckpt_dir, params, self.total_steps, self.log)
            if resumed:
                step, path = resumed
                if self.rank == 0:
                    run_log.truncate_log(self.log_path, step)  # the records past it are written again
                self.log(f"resumed from {path} at step {step}")
                return step
        self.log(f"resume=True but no checkpoint in {self.ckpt_dir}: starting from step 0")
        return 0

    # ------------------------------------------------------------------ run
    def run(self):
        cfg = self.cfg
        created = not os.path.exists(cfg.output_path)
        if not cfg.run_distribute:
            self.check_paths()  # before MindSpore loads; a distributed run checks them in setup(), after init()
            self._lock()  # at once: a second run on this folder stops before any work
        failure, validate = None, None
        try:
            self.setup()
            if self.rank == 0:  # the one rank that validates
                validate = build_validator(cfg, self.net)
        except BaseException as err:
            if created and self.rank == 0:
                self._forget_new_folder()
            if self.world == 1 or not isinstance(err, UserError):
                raise
            failure = err  # the other ranks must hear of it, or they would wait for this one
        if self.world > 1:
            self.start_step = agree_start(self, failure)
        if self.rank == 0:
            os.makedirs(self.ckpt_dir, exist_ok=True)
        self.log(f"training {cfg.arch} (n1={cfg.n1}, n2={cfg.n2}, padding={cfg.padding}) x{cfg.scale} on "
                 f"{self.data.file}: {self.data.count} patches, batch {cfg.batch_size} per device x "
                 f"{self.world} device(s) = global batch {cfg.batch_size * self.world}, "
                 f"{self.total_steps} steps ({self.data.steps_per_epoch} per epoch), lr {cfg.lr_schedule} "
                 f"{cfg.lr:g}, device {cfg.device_target}")
        host = f"{describe_host(cfg.device_target)}, network {type(self.net).__name__}"
        self.log(f"host: {host}")
        if self.start_step >= self.total_steps:
            self.log(f"nothing to do: already at step {self.start_step} of {self.total_steps}")
            return
        events = None
        if self.rank == 0:
            if not (self.start_step and os.path.exists(self.run_config_path)):
                write_run_config(cfg, self.run_config_path, self.data, self.world, host)
            if not self.start_step and os.path.exists(self.log_path):
                os.remove(self.log_path)  # a fresh run does not continue an older run's log
            run_log.append_record(self.log_path, run_log.start_record(self.start_step, host, code_commit()))
            if self.events_dir:
                events = EventLog(self.events_dir, self.start_step)
        run_start = time.time()
        try:
            self.loop(validate, events)
        except BaseException:
            if events is not None:
                events.close(quiet=True)  # the loop's error is the one to report (e.g. a full disk's)
            raise
        if events is not None:
            events.close()
        self.finish(run_start)

    def loop(self, validate=None, events=None):
        """Train from self.start_step to self.total_steps: log every log_interval steps, validate (rank 0, with
        ``validate``) every val_interval steps, checkpoint every save_checkpoint_steps (rank 0), TensorBoard
        ``events`` (an EventLog, rank 0) beside train_log.jsonl."""
        cfg = self.cfg
        is_main = self.rank == 0
        best = run_log.logged_best(self.log_path) if self.start_step else -math.inf
        window_loss, window_start, window_steps = 0.0, time.time(), 0
        for step, lr, hr in self.data.batches(self.start_step):
            if step >= self.total_steps:
                break
            loss = self.train_step(lr, hr)
            if not math.isfinite(loss):
                last = self.checkpoints()
                raise UserError(f"loss became {loss} at step {step + 1}; stopped. The last good checkpoint "
                                f"is {last[-1][1] if last else 'none'}; likely cause: {self._divergence_cause()}")
            window_loss += loss
            window_steps += 1
            done = step + 1
            record, validation = None, None
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
                validation = validate()
                psnr, bicubic = validation.psnr, validation.bicubic_psnr
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
                run_log.append_record(self.log_path, record)
                if events is not None:
                    write_events(events, record, validation)

    def finish(self, run_start):
        """Every rank reports a digest of its weights (data-parallel ranks must end bit-identical); rank 0 saves
        srcnn-final.ckpt and draws curves.png."""
        cfg = self.cfg
        digest = hashlib.sha256(b"".join(p.asnumpy().tobytes() for p in self.net.trainable_params()))
        self.log(f"final weights sha256 {digest.hexdigest()}")
        if self.rank == 0:
            final = self.save(self.total_steps, "srcnn-final.ckpt") if cfg.save_checkpoint else None
            if os.path.exists(self.log_path):
                self.log(f"curves: {plot_training_log(self.log_path, os.path.join(cfg.output_path, 'curves.png'))}")
            self.log(f"done: {self.total_steps - self.start_step} steps in {time.time() - run_start:.1f} s"
                     + (f", final checkpoint {final}" if final else ""))


# TensorBoard tags of a train_log.jsonl record's values
SCALAR_TAGS = {"loss": "train/loss", "lr": "train/learning_rate", "val_psnr": "validation/psnr",
               "val_bicubic_psnr": "validation/bicubic_psnr"}


def write_events(events, record, validation=None):
    """A train_log.jsonl ``record`` as TensorBoard scalars at its step, with the SSIM and the first image of
    ``validation`` (a src.train.validation.Validation) when it holds one."""
    values = {tag: record[key] for key, tag in SCALAR_TAGS.items() if key in record}
    if validation is not None:
        values["validation/ssim"] = validation.ssim
    events.scalars(record["step"], values)
    if validation is not None:
        _, sr_y, hr_y = validation.image
        events.image(record["step"], "validation/sr_vs_truth", side_by_side(sr_y, hr_y))
