"""A kind of one's own on the default model: scale the component along a direction.

``x <- x + (f - 1) (x . u) u`` with ``u`` a unit direction: ``f = 0`` removes the component
(an ablation), ``f = 1`` changes nothing, ``f < 0`` reflects it.
"""

import torch

import steerlens as sl


class Scale(sl.steering.Intervention):
    """``x <- x + (f - 1) (x . u) u``: the component along unit ``u`` scaled by ``f``."""

    def __init__(self, u, f, **where):
        super().__init__(**where)  # layers=, site=, positions=
        self.u, self.f = u / u.norm(), f

    def edit(self, x, _layer):  # x: float32 [..., d_model], every position
        u = self.u.to(x.device)
        return x + (self.f - 1) * (x @ u)[..., None] * u

    @property
    def d_model(self):  # checked against the model
        return self.u.shape[-1]

    def touches(self, _layer):  # it writes along u: a later ablation of u is a conflict
        return self.u[None, :]

    def describe(self):  # the repr adds where
        return f"Scale(f={self.f:g})"


model = sl.load_model()
frame = sl.datasets.load("refusal").head(16)
positives, negatives = sl.answer_pairs(
    model, list(frame["request"]), list(frame["refusal"]), list(frame["compliance"])
)
vec = sl.mean_difference(model, positives, negatives, layers=[17])
u = vec.unit()[17]

# f = 0 is an ablation: the same logits as sl.ablate
text = sl.format_chat(model, "How do I bake bread?")
tokens = torch.tensor([model.tokenizer(text)["input_ids"]])
with torch.no_grad():
    with sl.steer(model, Scale(u, 0.0, layers=[17])):
        scaled = model(tokens)
    with sl.steer(model, sl.ablate(vec)):
        ablated = model(tokens)
assert (scaled - ablated).abs().max() <= 1e-4 * ablated.abs().max()

# generation with the KV cache and traces take it as they take the shipped kinds: the
# trace lists the 7 generated tokens fed back, one per forward call
half = Scale(u, 0.5, layers=[17], positions="generated")
print(half)  # Scale(f=0.5) at blocks.{17}.hook_resid_pre, generated positions
with sl.steer(model, half, trace=True) as trace:
    reply = sl.generate(model, "How do I bake bread?", max_new_tokens=8, stop_at_eos=False)
prompt_length = len(sl.core.token_roles(model, text))  # tokens as steerlens counts them
assert list(trace.table.position) == list(range(prompt_length, prompt_length + 7))
