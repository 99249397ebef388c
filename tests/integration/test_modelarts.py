"""ModelArts as jobs run today: local data_url/train_url used as they are; obs:// URLs copied with the OBS SDK
(esdk-obs-python) against a real S3-compatible object store (moto's server, started here on 127.0.0.1);
without a client, one line saying what to install."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, save_set5_crops

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from src.model_utils import moxing_adapter  # noqa: E402
from src.model_utils.config import get_config  # noqa: E402
from src.utils.errors import UserError  # noqa: E402

BUCKET = "srcnn-jobs"
OBS_VARS = ("OBS_ENDPOINT", "OBS_ACCESS_KEY_ID", "OBS_SECRET_ACCESS_KEY", "OBS_SECURITY_TOKEN", "OBS_SIGNATURE",
            "OBS_PATH_STYLE")


@pytest.fixture(scope="module")
def object_store(tmp_path_factory):
    """An S3-compatible server on loopback (moto, in its own process) with one bucket; yields (endpoint, boto3
    client). The bucket is made and read back with boto3, not with the code under test."""
    pytest.importorskip("moto", reason="moto[server] (requirements-dev.txt) runs the local object store")
    pytest.importorskip("obs", reason="esdk-obs-python (requirements-dev.txt) is the OBS client under test")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w", encoding="utf-8") as handle:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="ak", aws_secret_access_key="sk",
                          region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint, s3
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def patches(datasets_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ma")
    crops = save_set5_crops(datasets_dir, root / "crops", ("baby", "bird"), (64, 64, 128, 128))
    result = subprocess.run([sys.executable, "src/create_dataset.py", f"--src_folder={crops}",
                             f"--output_folder={root / 'data'}", "--scale=2", "--patch_size=17", "--stride=8",
                             "--num_workers=1"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    return root / "data"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in OBS_VARS + ("RANK_SIZE", "DEVICE_ID")}
    env.update(extra)
    return env


def test_obs_urls_are_copied_with_the_obs_sdk(object_store, patches, tmp_path):
    """train.py on ModelArts parameters with obs:// URLs and no moxing: the data comes down from the bucket, the
    outputs go up to it, byte for byte."""
    endpoint, s3 = object_store
    for path in sorted(patches.iterdir()):
        s3.upload_file(str(path), BUCKET, f"job1/data/{path.name}")
    cache = tmp_path / "cache"
    env = _env(OBS_ENDPOINT=endpoint, OBS_ACCESS_KEY_ID="ak", OBS_SECRET_ACCESS_KEY="sk", OBS_SIGNATURE="v4",
               OBS_PATH_STYLE="true")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", "import moxing"], capture_output=True, text=True, env=env)
    assert result.returncode != 0, "moxing is installed here: this test is about the OBS SDK path"
    result = subprocess.run(
        [sys.executable, "train.py", "--enable_modelarts=true", f"--data_url=obs://{BUCKET}/job1/data",
         f"--data_path={cache}/data", f"--train_url=obs://{BUCKET}/job1/out", f"--output_path={cache}/out",
         "--n1=8", "--n2=4", "--train_steps=3", "--batch_size=4", "--padding=valid", "--log_interval=1"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    synced = [line for line in result.stdout.splitlines() if line.startswith("synced ")]
    assert [line.split(" in ")[0] for line in synced] == [
        f"synced obs://{BUCKET}/job1/data -> {cache}/data", f"synced {cache}/out -> obs://{BUCKET}/job1/out"]
    for path in patches.iterdir():  # downloaded
        assert (cache / "data" / path.name).read_bytes() == path.read_bytes()
    local = sorted(p for p in (cache / "out").rglob("*") if p.is_file())
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="job1/out/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"job1/out/{p.relative_to(cache / 'out').as_posix()}"
                                                      for p in local)
    assert "job1/out/ckpt_0/srcnn-final.ckpt" in {o["Key"] for o in listed}
    for path in local:  # uploaded
        body = s3.get_object(Bucket=BUCKET, Key=f"job1/out/{path.relative_to(cache / 'out').as_posix()}")["Body"]
        assert body.read() == path.read_bytes()
    down = sum(p.stat().st_size for p in patches.iterdir())
    up = sum(p.stat().st_size for p in local)
    print(f"object store copy: {len(list(patches.iterdir()))} files / {down} bytes down, {len(local)} files / "
          f"{up} bytes up; {'; '.join(line.split(' in ')[1] for line in synced)}; train.py {seconds:.1f} s")


def test_obs_errors_are_one_line(object_store, tmp_path):
    endpoint, _ = object_store
    env = _env(OBS_ENDPOINT=endpoint, OBS_ACCESS_KEY_ID="ak", OBS_SECRET_ACCESS_KEY="sk", OBS_SIGNATURE="v4",
               OBS_PATH_STYLE="true")
    missing = subprocess.run(
        [sys.executable, "train.py", "--enable_modelarts=true", f"--data_url=obs://{BUCKET}/no/such/folder",
         f"--data_path={tmp_path}/data", f"--output_path={tmp_path}/out"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: obs://{BUCKET}/no/such/folder holds no object: check the bucket and " \
                                     "the folder"
    no_keys = subprocess.run(
        [sys.executable, "train.py", "--enable_modelarts=true", f"--data_url=obs://{BUCKET}/x",
         f"--data_path={tmp_path}/data", f"--output_path={tmp_path}/out"],
        capture_output=True, text=True, cwd=REPO, env=_env(), timeout=120)
    assert no_keys.returncode == 2 and no_keys.stdout == ""
    assert no_keys.stderr.strip() == ("error: obs:// URLs without moxing are copied with esdk-obs-python, which "
                                      "needs the environment variable(s) OBS_ENDPOINT, OBS_ACCESS_KEY_ID, "
                                      "OBS_SECRET_ACCESS_KEY (endpoint and access keys)")
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_without_any_obs_client_one_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "moxing", None)  # neither is importable
    monkeypatch.setitem(sys.modules, "obs", None)
    cfg = get_config(["--enable_modelarts=true", "--train_url=obs://b/out"])
    with pytest.raises(UserError) as info:
        moxing_adapter.check_obs_client(cfg)
    assert str(info.value) == ("obs:// URLs need the 'moxing' package (ModelArts images ship it) or the OBS SDK: "
                               "pip install esdk-obs-python, with OBS_ENDPOINT, OBS_ACCESS_KEY_ID and "
                               "OBS_SECRET_ACCESS_KEY set")


def test_local_urls_are_used_directly(monkeypatch, tmp_path):
    """Today's jobs pass the local folders ModelArts downloaded the inputs to and uploads the outputs from."""
    monkeypatch.setitem(sys.modules, "moxing", None)
    monkeypatch.setitem(sys.modules, "obs", None)
    inputs, outputs = tmp_path / "inputs" / "data_url_0", tmp_path / "outputs" / "train_url_0"
    inputs.mkdir(parents=True)
    cfg = moxing_adapter.modelarts_paths(get_config(
        ["--enable_modelarts=true", f"--data_url={inputs}", f"--train_url={outputs}"]))
    assert (cfg.data_path, cfg.output_path) == (str(inputs), str(outputs))
    moxing_adapter.check_obs_client(cfg)  # no client needed
    moxing_adapter.modelarts_pre_process(cfg)
    moxing_adapter.modelarts_post_process(cfg)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data_url_0", "inputs", "outputs", "train_url_0"]
    inside = moxing_adapter.modelarts_paths(get_config(
        ["--enable_modelarts=true", f"--data_url={inputs}", f"--data_path={inputs}/x.mindrecord"]))
    assert inside.data_path == f"{inputs}/x.mindrecord"
    with pytest.raises(UserError, match=f"data_url {inputs} is a local folder, used directly, but data_path "
                                        f"{tmp_path}/elsewhere is not inside it"):
        moxing_adapter.modelarts_paths(get_config(
            ["--enable_modelarts=true", f"--data_url={inputs}", f"--data_path={tmp_path}/elsewhere"]))
    off = get_config([f"--data_url={inputs}"])
    assert moxing_adapter.modelarts_paths(off) is off  # nothing changes off ModelArts


