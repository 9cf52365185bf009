"""Shipped datasets and the loader."""

from __future__ import annotations

import pandas as pd
import pytest

import steerlens as sl
from steerlens import SteerlensError

SCHEMAS = {
    "refusal": {"id", "request", "harmful", "refusal", "compliance"},
    "sentiment": {"id", "positive", "negative", "topic"},
    "truthfulness": {"id", "true", "false", "topic"},
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_shipped_dataset(name):
    assert name in sl.datasets.names()
    frame = sl.datasets.load(name)
    assert set(frame.columns) == SCHEMAS[name]
    assert len(frame) >= 100 and frame["id"].is_unique
    text_columns = [c for c in SCHEMAS[name] if c not in {"id", "harmful", "topic"}]
    assert all(frame[c].str.len().gt(5).all() for c in text_columns)
    assert not frame[text_columns[0]].duplicated().any()


def test_pairs_differ():
    frame = sl.datasets.load("truthfulness")
    assert (frame["true"] != frame["false"]).all()
    refusal = sl.datasets.load("refusal")
    assert refusal["harmful"].sum() >= 40 and (~refusal["harmful"]).sum() >= 40


def test_loader_accepts_files_frames_and_hf_like(tmp_path):
    frame = pd.DataFrame({"positive": ["a b c"], "negative": ["d e f"]})
    frame.to_csv(tmp_path / "x.csv", index=False)
    frame.to_json(tmp_path / "x.jsonl", orient="records", lines=True)
    for source in (tmp_path / "x.csv", tmp_path / "x.jsonl", frame):
        pd.testing.assert_frame_equal(sl.datasets.load(source), frame)

    class HFLike:
        def to_pandas(self):
            return frame

    pd.testing.assert_frame_equal(sl.datasets.load(HFLike()), frame)


def test_loader_errors(tmp_path):
    with pytest.raises(SteerlensError, match="neither a shipped dataset"):
        sl.datasets.load("no-such-set")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SteerlensError, match=".jsonl or .csv"):
        sl.datasets.load(tmp_path / "x.txt")
    with pytest.raises(SteerlensError, match="no rows"):
        sl.datasets.load(pd.DataFrame())
    with pytest.raises(SteerlensError, match="expected a dataset name"):
        sl.datasets.load(42)
