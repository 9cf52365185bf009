"""``steerlens serve``: vLLM's OpenAI-compatible server, steered per request.

The server is vLLM's own (its launcher, arguments and routes), started with steerlens's
worker extension and one ASGI middleware. A request steers through a ``steerlens`` field
(``extra_body={"steerlens": [...]}`` in the ``openai`` client; ``spec`` has the fields). The
middleware turns it into the intervention payload and cache salt the engine reads
(``vllm_xargs`` and ``cache_salt``, vLLM's public request fields), or answers HTTP 400
naming the bad field: a malformed spec is never served unsteered. A client cannot send a
payload itself (it would be unpickled in the engine): ``vllm_xargs`` keys of steerlens's are
refused. ``sl.when`` is not served (it needs a reading pass before generation; use
``sl.vllm.generate``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from functools import cache
from typing import Any

from ..core.errors import SteerlensError
from ..core.tokens import encode
from ..core.vector import SteeringVector
from . import payload
from .engine import (
    CPU_KV_CACHE,
    WORKER_EXTENSION,
    EngineConfig,
    EngineModel,
    architecture,
    fixed_cpu_kv_cache,
    model_folder,
)
from .requests import check_entry, check_rules
from .spec import SpecError, parse

VECTORS_ENV = "STEERLENS_SERVE_VECTORS"  #: JSON {name: file} for the server's processes
MODEL_ENV = "STEERLENS_SERVE_MODEL"  #: the model folder, for the middleware's checks


@cache
def served() -> tuple[EngineModel, dict[str, SteeringVector]]:
    """The model and vectors this server process steers with (read once)."""
    from transformers import AutoTokenizer

    folder = os.environ[MODEL_ENV]
    found, config = architecture(folder)
    cfg = EngineConfig(int(config.num_hidden_layers), int(config.hidden_size), 1 << 30, folder)
    model = EngineModel(folder, found, cfg, AutoTokenizer.from_pretrained(folder))
    files = json.loads(os.environ.get(VECTORS_ENV, "{}"))
    return model, {name: SteeringVector.load(path) for name, path in files.items()}


def rewrite(body: dict[str, Any]) -> dict[str, Any]:
    """The request with its ``steerlens`` field turned into payload and salt."""
    xargs = body.get("vllm_xargs") or {}
    taken = sorted({payload.KEY, payload.TAG} & set(xargs))
    if taken:
        raise SpecError(f"vllm_xargs.{taken[0]}", "is set by steerlens serve from 'steerlens'")
    if "steerlens" not in body:
        return body
    model, vectors = served()
    body = dict(body)
    entries = parse(body.pop("steerlens"), vectors)
    if not entries:
        return body
    for index, entry in enumerate(entries):
        try:
            check_entry(model, entry, f"steerlens[{index}]")
        except SteerlensError as error:
            raise SpecError(f"steerlens[{index}]", str(error)) from error
    _check_positions(model, entries, body)
    carried = payload.encode(entries)
    identity = json.dumps(body, sort_keys=True)
    salt = payload.salt(carried, entries, identity)
    if body.get("cache_salt"):
        salt = hashlib.sha256(f"{body['cache_salt']}|{salt}".encode()).hexdigest()
    return {**body, "vllm_xargs": {**xargs, payload.KEY: carried}, "cache_salt": salt}


def _prompt_ids(model: EngineModel, body: dict[str, Any]) -> list[int]:
    """The prompt's token ids as steerlens would encode them (chat template applied)."""
    if "messages" in body:
        text = model.tokenizer.apply_chat_template(
            body["messages"],
            tokenize=False,
            add_generation_prompt=body.get("add_generation_prompt", True),
        )
    else:
        text = body.get("prompt")
    if not isinstance(text, str):
        raise SpecError("prompt", "positions other than 'all' need one text prompt")
    return encode(model, text, "prompt")


def _check_positions(model: EngineModel, entries: list[Any], body: dict[str, Any]) -> None:
    """Rules checked against the prompt, as ``sl.vllm.generate`` checks them."""
    if all(entry.positions.kind == "all" for entry in entries):
        return
    try:
        ids = _prompt_ids(model, body)
    except SteerlensError:
        raise
    except Exception as error:  # noqa: BLE001 - any template failure is the request's
        raise SpecError(
            "messages", f"cannot render the prompt to place positions ({error})"
        ) from error
    for index, entry in enumerate(entries):
        try:
            check_rules(model, [entry], ids, 0)
        except SteerlensError as error:
            raise SpecError(f"steerlens[{index}].positions", str(error)) from error