def _obs_env(endpoint):
    return dict(OBS_ENDPOINT=endpoint, OBS_ACCESS_KEY_ID="ak", OBS_SECRET_ACCESS_KEY="sk", OBS_SIGNATURE="v4",
                OBS_PATH_STYLE="true")


def test_one_copy_per_node_under_a_lock_of_this_launch(object_store, tmp_path):
    """Two ranks of one node (same parent, as msrun starts them): local rank 0 downloads, rank 1 waits for the
    lock of this launch. A lock at the old fixed name in /tmp (left by an earlier run) changes nothing."""
    endpoint, s3 = object_store
    for name, body in (("a.bin", b"\x00" * 1000), ("sub/b.bin", b"b" * 10)):
        s3.put_object(Bucket=BUCKET, Key=f"job2/data/{name}", Body=body)
    stale = Path("/tmp/srcnn_sync_Local_0.lock")  # what the old code would have taken for this run's lock
    planted = not stale.exists()
    stale.touch()
    code = ("import sys\nfrom src.model_utils.moxing_adapter import sync_data\n"
            f"sync_data('obs://{BUCKET}/job2/data', sys.argv[1])")
    script = (f'"{sys.executable}" -c "$CODE" {tmp_path}/rank1 > {tmp_path}/rank1.log 2>&1 &\n'
              f'DEVICE_ID=0 "{sys.executable}" -c "$CODE" {tmp_path}/rank0 > {tmp_path}/rank0.log 2>&1; r0=$?\n'
              'wait $!; r1=$?; echo "$r0 $r1"')
    try:
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                                env=_env(CODE=code, RANK_SIZE="2", DEVICE_ID="1", **_obs_env(endpoint)))
    finally:
        if planted:
            stale.unlink()
    logs = [(tmp_path / f"rank{rank}.log").read_text() for rank in (0, 1)]
    assert result.stdout.split() == ["0", "0"], logs
    for log in logs:
        assert log.startswith(f"synced obs://{BUCKET}/job2/data -> {tmp_path}/rank"), log
    assert (tmp_path / "rank0" / "a.bin").read_bytes() == b"\x00" * 1000
    assert (tmp_path / "rank0" / "sub" / "b.bin").read_bytes() == b"b" * 10
    assert not (tmp_path / "rank1").exists()  # rank 1 only waited
    lock_dir = moxing_adapter.private_lock_dir()
    assert oct(os.stat(lock_dir).st_mode & 0o777) == "0o700"


