"""One settings object for the one-shot options; keyword options replace its fields."""

from __future__ import annotations

import pytest

import steerlens as sl
from steerlens.core.errors import SteerlensError
from steerlens.oneshot.settings import OneShotSettings, StudySettings, resolve


def test_options_replace_fields_and_misspellings_are_refused():
    base = OneShotSettings(lr=0.5, max_iters=3)
    assert resolve(base, {"lr": 0.2}) == OneShotSettings(lr=0.2, max_iters=3)
    assert resolve(None, {}) == OneShotSettings()
    with pytest.raises(TypeError, match="unknown option 'max_iter'.*Did you mean 'max_iters'"):
        resolve(base, {"max_iter": 3})
    with pytest.raises(TypeError, match="unknown option 'coldness'"):
        resolve(base, {"coldness": 0.5}, exclude=("coldness",))
    with pytest.raises(SteerlensError, match="lr"):
        OneShotSettings(lr=-1.0)


def test_settings_record_the_rule_as_written():
    assert OneShotSettings(positions=[3, -1]).to_dict()["positions"] == [-1, 3]
    assert OneShotSettings().to_dict()["positions"] == "all"


def test_misspelt_option_of_optimize_one_shot(tiny_model):
    with pytest.raises(TypeError, match="Did you mean 'max_iters'"):
        sl.optimize_one_shot(tiny_model, "Hi", " there", layer=1, max_iter=2)


def test_study_presets():
    quick = StudySettings.quick()
    assert (quick.n_train, quick.n_held_out, quick.max_iters) == (2, 4, 8)
    assert StudySettings.quick(layer=5).layer == 5
    with pytest.raises(SteerlensError, match="n_harmful"):
        StudySettings(n_harmful=1)
