"""The shipped value stimuli, the stimulus schema and its validation (no model needed)."""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
import pytest

import steerlens as sl
from steerlens import SteerlensError
from steerlens.values.stimuli import check_dimensions, load_stimuli, subsample


@pytest.fixture(scope="module")
def shipped():
    return sl.datasets.load("values")


def test_shipped_schema_and_cells(shipped):
    assert "values" in sl.datasets.names()
    assert {"id", "set", "frame", "text", "moral", "grammar", "economic", "error"} <= set(
        shipped.columns
    )
    assert shipped["id"].is_unique and not shipped["text"].duplicated().any()
    for set_name, target in (("moral_grammar", "grammar"), ("moral_economic", "economic")):
        part = shipped[shipped["set"] == set_name]
        counts = part.groupby(["moral", target]).size()
        assert len(counts) == 4 and counts.min() >= 40 and counts.nunique() == 1
        # every frame has exactly its four versions
        assert (part.groupby("frame").size() == 4).all()
        assert part.groupby("frame")[["moral", target]].nunique().eq(2).all().all()


def _edits(a: str, b: str) -> list[tuple[list[str], list[str]]]:
    """The word-level edits that turn ``a`` into ``b``."""
    a_words, b_words = a.split(), b.split()
    ops = difflib.SequenceMatcher(a=a_words, b=b_words, autojunk=False).get_opcodes()
    return [(a_words[i1:i2], b_words[j1:j2]) for op, i1, i2, j1, j2 in ops if op != "equal"]


def test_cells_differ_only_in_the_manipulated_words(shipped):
    """Within a frame, the moral edit is the same at both levels of the target, and the
    target edit the same for both moral versions: the two factors are minimal swaps."""
    for set_name, target in (("moral_grammar", "grammar"), ("moral_economic", "economic")):
        part = shipped[shipped["set"] == set_name]
        for _, frame in part.groupby("frame"):
            text = {(r.moral, getattr(r, target)): r.text for r in frame.itertuples()}
            moral = [_edits(text[1, level], text[-1, level]) for level in (1, -1)]
            other = [_edits(text[m, 1], text[m, -1]) for m in (1, -1)]
            assert moral[0] == moral[1] and other[0] == other[1], text
            changed = sum(len(a) + len(b) for a, b in moral[0] + other[0])
            assert 2 <= changed <= 24, text


def test_cells_matched_in_length(shipped):
    words = shipped["text"].str.split().str.len()
    for set_name, target in (("moral_grammar", "grammar"), ("moral_economic", "economic")):
        part = shipped["set"] == set_name
        means = words[part].groupby([shipped.loc[part, "moral"], shipped.loc[part, target]]).mean()
        assert means.max() - means.min() < 1.5, means


def test_ill_formed_items_name_their_error(shipped):
    grammar = shipped[shipped["set"] == "moral_grammar"]
    ill = grammar[grammar["grammar"] == -1]
    assert ill["error"].notna().all() and ill["error"].nunique() >= 6
    assert grammar.loc[grammar["grammar"] == 1, "error"].isna().all()


def test_load_stimuli_defaults_and_sources(shipped, tmp_path):
    items = load_stimuli()
    assert len(items) == len(shipped)
    assert set(items["moral"]) == {1, -1}
    assert set(items.loc[items["set"] == "moral_grammar", "economic"]) == {0}
    only = load_stimuli(dimensions=["economic"])
    assert set(only["set"]) == {"moral_economic"}
    frame = shipped[shipped["set"] == "moral_grammar"].drop(columns=["economic", "error"])
    frame.to_csv(tmp_path / "mine.csv", index=False)
    frame.to_json(tmp_path / "mine.jsonl", orient="records", lines=True)
    for source in (frame, tmp_path / "mine.csv", tmp_path / "mine.jsonl"):
        got = load_stimuli(source, dimensions=["grammar"])
        assert list(got["id"]) == list(frame["id"])
        assert list(got["grammar"]) == list(frame["grammar"])


def test_frame_column_is_optional():
    rows = [
        {"id": f"x{i}", "text": f"Item {i}.", "set": "moral_grammar", "moral": m, "grammar": g}
        for i, (m, g) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)] * 2)
    ]
    items = load_stimuli(pd.DataFrame(rows), dimensions=["grammar"])
    assert list(items["frame"]) == list(items["id"])


def _grammar_rows():
    return pd.DataFrame(
        [
            {"id": f"x{i}", "text": f"Item {i}.", "set": "moral_grammar", "moral": m, "grammar": g}
            for i, (m, g) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)] * 3)
        ]
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["moral"]), "missing column"),
        (lambda f: f.drop(columns=["grammar"]), "need a 'grammar' label column"),
        (lambda f: f.assign(moral=np.nan), "must be \\+1 or -1"),
        (lambda f: f.assign(grammar=[2] + [1] * 11), "must be \\+1 or -1"),
        (lambda f: f.assign(set="moral_politics"), "unknown set"),
        (lambda f: f.iloc[:-1], "unbalanced"),
        (lambda f: f[~((f["moral"] == 1) & (f["grammar"] == 1))], "at least 2 items in each"),
        (lambda f: f.assign(id="same"), "unique"),
        (lambda f: f.assign(text=[""] + ["x"] * 11), "has no text"),
        (lambda f: f.iloc[0:0], "no rows"),
    ],
)
def test_bad_stimuli(edit, message):
    with pytest.raises(SteerlensError, match=message):
        load_stimuli(edit(_grammar_rows()), dimensions=["grammar"])


def test_missing_set_for_a_requested_dimension():
    with pytest.raises(SteerlensError, match="no items in set"):
        load_stimuli(_grammar_rows(), dimensions=["grammar", "economic"])


def test_dimension_names():
    assert check_dimensions("grammar") == ["grammar"]
    with pytest.raises(SteerlensError, match="Did you mean 'economic'"):
        check_dimensions(["economics"])
    with pytest.raises(SteerlensError, match="unknown dimension 'taste'"):
        check_dimensions(["taste"])
    with pytest.raises(SteerlensError, match="twice"):
        check_dimensions(["grammar", "grammar"])
    with pytest.raises(SteerlensError, match="at least one"):
        check_dimensions([])


def test_subsample_keeps_whole_frames():
    items = load_stimuli()
    small = subsample(items, 5, seed=1)
    assert small.groupby("set")["frame"].nunique().eq(5).all()
    assert (small.groupby("frame").size() == 4).all()
    assert subsample(items, 5, seed=1).equals(small)
    assert subsample(items, None) is items
    with pytest.raises(SteerlensError, match="max_frames"):
        subsample(items, 1)
