"""The training Session leaves global state alone: building one changes neither
torch's thread count nor its global RNG, and running one puts both back after."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import CheckpointError
from zoo.train import RunSettings, TrainConfig
from zoo.train.session import Session, StopFlag
from zoo.train.settings import settle


def _session(tmp_path, threads: int) -> Session:
    spec = zoo.get_spec("lenet5")
    config = TrainConfig("lenet5", epochs=1, batch_size=64, limit=128, out=tmp_path / "run")
    settings = settle(spec, config, None)
    return Session(spec, tmp_path / "run", settings, torch.device("cpu"), config, lambda e: None, StopFlag(),
                   None, threads)


def test_building_and_running_a_session_leaves_threads_and_rng_alone(tmp_path):
    before_threads = torch.get_num_threads()
    other = 2 if before_threads == 1 else 1
    torch.manual_seed(1234)
    rng = torch.get_rng_state()
    session = _session(tmp_path, other)
    assert torch.get_num_threads() == before_threads
    assert torch.equal(torch.get_rng_state(), rng)
    seen = []
    session.emit = lambda e: seen.append(torch.get_num_threads())
    result = session.run()
    assert result.finished and set(seen) == {other}  # it trained with the threads it was given
    assert torch.get_num_threads() == before_threads
    assert torch.equal(torch.get_rng_state(), rng)


def test_settings_round_trip_through_a_checkpoint_dict_and_bad_ones_are_refused(tmp_path):
    spec = zoo.get_spec("lenet5")
    settings = settle(spec, TrainConfig("lenet5", lr=0.01, seed=3, limit=100), None)
    assert isinstance(settings, RunSettings)
    assert RunSettings.from_dict(settings.as_dict()) == settings
    broken = settings.as_dict() | {"limit": "many"}
    with pytest.raises(CheckpointError, match="settings are not valid"):
        RunSettings.from_dict(broken)
    with pytest.raises(CheckpointError):
        RunSettings.from_dict(None)
