"""``sl.vllm.generate`` on the default model equals ``sl.generate`` under ``sl.steer``,
token for token (float32, greedy), in one mixed continuous batch: every kind (add, also
norm-preserving, ablate rank 1 and 2, clamp, rotate, a notebook-defined ``Scale``), every
position rule and residual site, steered, differently steered and unsteered rows together,
prompts split into prefill chunks, preempted and recomputed, and served from the prefix
cache."""

from __future__ import annotations

import pytest
import torch

import steerlens as sl
from steerlens.core.errors import SteerlensTypeError
from tests.vllm.helpers import Scale, direction, engine_tokens, grouped_reference, reference

#: A system prompt long enough that the prompts share two full 32-token KV blocks.
SYSTEM = (
    "You are a careful, friendly assistant for a cooking school. Answer every question in "
    "one or two short sentences, plainly, without lists, headings or emphasis, and never "
    "mention that you are an assistant."
)
QUESTIONS = ["How do I bake bread?", "Name a colour.", "What is the capital of France?"]
PROMPTS = [
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS
]
N_NEW = 10


@pytest.fixture(scope="module")
def directions(default_model):
    """Directions that matter: the mean residual at layers 4 and 12 (ablating or clamping
    it changes the reply), and a random direction for adding."""
    texts = [sl.format_chat(default_model, q) for q in QUESTIONS]
    acts = sl.collect_activations(default_model, texts, [4, 12], position="mean")
    mean = acts.mean(0)
    return {
        "mean4": mean[0],
        "mean12": mean[1],
        "other12": acts[0, 1] - mean[1],
        "random": direction(576, 0),
    }


def cases(d) -> dict[str, list]:
    """One list per case: every kind, every position rule and every site at least once."""
    return {
        "add all pre": [sl.add(d["random"], 8.0, layers=[4, 12], site="resid_pre")],
        "add generated post": [
            sl.add(d["random"], 10.0, layers=[8], site="resid_post", positions="generated")
        ],
        "ablate prompt mid": [
            sl.ablate(d["mean12"], layers=[12], site="resid_mid", positions="prompt")
        ],
        "ablate rank-2 instruction pre": [
            sl.ablate(
                torch.stack([d["mean12"], d["other12"]]),
                layers=[12],
                site="resid_pre",
                positions="instruction",
            )
        ],
        "clamp post_instruction post": [
            sl.clamp(d["mean4"], 0.0, layers=[4], site="resid_post", positions="post_instruction")
        ],
        "clamp response mid": [
            sl.clamp(d["mean12"], -20.0, layers=[12], site="resid_mid", positions="response")
        ],
        "add indices mid": [
            sl.add(d["random"], 30.0, layers=[4], site="resid_mid", positions=[3, 40])
        ],
        "add last prompt token pre": [
            sl.add(d["random"], 30.0, layers=[6], site="resid_pre", positions=[-1])
        ],
        "norm-preserving add all post": [
            sl.add(d["random"], 20.0, preserve_norm=True, layers=[10], site="resid_post")
        ],
        "rotate generated pre": [
            sl.steering.rotate(d["mean12"], 60.0, layers=[12], positions="generated")
        ],
        "rotate in a fixed plane, instruction mid": [
            sl.steering.rotate(
                d["mean12"],
                120.0,
                plane=d["other12"],
                layers=[12],
                site="resid_mid",
                positions="instruction",
            )
        ],
        "user kind (Scale) all post": [
            Scale(d["mean12"] / d["mean12"].norm(), -2.0, layers=[12], site="resid_post")
        ],
        "two in order": [
            sl.add(d["mean12"], 2.0, layers=[12], positions="generated"),
            sl.clamp(d["mean12"], 5.0, layers=[12], positions="all"),
        ],
    }


def test_mixed_batch_equals_sl_generate(engine, default_model, directions):
    lists = list(cases(directions).values())
    rows = [(entries, prompt) for entries in lists for prompt in PROMPTS[:2]]
    rows += [([], PROMPTS[2]), ([], PROMPTS[0])]  # unsteered rows in the same batch
    prompts, per_row = [p for _, p in rows], [e for e, _ in rows]
    assert min(len(sl.format_chat(default_model, p)) for p in prompts) > 16 * 4  # chunked
    expected = grouped_reference(default_model, prompts, per_row, N_NEW)
    got = engine_tokens(engine, prompts, per_row, N_NEW)
    assert got == expected
    unsteered = reference(default_model, PROMPTS[:2], [], N_NEW)
    changed = [got[2 * i : 2 * i + 2] != unsteered for i in range(len(lists))]
    assert sum(changed) >= len(lists) - 1, changed  # the cases really steer
    again = engine_tokens(engine, prompts, per_row, N_NEW)  # now from the prefix cache
    assert again == expected


def preemptions(engine) -> float:
    return next(m.value for m in engine.get_metrics() if m.name == "vllm:num_preemptions")


def test_preempted_requests_keep_their_positions(engine, default_model, directions):
    """18 requests x 60 tokens overflow the 12-block KV cache: vLLM preempts requests and
    recomputes them from position 0, and they are steered exactly as before."""
    steer = [
        sl.add(directions["random"], 10.0, layers=[8], positions="generated"),
        sl.clamp(directions["mean12"], 0.0, layers=[12], positions=[-1]),
    ]
    before = preemptions(engine)
    got = engine_tokens(engine, PROMPTS * 6, [steer] * 18, 60)
    assert preemptions(engine) > before
    assert got == reference(default_model, PROMPTS, steer, 60) * 6


