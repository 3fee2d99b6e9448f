"""prepare --runner=beam against the local runner: same bytes, same failures, same resume.

The Beam runs use Beam's FnApiRunner in multi-processing mode with 2 workers, so
shards really are written by other processes than the one that plans them. The
jobs that resume run in the test's own process (``RESUMED``): which shards a
resume writes is the driver's plan, and the two worker processes would each
import TensorFlow again.
"""

import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from facepars import prepare
from facepars.core.errors import ConfigError, PrepareError
from facepars.data import (
    beam,  # noqa: E402
    beam_options,
    shards,
)

import fixtures
from conftest import REPO, held_prepare, wait_for_file

# What may differ between two runs of the same job: how and when it was started.
UNSTABLE = ("command", "created")
BEAM = {"runner": "beam", "workers": 2}
RESUMED = {**BEAM, "resume": True,
           "beam_pipeline_options": "direct_num_workers=1,direct_running_mode=in_memory"}


def _config(root, out, **kw):
    return prepare.PrepareConfig(source="kaggle", input_dir=str(root), output_dir=str(out),
                                 image_size=32, shard_size=3, **kw)


def _assert_same_data_set(a, b):
    """Byte-identical shards and manifests equal but for the start time and command line."""
    names = sorted(os.listdir(a))
    assert names == sorted(os.listdir(b))
    assert "_parts" not in names
    for name in names:
        if name.endswith(".tfrecord"):
            assert open(os.path.join(a, name), "rb").read() == \
                open(os.path.join(b, name), "rb").read(), name
    ma, mb = (json.load(open(os.path.join(d, "manifest.json"))) for d in (a, b))
    for key in UNSTABLE:
        ma.pop(key), mb.pop(key)
    assert ma == mb


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    """A Kaggle-layout source with 16 pairs, one of them corrupt, and its local conversion."""
    root = tmp_path_factory.mktemp("beam")
    fixtures.write_kaggle(str(root / "kaggle"), splits=(("train", 12), ("val", 4)),
                          size=(90, 70))
    bad = root / "kaggle/content/All_data/train/image/0005_0001.jpg"
    good = bad.read_bytes()
    bad.write_bytes(b"\xff\xd8garbage")
    local = _config(root / "kaggle", root / "local", on_error="skip", workers=2)
    prepare.run(local)
    return {"root": root, "good": good, "local": local}


@pytest.mark.slow
def test_beam_writes_the_bytes_the_local_pool_writes(kaggle, tmp_path, monkeypatch):
    counted = []
    log_counters = beam.log_counters
    monkeypatch.setattr(beam, "log_counters", lambda result: counted.append(
        log_counters(result)) or counted[-1])
    manifest = prepare.run(_config(kaggle["root"] / "kaggle", tmp_path / "beam",
                                  on_error="skip", **BEAM))
    # Beam ran it: its workers' counters, summed by Beam, saw every pair and shard.
    assert counted and counted[0]["pairs_done"] == 16 and counted[0]["bad_files"] == 1, counted
    shard_bytes = sum(os.path.getsize(tmp_path / "beam" / s["file"])
                      for split in manifest["splits"].values() for s in split["shards"])
    assert counted[0]["bytes_written"] == shard_bytes
    assert len(manifest["skipped"]) == 1 and "0005_0001.jpg" in manifest["skipped"][0]["error"]
    assert manifest["splits"]["train"]["num_records"] == 11
    assert len(manifest["splits"]["train"]["shards"]) == 4
    _assert_same_data_set(kaggle["local"].output_dir, tmp_path / "beam")


@pytest.mark.slow
def test_beam_fails_naming_the_file_and_resumes_once_it_is_fixed(kaggle, tmp_path):
    root = tmp_path / "kaggle"
    shutil.copytree(kaggle["root"] / "kaggle", root)
    cfg = _config(root, tmp_path / "beam", **BEAM)  # on_error="fail"
    with pytest.raises(PrepareError, match="0005_0001.jpg.*corrupt"):
        prepare.run(cfg)
    out = tmp_path / "beam"
    assert not (out / "manifest.json").exists()
    # The other shards are in place; the one holding the bad pair never reached its name.
    assert 0 < len(glob.glob(f"{out}/*.tfrecord")) < 6
    assert len(glob.glob(f"{out}/_parts/*.error.json")) == 1

    (root / "content/All_data/train/image/0005_0001.jpg").write_bytes(kaggle["good"])
    manifest = prepare.run(dataclasses.replace(cfg, **RESUMED))
    assert manifest["skipped"] == [] and manifest["splits"]["train"]["num_records"] == 12
    prepare.run(_config(root, tmp_path / "local", workers=1))
    _assert_same_data_set(tmp_path / "local", out)


