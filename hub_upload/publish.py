"""Publishing to the Hub: `mvgpt push` (a model folder, or a PEFT adapter folder as is), `mvgpt merge-lora` and
`mvgpt push-space`.

A folder is validated before anything is uploaded: a fresh process loads it with `trust_remote_code` (processor
included) and generates a few tokens about a generated clip. The upload is one commit (`create_commit`), so a
failure leaves the repo as it was; file contents are uploaded before the commit and the Hub deduplicates them, so
re-running after an interruption sends only what is missing. The token comes from `HF_TOKEN` or the login cache
(huggingface_hub's own lookup) and is never printed or written: messages are scrubbed of it.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# The package parts a Space needs beside space/ (the Space imports `mobilevideogpt` from its own folder).
SPACE_PACKAGE_FILES = (
    "__init__.py", "chat.py", "demo.py", "tiny.py", "modeling/*.py", "processing/*.py", "training/__init__.py",
    "training/synth.py", "embedded_model/*",
)


class PublishError(RuntimeError):
    """Validation or upload failed; the message says why (and never contains the token)."""


def _scrub(text: str) -> str:
    token = get_token()
    return text.replace(token, "***") if token else text


VALIDATE = r"""
import json, os, sys
from transformers import AutoModel, AutoProcessor
folder, video = sys.argv[1:3]
if os.path.exists(os.path.join(folder, "adapter_config.json")):
    from peft import PeftConfig, PeftModel
    base = PeftConfig.from_pretrained(folder).base_model_name_or_path
    processor = AutoProcessor.from_pretrained(base, trust_remote_code=True)
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base, trust_remote_code=True), folder)
else:
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
messages = [{"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": "What happens?"}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
print(json.dumps({"new_tokens": out.shape[1] - inputs["input_ids"].shape[1]}))
"""


def validate_folder(folder: Path, timeout: float = 1800) -> None:
    """Load `folder` in a fresh process as a user would and generate; raise PublishError if that fails."""
    from ..tiny import write_video

    if not (folder / "config.json").exists() and not (folder / "adapter_config.json").exists():
        raise PublishError(f"{folder} has neither config.json nor adapter_config.json: not a model folder")
    with tempfile.TemporaryDirectory() as scratch:
        video = write_video(Path(scratch) / "check.mp4", num_frames=24, width=96, height=64, fps=8)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["HF_MODULES_CACHE"] = str(Path(scratch) / "modules")
        try:
            result = subprocess.run(
                [sys.executable, "-c", VALIDATE, str(folder), str(video)],
                cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise PublishError(f"validation of {folder} did not finish within {timeout:.0f} s") from error
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise PublishError(_scrub(f"{folder} does not load and generate in a fresh process:\n{tail}"))


def folder_files(folder: Path) -> list[Path]:
    """The files to upload, relative to `folder` (no hidden files, caches or bytecode)."""
    return sorted(
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(folder).parts)
    )


def _adapter_card(folder: Path) -> None:
    """An adapter folder records its base model in its card's metadata (written if the folder has no card)."""
    card = folder / "README.md"
    if card.exists():
        return
    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    card.write_text(
        f"---\nbase_model: {base}\nlibrary_name: peft\npipeline_tag: video-text-to-text\ntags:\n- mobilevideogpt\n"
        f"- lora\n---\n\n# LoRA adapter for {base}\n\n```python\nfrom peft import PeftModel\nfrom transformers import "
        f"AutoModel\n\nbase = AutoModel.from_pretrained(\"{base}\", trust_remote_code=True)\nmodel = "
        f"PeftModel.from_pretrained(base, \"<this repo>\")\n```\n"
    )


def _commit(
    uploads: dict[str, Path], repo_id: str, repo_type: str, message: str, private: bool, revision: str | None,
    dry_run: bool, space_sdk: str | None = None, variables: dict[str, str] | None = None,
) -> str:
    """Upload `uploads` (path in repo -> local file) as ONE commit, or only describe it when `dry_run`."""
    lines = [
        f"{'Would upload' if dry_run else 'Uploading'} to {repo_type} repo {repo_id}"
        f" ({'private' if private else 'public'}), revision {revision or 'main'}, in one commit {message!r}:"
    ]
    lines += [f"  {path}  ({local.stat().st_size:,} bytes)" for path, local in sorted(uploads.items())]
    lines += [f"  variable {key}={value}" for key, value in (variables or {}).items()]
    if dry_run:
        return "\n".join(lines)
    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk)
        if revision:
            api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local)) for path, local in uploads.items()]
        info = api.create_commit(
            repo_id, operations=operations, commit_message=message, repo_type=repo_type, revision=revision
        )
        for key, value in (variables or {}).items():
            api.add_space_variable(repo_id, key, value)
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        hint = " (check the token: HF_TOKEN or `hf auth login`, and write access)" if status in (401, 403) else ""
        raise PublishError(_scrub(f"the Hub refused the upload to {repo_id}{hint}: {error}")) from error
    except Exception as error:  # transport errors (httpx's ConnectError, timeouts, offline mode) share no base class
        raise PublishError(_scrub(f"could not reach the Hub to upload {repo_id}: {error}")) from error
    return "\n".join(lines + [f"Committed: {info.commit_url}"])


