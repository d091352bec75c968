"""The Ray engine on a local 2-worker instance gives the local engine's results."""

from __future__ import annotations

import pytest
from _batch_helpers import design_outputs, final_states, leftovers, write_small_campaign

from protscramble.batch import run_batch

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():  # pragma: no cover - another test left one running
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield
    ray.shutdown()


def test_ray_engine_matches_local_engine(local_ray, tmp_path):
    manifest, config = write_small_campaign(tmp_path)
    local = run_batch(manifest, tmp_path / "local", config, devices="cpu", log=None)
    remote = run_batch(manifest, tmp_path / "ray", config, engine="ray", log=None)
    assert sorted(remote.done) == sorted(local.done) == ["a1", "a2", "a3", "b1"]
    assert ray.is_initialized()  # the engine leaves a Ray instance it did not start running
    assert final_states(tmp_path / "ray") == final_states(tmp_path / "local")
    assert design_outputs(tmp_path / "ray") == design_outputs(tmp_path / "local")
    assert leftovers(tmp_path / "ray") == []

    again = run_batch(manifest, tmp_path / "ray", config, engine="ray", log=None)
    assert again.done == [] and len(again.skipped) == 4