@pytest.mark.slow
def test_a_killed_beam_job_resumes_to_the_same_data_set(tmp_path):
    args = ["--source=synthetic", "--num_examples=60", "--synthetic_size=160",
            "--image_size=48", "--shard_size=2", "--runner=beam", "--workers=2"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "facepars.prepare", *args,
                             f"--output_dir={out}"], cwd=REPO,
                            env=held_prepare(tmp_path / "held", 3),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    wait_for_file(tmp_path / "held", proc)  # a worker holds once 3 of 30 shards are in place
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Beam workers
    proc.wait()
    done = len(glob.glob(f"{out}/*.tfrecord"))
    assert 3 <= done <= 4, f"each of the 2 workers holds after its shard ({done} shards)"
    assert not (out / "manifest.json").exists()

    flags = {"source": "synthetic", "num_examples": 60, "synthetic_size": 160,
             "image_size": 48, "shard_size": 2}
    prepare.run(prepare.PrepareConfig(output_dir=str(out), **flags, **RESUMED))
    prepare.run(prepare.PrepareConfig(output_dir=str(tmp_path / "local"), workers=1, **flags))
    _assert_same_data_set(tmp_path / "local", out)


def test_pipeline_options_parse_the_tfds_convention():
    opts = beam_options.pipeline_options(
        "runner=DataflowRunner,project=p,region=europe-west4,"
        "temp_location=gs://b/tmp,num_workers=7",
        workers=2,
    ).get_all_options()
    assert (opts["runner"], opts["project"], opts["region"], opts["num_workers"]) == \
        ("DataflowRunner", "p", "europe-west4", 7)
    for given, expected in (("", (3, "multi_processing")),
                            ("direct_num_workers=1", (1, "in_memory")),
                            ("direct_num_workers=1,direct_running_mode=in_memory",
                             (1, "in_memory")),
                            ("direct_running_mode=multi_threading", (3, "multi_threading"))):
        # The local runner takes --workers processes unless the options say otherwise.
        direct = beam_options.pipeline_options(given, workers=3).get_all_options()
        assert (direct["runner"], direct["direct_num_workers"], direct["direct_running_mode"]) \
            == ("FnApiRunner", *expected), given
    with pytest.raises(ConfigError, match="num_wokers"):  # predict's option too
        beam_options.pipeline_options("num_wokers=3", workers=2)


def test_the_local_runner_skips_prism_and_provisions_the_options(caplog):
    """Beam's DirectRunner hands a pipeline to Prism first, a binary it fetches
    from GitHub (offline the fetch fails and it falls back), so a machine online
    would run other code than this suite does: facepars names the FnApiRunner.
    Named bare, that runner gives its worker processes no options; facepars
    provisions them, and the workers log at the level it sets (WARNING)."""
    import logging

    import apache_beam
    from apache_beam.testing.util import assert_that, equal_to

    def worker_log_level(_):  # nested: pickled by value for the worker processes
        import logging
        return logging.getLogger().getEffectiveLevel()

    with caplog.at_level(logging.INFO, logger="apache_beam"):
        with beam.pipeline(beam_options.pipeline_options("", workers=2)) as p:
            levels = (p | apache_beam.Create(range(4), reshuffle=False)
                      | apache_beam.Reshuffle() | apache_beam.Map(worker_log_level))
            assert_that(levels, equal_to([logging.WARNING] * 4))
    prism = [r.getMessage() for r in caplog.records if "prism" in r.getMessage().lower()]
    assert not prism, prism


@pytest.mark.slow
def test_a_million_pairs_make_a_graph_under_a_megabyte(tmp_path):
    """The graph holds plan entries, not pair references: a simulated listing of
    1,000,000 pairs serializes to under 1 MB (embedding the references, as
    ``beam.Create(job.pending)`` did, makes it hundreds of MB), and a worker reads
    its shard's pairs back from the plan file exactly as planned."""
    import apache_beam

    from facepars.data import sources
    pairs = {"train": [sources.SyntheticPair(f"synthetic/0/{n}", 0, n, 320, 320)
                       for n in range(1_000_000)]}
    plan = shards.plan_shards(pairs, 512, seed=0)
    cfg = prepare.PrepareConfig(output_dir=str(tmp_path), num_examples=1_000_000)
    job = shards.plan_job(dataclasses.replace(cfg, num_examples=8))  # a spec and settings
    job = dataclasses.replace(job, cfg=cfg, plan=plan, pending=plan)
    plan_path, entries = beam.write_plan(job.pending, job.parts_dir)
    pipeline = apache_beam.Pipeline()
    beam.build(pipeline, job, plan_path, entries)
    size = len(pipeline.to_runner_api().SerializeToString())
    print(f"graph of {len(entries)} shards ({len(plan) * 512 // 1000}k pairs): {size} bytes")
    assert len(entries) == 1954 and size < 1_000_000, size
    for i in (0, 977, 1953):
        shard = beam.read_planned_shard(plan_path, entries[i])
        assert shard["refs"] == plan[i]["refs"] and shard["file"] == plan[i]["file"]


def test_pair_references_survive_the_plan_file():
    from facepars.data import sources
    refs = [sources.FilePair("train/a", "/x/a.jpg", "/x/a.png", None),
            sources.FilePair("train/b", "gs://b/b.jpg", "gs://b/b.png", "gs://b/b.txt"),
            sources.PartsPair("7", "/c/7.jpg", ((1, "/c/0/00007_skin.png"),
                                                (3, "/c/0/00007_eye_g.png"))),
            sources.SyntheticPair("synthetic/0/3", 0, 3, 300, 280)]
    assert [sources.pair_from_json(json.loads(json.dumps(sources.pair_to_json(r))))
            for r in refs] == refs
