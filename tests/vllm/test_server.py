"""``steerlens serve`` on localhost, asked through the ``openai`` client: steered replies
equal ``sl.generate`` under ``sl.steer`` token for token, unsteered ones plain ``sl.generate``
(float32: the server defaults to it as ``sl.vllm.load`` does), and a
bad spec gets HTTP 400 naming its field (never an unsteered reply)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import steerlens as sl
from tests.vllm.helpers import cut, direction, reference

QUESTION = "How do I bake bread?"
N_NEW = 10
EOS = 2  # SmolLM2's <|im_end|>


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vector_file(tmp_path_factory):
    vec = sl.SteeringVector({8: direction(576, 0), 12: direction(576, 1)}, site="resid_pre")
    path = tmp_path_factory.mktemp("vectors") / "rnd.safetensors"
    vec.save(path)
    return path


@pytest.fixture(scope="module")
def client(vector_file, tmp_path_factory):
    """The server in a subprocess (its own engine), and an ``openai`` client for it."""
    import openai

    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        str(Path(sys.executable).parent / "steerlens"),
        "serve",
        "--vector",
        f"rnd={vector_file}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "512",
        "--block-size",
        "32",
    ]  # the KV cache: steerlens serve's fixed CPU default (vLLM's would reserve 92% of RAM)
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    try:
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", timeout=120)
        deadline = time.time() + 400
        while True:
            try:
                name = api.models.list().data[0].id
                break
            except openai.APIConnectionError:
                if server.poll() is not None or time.time() > deadline:
                    tail = log.read_text()[-3000:]
                    raise RuntimeError(f"steerlens serve did not start:\n{tail}") from None
                time.sleep(2)
        yield api, name
    finally:
        server.terminate()
        server.wait(timeout=60)


def ask(client, steer=None, **extra):
    """The reply's token ids (vLLM's ``return_token_ids``), cut at end-of-sequence."""
    api, name = client
    body = {} if steer is None else {"steerlens": steer}
    reply = api.chat.completions.create(
        model=name,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=N_NEW,
        temperature=0.0,
        extra_body={**body, "return_token_ids": True, **extra},
    )
    return cut(reply.choices[0].model_extra["token_ids"], EOS)


def test_steered_and_unsteered_replies(client, default_model, vector_file):
    vec = sl.SteeringVector.load(vector_file)
    spec = [
        {"vector": "rnd", "kind": "add", "coeff": 8.0, "positions": "generated", "layers": [8]},
        {
            "vector": "rnd",
            "kind": "clamp",
            "value": 2.0,
            "layers": [12],
            "positions": "instruction",
        },
    ]
    steered = [
        sl.add(vec, 8.0, positions="generated", layers=[8]),
        sl.clamp(vec, 2.0, layers=[12], positions="instruction"),
    ]
    expected = reference(default_model, [QUESTION], steered, N_NEW)[0]
    plain = reference(default_model, [QUESTION], [], N_NEW)[0]
    assert expected != plain
    assert ask(client, spec) == expected
    assert ask(client) == plain  # after a steered request with the same prompt
    assert ask(client, spec) == expected  # and again, from the (salted) prefix cache


@pytest.mark.parametrize(
    ("steer", "extra", "field"),
    [
        ([{"vector": "nope", "kind": "add"}], {}, "steerlens[0].vector"),
        ([{"vector": "rnd", "kind": "shift"}], {}, "steerlens[0].kind"),
        ([{"vector": "rnd", "kind": "add", "coeff": "big"}], {}, "steerlens[0].coeff"),
        ([{"vector": "rnd", "kind": "add", "value": 1.0}], {}, "steerlens[0].value"),
        ([{"vector": "rnd", "kind": "add", "layers": [99]}], {}, "steerlens[0].layers"),
        ([{"vector": "rnd", "kind": "add", "positions": [900]}], {}, "steerlens[0].positions"),
        ([{"vector": "rnd", "kind": "add", "positions": "middle"}], {}, "steerlens[0].positions"),
        ([{"kind": "add"}], {}, "steerlens[0].vector"),
        ([{"vector": "rnd", "kind": "add", "coef": 4.0}], {}, "steerlens[0].coef"),
        ({"vector": "rnd"}, {}, "steerlens"),
        (None, {"vllm_xargs": {"steerlens": "payload"}}, "vllm_xargs.steerlens"),
    ],
)
def test_bad_specs_get_400_naming_the_field(client, steer, extra, field):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, steer, **extra)
    assert caught.value.body["param"] == field, caught.value.body
    assert field.split(".")[-1].split("[")[0] in caught.value.body["message"]