def push(
    folder: Path, repo_id: str, private: bool = False, revision: str | None = None, dry_run: bool = False
) -> str:
    """Validate `folder` (a model or a PEFT adapter) and upload it in one commit; returns the report."""
    folder = folder.resolve()
    if (folder / "adapter_config.json").exists():
        _adapter_card(folder)
    validate_folder(folder)
    uploads = {str(path): folder / path for path in folder_files(folder)}
    return _commit(uploads, repo_id, "model", "Upload Mobile-VideoGPT", private, revision, dry_run)


def merge_lora(adapter: Path, output: Path, base: str | None = None) -> Path:
    """Merge a PEFT LoRA adapter into its base model and write a full model folder (remote code and processor
    included) to `output`."""
    if output.exists() and any(output.iterdir()):
        raise PublishError(f"{output} exists and is not empty: choose a new --output folder")
    write_merged(adapter, output, base)
    return output


def write_merged(adapter: Path, output: Path, base: str | None = None) -> None:
    """Writes `base` (default: the adapter's base model) with the adapter merged in, and its processor, to `output`."""
    try:
        from peft import PeftConfig, PeftModel
    except ImportError as error:
        raise PublishError("merging a LoRA adapter needs PEFT: pip install 'mobilevideogpt[train]'") from error
    from transformers import AutoModel, AutoProcessor

    base = base or PeftConfig.from_pretrained(adapter).base_model_name_or_path
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base, trust_remote_code=True), adapter)
    model.merge_and_unload().save_pretrained(output)
    AutoProcessor.from_pretrained(base, trust_remote_code=True).save_pretrained(output)


def push_space(
    repo_id: str, model_id: str, private: bool = False, dry_run: bool = False, space_dir: Path | None = None
) -> str:
    """Upload space/ and the package files it imports as a Gradio Space whose MVGPT_MODEL is `model_id`."""
    space_dir = space_dir or PACKAGE_ROOT / "space"
    if not (space_dir / "app.py").exists():
        raise PublishError(f"{space_dir}/app.py not found: push-space runs from a source checkout of the project")
    uploads = {str(path): space_dir / path for path in folder_files(space_dir)}
    for pattern in SPACE_PACKAGE_FILES:
        for local in sorted(PACKAGE_ROOT.glob(pattern)):
            uploads[f"mobilevideogpt/{local.relative_to(PACKAGE_ROOT)}"] = local
    return _commit(
        uploads, repo_id, "space", "Upload Mobile-VideoGPT demo", private, None, dry_run, space_sdk="gradio",
        variables={"MVGPT_MODEL": model_id},
    )
