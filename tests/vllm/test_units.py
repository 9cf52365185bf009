"""The engine-free parts of steerlens.vllm: the (hidden_states, residual) split edit, the
payload and its cache salt, intervention lists per prompt, the server's specs."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.errors import SteerlensTypeError
from steerlens.vllm import payload
from steerlens.vllm.requests import per_prompt
from steerlens.vllm.residual import split_edit
from steerlens.vllm.spec import SpecError, parse


def test_split_edit_changes_the_sum_exactly_and_leaves_other_tokens_alone():
    generator = torch.Generator().manual_seed(0)
    h, r = torch.randn(5, 8, generator=generator), torch.randn(5, 8, generator=generator)
    rows = torch.tensor([1, 3])
    d = torch.randn(8, generator=generator)

    def editor(_layer, _site, stream):
        stream.index_copy_(0, rows, stream.index_select(0, rows) + d)
        return rows

    h2, r2 = split_edit(editor, 0, "resid_pre", h, r)
    assert torch.equal((h2 + r2)[rows], (h + r)[rows] + d)  # what the fused add computes
    keep = torch.tensor([0, 2, 4])
    assert torch.equal(h2[keep], h[keep]) and torch.equal(r2[keep], r[keep])  # bit for bit
    first, none = split_edit(editor, 0, "resid_pre", h, None)  # layer 0: no residual yet
    assert none is None and torch.equal(first[rows], h[rows] + d)
    assert split_edit(lambda *_: None, 0, "resid_pre", h, r) == (h, r)  # nothing touched


def test_payload_round_trip_and_salt():
    vec = torch.ones(16)
    entries = [sl.add(vec, 2.0, layers=[1]), sl.ablate(vec, layers=[2])]
    carried = payload.encode(entries)
    back = payload.decode(carried)
    assert [repr(e) for e in back] == [repr(e) for e in entries]
    assert payload.salt(carried, entries, [1, 2, 3]) == payload.salt(carried, entries, [1, 2])
    generated = [sl.add(vec, 2.0, layers=[1], positions="generated")]
    other = payload.encode(generated)
    assert payload.salt(other, generated, [1, 2, 3]) != payload.salt(other, generated, [1, 2])
    assert payload.salt(carried, entries, [1]) != payload.salt(other, generated, [1])


def test_per_prompt_lists():
    add = sl.add(torch.ones(16), layers=[1])
    assert per_prompt(None, 2) == [[], []]
    assert per_prompt(add, 2) == [[add], [add]]
    assert per_prompt([add], 3) == [[add]] * 3
    assert per_prompt([[add], []], 2) == [[add], []]
    with pytest.raises(sl.SteerlensError, match="3 lists for 2 prompts"):
        per_prompt([[add], [], []], 2)
    with pytest.raises(SteerlensTypeError):
        per_prompt("add", 2)


def test_specs_become_the_python_objects_or_name_the_field():
    vec = sl.SteeringVector({3: torch.ones(16)})
    got = parse([{"vector": "v", "kind": "clamp", "value": 2.0, "positions": "prompt"}], {"v": vec})
    assert repr(got[0]) == repr(sl.clamp(vec, 2.0, positions="prompt"))
    with pytest.raises(SpecError) as caught:
        parse([{"vector": "v", "kind": "add", "coeff": [1]}], {"v": vec})
    assert caught.value.field == "steerlens[0].coeff"
