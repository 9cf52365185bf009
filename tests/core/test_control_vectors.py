"""llama.cpp control-vector export/import: format read back independently, layer mapping."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch

import steerlens as sl
from steerlens import SteerlensError
from steerlens.core.control_vectors import gguf_index_to_tl_layer, tl_layer_to_gguf_index


def vector(site="resid_pre", layers=(2, 5)):
    gen = torch.Generator().manual_seed(0)
    return sl.SteeringVector(
        {layer: torch.randn(16, generator=gen) for layer in layers}, site=site, model_name="m"
    )


def test_round_trip(tmp_path):
    vec = vector()
    vec.to_gguf(tmp_path / "v.gguf")
    back = sl.SteeringVector.from_gguf(tmp_path / "v.gguf")
    assert back.layers == [2, 5] and back.site == "resid_pre" and back.model_name == "m"
    assert all(torch.equal(back[layer], vec[layer]) for layer in vec.layers)


def test_file_layout_read_by_the_gguf_package(tmp_path):
    """Independent read: architecture, metadata keys, tensor names and shapes."""
    vector(site="resid_post", layers=(1, 3)).to_gguf(tmp_path / "v.gguf", model_hint="llama")
    reader = gguf.GGUFReader(str(tmp_path / "v.gguf"))
    field = reader.fields["general.architecture"]
    assert bytes(field.parts[-1]).decode() == "controlvector"
    assert bytes(reader.fields["controlvector.model_hint"].parts[-1]).decode() == "llama"
    assert int(reader.fields["controlvector.layer_count"].parts[-1][0]) == 2
    shapes = {t.name: (t.tensor_type, list(np.asarray(t.shape))) for t in reader.tensors}
    assert shapes == {
        "direction.1": (gguf.GGMLQuantizationType.F32, [16]),
        "direction.3": (gguf.GGMLQuantizationType.F32, [16]),
    }


@pytest.mark.parametrize(("layer", "site", "index"), [(5, "resid_post", 5), (5, "resid_pre", 4)])
def test_layer_convention(layer, site, index):
    assert tl_layer_to_gguf_index(layer, site) == index
    assert gguf_index_to_tl_layer(index, site) == layer


@pytest.mark.parametrize(("layer", "site"), [(1, "resid_pre"), (0, "resid_post"), (3, "resid_mid")])
def test_unrepresentable_sites_are_refused(tmp_path, layer, site):
    with pytest.raises(SteerlensError, match="llama.cpp"):
        vector(site=site, layers=(layer,)).to_gguf(tmp_path / "v.gguf")


def test_direction_n_is_added_to_the_output_of_hf_layer_n(tmp_path, tiny_model):
    """direction.1 read at resid_pre lands on layer 2's input = HF decoder layer 1's output."""
    vec = sl.SteeringVector({1: 3 * torch.randn(64)}, site="resid_post")
    vec.to_gguf(tmp_path / "v.gguf")
    loaded = sl.SteeringVector.from_gguf(tmp_path / "v.gguf")
    assert loaded.layers == [2]
    tokens = torch.tensor([[1, 20, 30, 40]])

    def add_to_output(_module, _args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden + vec[1]
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    layer = tiny_model.original_model.model.layers[1]
    handle = layer.register_forward_hook(add_to_output)
    try:
        with torch.no_grad():
            expected = tiny_model.original_model(tokens).logits
    finally:
        handle.remove()
    with sl.steer(tiny_model, sl.add(loaded)), torch.no_grad():
        got = tiny_model(tokens)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_bad_files(tmp_path):
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(SteerlensError, match="not a readable GGUF"):
        sl.SteeringVector.from_gguf(tmp_path / "junk.gguf")
    with pytest.raises(SteerlensError, match="no file"):
        sl.SteeringVector.from_gguf(tmp_path / "missing.gguf")
    other = gguf.GGUFWriter(str(tmp_path / "other.gguf"), "llama")
    other.add_tensor("token_embd.weight", np.zeros(4, dtype=np.float32))
    other.write_header_to_file()
    other.write_kv_data_to_file()
    other.write_tensors_to_file()
    other.close()
    with pytest.raises(SteerlensError, match="not a control vector"):
        sl.SteeringVector.from_gguf(tmp_path / "other.gguf")