class SteerlensMiddleware:
    """ASGI middleware: rewrites JSON POST bodies (``rewrite``), 400 on a bad spec."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        json_body = headers.get(b"content-type", b"").startswith(b"application/json")
        if scope["type"] != "http" or scope["method"] != "POST" or not json_body:
            await self.app(scope, receive, send)
            return
        raw = await _read(receive)
        try:
            body = json.loads(raw or b"{}")
            new = rewrite(body) if isinstance(body, dict) else body
        except json.JSONDecodeError:
            new = None  # vLLM answers malformed JSON itself
        except SpecError as error:
            await _bad_request(send, error)
            return
        if new is not None and new is not body:
            raw = json.dumps(new).encode()
        scope = dict(scope)
        scope["headers"] = [
            (k, str(len(raw)).encode() if k == b"content-length" else v)
            for k, v in scope.get("headers") or []
        ]
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _read(receive: Any) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _bad_request(send: Any, error: SpecError) -> None:
    content = {
        "error": {
            "message": str(error),
            "type": "BadRequestError",
            "param": error.field,
            "code": 400,
        }
    }
    raw = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """steerlens's own options; the rest go to vLLM's server parser."""
    parser = argparse.ArgumentParser(
        prog="steerlens serve",
        description="vLLM's OpenAI-compatible server with steerlens vectors; any other "
        "option is vLLM's (`vllm serve --help`).",
    )
    parser.add_argument("--model", default=None, help="folder, .gguf or name (default model)")
    parser.add_argument(
        "--vector", action="append", default=[], metavar="NAME=FILE", help="a vector file"
    )
    return parser.parse_known_args(argv)


def vector_files(pairs: list[str]) -> dict[str, str]:
    """``{name: file}`` from ``NAME=FILE`` options, each file loaded once to check it."""
    files = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SteerlensError(f"--vector: expected NAME=FILE, got {pair!r}")
        SteeringVector.load(path)
        files[name] = os.path.abspath(path)
    return files


def main(argv: list[str]) -> None:
    """Run the server until interrupted."""
    import uvloop
    from vllm.entrypoints.launchers.api_server.entry import (
        build_and_serve,
        build_async_engine_client,
    )
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.entrypoints.launchers.launcher import setup_server
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    ours, rest = parse_args(argv)
    folder = model_folder(ours.model)
    found, config = architecture(folder)
    files = vector_files(ours.vector)
    for name, path in files.items():
        size = SteeringVector.load(path).d_model
        if size != config.hidden_size:
            raise SteerlensError(
                f"--vector {name}: d_model {size} does not match the model's {config.hidden_size}"
            )
    if not any(arg == "--dtype" or arg.startswith("--dtype=") for arg in rest):
        rest = ["--dtype", "float32", *rest]  # as sl.vllm.load (vLLM's "auto" is bf16 on CPU)
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(["--model", folder, *rest])
    if args.worker_extension_cls or getattr(args, "speculative_config", None):
        raise SteerlensError("serve: worker extensions and speculative decoding cannot steer")
    given = {arg.lstrip("-").split("=")[0].replace("-", "_") for arg in rest}
    if fixed_cpu_kv_cache(given):
        args.kv_cache_memory_bytes = CPU_KV_CACHE
    args.enforce_eager = True
    args.worker_extension_cls = WORKER_EXTENSION
    args.middleware = [*args.middleware, "steerlens.vllm.serve.SteerlensMiddleware"]
    validate_parsed_serve_args(args)
    os.environ[MODEL_ENV] = folder
    os.environ[VECTORS_ENV] = json.dumps(files)

    async def run() -> None:
        listen_address, sock = setup_server(args, reuse_port=False)
        async with build_async_engine_client(args) as engine_client:
            await engine_client.collective_rpc("steerlens_install", args=(found,))
            shutdown = await build_and_serve(engine_client, listen_address, sock, args)
        try:
            await shutdown
        finally:
            sock.close()

    uvloop.run(run())