def test_object_keys_leaving_the_folder_are_refused(object_store, tmp_path, monkeypatch):
    endpoint, s3 = object_store
    s3.put_object(Bucket=BUCKET, Key="job3/data/ok.bin", Body=b"ok")
    s3.put_object(Bucket=BUCKET, Key="job3/data/sub/../../../escape.bin", Body=b"x")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="job3/")["Contents"]}
    assert "job3/data/sub/../../../escape.bin" in keys, keys  # stored as given
    for name, value in _obs_env(endpoint).items():
        monkeypatch.setenv(name, value)
    copier = moxing_adapter.ObsCopier.from_environment()
    with pytest.raises(UserError, match=r"job3/data/sub/\.\./\.\./\.\./escape\.bin: an object key with '\.\.'"):
        copier.download(f"obs://{BUCKET}/job3/data", str(tmp_path / "a" / "b" / "dl"))
    assert not list(tmp_path.rglob("escape.bin"))


def test_the_scheduler_copies_nothing(monkeypatch):
    """msrun's scheduler runs train.py too: it trains nothing, so it neither needs a client nor copies."""
    monkeypatch.setitem(sys.modules, "moxing", None)
    monkeypatch.setitem(sys.modules, "obs", None)
    monkeypatch.setenv("MS_ROLE", "MS_SCHED")
    cfg = get_config(["--enable_modelarts=true", "--data_url=obs://b/data", "--data_path=/nonexistent/data",
                      "--train_url=obs://b/out"])
    assert moxing_adapter.moxing_wrapper(cfg)(lambda: "ran")() == "ran"
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    with pytest.raises(UserError, match="pip install esdk-obs-python"):
        moxing_adapter.moxing_wrapper(cfg)(lambda: "ran")()


def test_a_local_train_url_does_not_replace_an_explicit_output_path(tmp_path):
    train_url = tmp_path / "outputs"
    on = ["--enable_modelarts=true", f"--train_url={train_url}"]
    assert moxing_adapter.modelarts_paths(get_config(on)).output_path == str(train_url)
    assert moxing_adapter.modelarts_paths(get_config(on + [f"--output_path={train_url}/"])).output_path == \
        str(train_url)
    with pytest.raises(UserError) as info:
        moxing_adapter.modelarts_paths(get_config(on + [f"--output_path={tmp_path}/mine"]))
    assert str(info.value) == (f"train_url {train_url} is a local folder, used as output_path, but output_path "
                               f"{tmp_path}/mine (from --output_path={tmp_path}/mine) names another: give one of "
                               "them, or the same folder to both")


def test_wrapper_copies_data_and_checkpoint_in_and_outputs_out(object_store, tmp_path, monkeypatch):
    """moxing_wrapper around a job (what eval.py/export.py/train.py do) against the object store: data_url into
    data_path's folder (data_path names a file), checkpoint_url into checkpoint_path's folder before the job and
    its hooks, output_path up to train_url after them."""
    endpoint, s3 = object_store
    s3.put_object(Bucket=BUCKET, Key="job4/data/train.mindrecord", Body=b"records")
    s3.put_object(Bucket=BUCKET, Key="job4/ckpt/srcnn.ckpt", Body=b"weights")
    monkeypatch.setitem(sys.modules, "moxing", None)  # the OBS SDK path
    for name in ("RANK_SIZE", "DEVICE_ID", "MS_ROLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _obs_env(endpoint).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    cfg = get_config(["--enable_modelarts=true", f"--data_url=obs://{BUCKET}/job4/data",
                      f"--data_path={tmp_path}/d/train.mindrecord", f"--checkpoint_url=obs://{BUCKET}/job4/ckpt",
                      f"--checkpoint_path={tmp_path}/c/srcnn.ckpt", f"--train_url=obs://{BUCKET}/job4/out",
                      f"--output_path={out}"])
    order = []

    def job(x):
        order.append(("job", (tmp_path / "d" / "train.mindrecord").read_bytes(),
                      (tmp_path / "c" / "srcnn.ckpt").read_bytes()))
        (out / "result.txt").write_text("done")
        return x * 2

    run = moxing_adapter.moxing_wrapper(cfg, pre_process=lambda: order.append("pre"),
                                        post_process=lambda: order.append("post"))(job)
    assert run(21) == 42
    assert order == ["pre", ("job", b"records", b"weights"), "post"]
    assert s3.get_object(Bucket=BUCKET, Key="job4/out/result.txt")["Body"].read() == b"done"
