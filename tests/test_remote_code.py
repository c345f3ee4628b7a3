"""The saved folder is a Hub repo: remote code flat beside the weights, loadable in a fresh offline process with
AutoModel / AutoModelForImageTextToText / AutoModelForCausalLM, under transformers 5.x and 4.57.x, each version
loading the other's folder with identical weights and outputs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mobilevideogpt.modeling import MobileVideoGPTForConditionalGeneration

from test_modeling import random_video, tiny_config, video_prompt

REPO = Path(__file__).resolve().parents[1]
AUTO_CLASSES = ("AutoModel", "AutoModelForImageTextToText", "AutoModelForCausalLM")

LOAD_AND_GENERATE = r"""
import json, sys, torch, transformers
from safetensors.torch import load_file
folder, inputs_file, out_file, resave = sys.argv[1:5]
inputs = load_file(inputs_file)
results = {"transformers": transformers.__version__}
for name in %r:
    cls = getattr(transformers, name)
    model, info = cls.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
    model.eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    results[name] = {"tokens": generated[0].tolist(), "logits": logits.tolist()}
if resave != "-":
    model.save_pretrained(resave)
json.dump(results, open(out_file, "w"))
""" % (AUTO_CLASSES,)


def run_fresh(python: Path, folder: Path, tmp_path: Path, resave: Path | None = None) -> dict:
    """Load `folder` in a new offline process that cannot see this package; return what it generated."""
    inputs, out = tmp_path / "inputs.safetensors", tmp_path / f"out-{python.parent.parent.name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HF_", "TRANSFORMERS"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    subprocess.run(
        [str(python), "-c", LOAD_AND_GENERATE, str(folder), str(inputs), str(out), str(resave or "-")],
        cwd=tmp_path, env=env, check=True, timeout=600,
    )
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny random model saved by this process, its inputs, and the in-process reference outputs."""
    tmp = tmp_path_factory.mktemp("remote")
    torch.manual_seed(0)
    model = MobileVideoGPTForConditionalGeneration(tiny_config()).eval()
    folder = tmp / "model"
    model.save_pretrained(folder)
    videos, context = random_video(3)
    inputs = {
        "input_ids": torch.tensor([video_prompt(model.config, [5, 6, 7], [8, 9])]),
        "pixel_values_videos": videos,
        "pixel_values_context": context,
    }
    save_file(inputs, tmp / "inputs.safetensors")
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    tokens = model.generate(**inputs, max_new_tokens=8, do_sample=False)[0].tolist()
    return tmp, folder, model, tokens, logits


def check(results: dict, tokens: list[int], logits: torch.Tensor) -> None:
    for name in AUTO_CLASSES:
        assert results[name]["tokens"] == tokens, name
        assert torch.allclose(torch.tensor(results[name]["logits"]), logits, atol=1e-5), name


def test_folder_is_flat_remote_code(saved):
    _, folder, *_ = saved
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "configuration_mobilevideogpt.py", "modeling_mobilevideogpt.py"} <= files
    config = json.loads((folder / "config.json").read_text())
    assert set(AUTO_CLASSES) | {"AutoConfig"} <= set(config["auto_map"])
    source = (folder / "modeling_mobilevideogpt.py").read_text()
    assert "from .configuration_mobilevideogpt import" in source and "mobilevideogpt." not in source.split('"""', 2)[2]


def test_fresh_offline_process_main_version(saved):
    tmp, folder, _, tokens, logits = saved
    check(run_fresh(Path(sys.executable), folder, tmp), tokens, logits)


def test_cross_version_folders_load_with_identical_weights_and_outputs(saved, compat_python):
    tmp, folder, model, tokens, logits = saved
    python = compat_python
    resaved = tmp / "saved-by-compat"
    results = run_fresh(python, folder, tmp, resave=resaved)
    import transformers

    assert results["transformers"] != transformers.__version__
    check(results, tokens, logits)  # the other version loads this version's folder

    original = load_file(folder / "model.safetensors")
    other = load_file(resaved / "model.safetensors")
    assert original.keys() == other.keys()
    assert all(torch.equal(original[k], other[k]) for k in original)
    check(run_fresh(Path(sys.executable), resaved, tmp), tokens, logits)  # and this version loads the other's


def test_remote_code_needs_only_torch_and_transformers():
    """transformers refuses to load remote code whose imports (outside try blocks) are not installed: optional
    decoders and kernels must sit in try blocks. numpy is allowed: transformers itself requires it."""
    from transformers.dynamic_module_utils import get_imports

    files = sorted((REPO / "modeling").glob("*_mobilevideogpt.py")) + sorted((REPO / "processing").glob("*_mobilevideogpt.py"))
    assert len(files) == 4
    for path in files:
        third_party = {name for name in get_imports(path) if name not in sys.stdlib_module_names}
        assert third_party <= {"torch", "transformers", "numpy"}, (path.name, third_party)