def test_when_decides_per_row(engine, default_model, directions):
    texts = [sl.format_chat(default_model, p) for p in PROMPTS]
    cond = directions["other12"]
    proj = sl.collect_activations(default_model, texts, [12], position="mean")[:, 0] @ (
        cond / cond.norm()
    )
    threshold = float(proj.median())  # one prompt above, one at, one below
    conditional = sl.when(
        cond, threshold, sl.add(directions["random"], 10.0, layers=[14]), layer=12, comparator=">="
    )
    lists = [[conditional], [conditional], [conditional], []]
    prompts = [*PROMPTS, PROMPTS[0]]
    expected = reference(default_model, PROMPTS, [conditional], N_NEW) + [
        reference(default_model, [PROMPTS[0]], [], N_NEW)[0]
    ]
    assert engine_tokens(engine, prompts, lists, N_NEW) == expected
    met = int((proj >= threshold).sum())
    assert 0 < met < 3


def test_two_conditions_are_read_in_forward_order(engine, default_model, directions):
    """The second condition is read first (layer 6); the first (layer 12) sees its edit."""
    late = sl.when(
        directions["other12"],
        0.0,
        sl.add(directions["random"], 10.0, layers=[16]),
        layer=12,
        comparator="<",
    )
    early = sl.when(
        directions["mean4"], -1e9, sl.add(directions["mean12"], -1.0, layers=[8]), layer=6
    )
    lists = [[late, early]] * 3
    expected = reference(default_model, PROMPTS, [late, early], N_NEW)
    assert engine_tokens(engine, PROMPTS, lists, N_NEW) == expected


def test_unsteered_equals_plain_vllm_and_sl_generate(engine, default_model):
    from vllm import SamplingParams

    from steerlens.core.tokens import encode

    texts = [sl.format_chat(default_model, p) for p in PROMPTS]
    plain = engine.generate(
        [{"prompt_token_ids": encode(default_model, t)} for t in texts],
        SamplingParams(max_tokens=N_NEW, temperature=0.0),
        use_tqdm=False,
    )
    eos = default_model.tokenizer.eos_token_id
    plain_ids = [[i for i in o.outputs[0].token_ids if i != eos] for o in plain]
    ours = engine_tokens(engine, PROMPTS, None, N_NEW)
    assert ours == plain_ids == reference(default_model, PROMPTS, [], N_NEW)
    texts_out = sl.vllm.generate(engine, PROMPTS, max_new_tokens=N_NEW)
    assert texts_out == sl.generate(default_model, PROMPTS, max_new_tokens=N_NEW)


def test_cache_salt_keeps_steered_and_unsteered_apart(engine, directions):
    prompt = [
        {"role": "system", "content": "Be brief. " + SYSTEM},
        {"role": "user", "content": "Hi"},
    ]
    add = sl.add(directions["random"], 8.0, layers=[4])

    def cached(lists):
        from vllm import SamplingParams

        from steerlens.vllm.requests import engine_requests, per_prompt

        model = sl.vllm.engine.engine_model(engine)
        ids = sl.core.tokens.encode(model, sl.format_chat(model, prompt))
        prompts, params = engine_requests(
            per_prompt(lists, 1), [ids], SamplingParams(max_tokens=1, temperature=0.0)
        )
        return engine.generate(prompts, params, use_tqdm=False)[0].num_cached_tokens

    assert cached([add]) == 0  # first sight
    assert cached(None) == 0  # unsteered: the steered blocks are not handed over
    assert cached([add]) >= 32  # the same intervention list shares its blocks
    assert cached([sl.add(directions["random"], 9.0, layers=[4])]) == 0  # another list does not


def test_bad_lists_are_refused_before_the_engine(engine, directions):
    add = sl.add(directions["random"], 1.0, layers=[4])
    with pytest.raises(sl.SteerlensError, match="layers \\[40\\] are out of range"):
        sl.vllm.generate(engine, "Hi", [sl.add(torch.ones(576), layers=[40])])
    with pytest.raises(sl.SteerlensError, match="d_model 64"):
        sl.vllm.generate(engine, "Hi", [sl.add(torch.ones(64), layers=[4])])
    with pytest.raises(
        sl.SteerlensError, match="vector: d_model 64 does not match the model's 576"
    ):
        sl.vllm.project(engine, ["Hi"], sl.SteeringVector({4: torch.ones(64)}))
    with pytest.raises(sl.SteerlensError, match="prompts\\[1\\].*out of range"):
        sl.vllm.generate(
            engine, ["Hi", "Hi"], [[], [sl.add(torch.ones(576), layers=[4], positions=[500])]]
        )
    with pytest.raises(sl.SteerlensError, match="chat-template marker"):
        sl.vllm.generate(
            engine,
            "plain text",
            [sl.add(torch.ones(576), layers=[4], positions="instruction")],
            chat=False,
        )
    with pytest.raises(sl.SteerlensError, match="2 lists for 3 prompts"):
        sl.vllm.generate(engine, ["a", "b", "c"], [[add], []])
    with pytest.raises(SteerlensTypeError, match="interventions"):
        sl.vllm.generate(engine, "Hi", ["add"])
    assert sl.vllm.generate(engine, "Hi", [add], max_new_tokens=2)  # the engine lives on
