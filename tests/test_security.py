"""Hostile input: a name read from a weights file resolves only in the model registry.

A weights file (safetensors header or ``model.json`` sidecar) naming ``os:system`` with a
``command`` config ran that command through every loading path before the fix. Each test
below hands such a file to one path and checks the run is refused with one line naming the
file, and that the command never ran.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from isplab.cli import app
from isplab.errors import InvalidInputError
from isplab.io import write_image
from isplab.models import create_model, load_model, load_weights, resolve, save_weights

runner = CliRunner()


def hostile(path: Path, marker: Path, *, sidecar: bool = False) -> Path:
    """A safetensors file whose model record names ``os:system`` (in its header, or in a
    sidecar beside a header that names nothing)."""
    record = json.dumps({"name": "os:system", "config": {"command": f"touch {marker}"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.zeros(1)}, str(path), metadata=None if sidecar else {"isplab": record})
    if sidecar:
        path.with_suffix(".json").write_text(record)
    return path


def plain(text: str) -> str:
    """CLI output without rich's box drawing and without any white space (rich wraps long
    paths anywhere)."""
    return re.sub(r"[\s\u2500-\u257f]", "", text)


def refused(res, marker: Path, path: Path) -> None:
    assert res.exit_code == 2, res.output
    assert not marker.exists(), "the weights file ran a command"
    assert "Traceback" not in res.output and res.exception is None or \
        isinstance(res.exception, SystemExit), res.output
    text = plain(res.output)
    assert "notinisplab'sregistry" in text and path.name in text, res.output


@pytest.fixture
def sample_raw(tmp_path) -> Path:
    res = runner.invoke(app, ["develop", "--sample", "-o", str(tmp_path / "s"), "-q"])
    assert res.exit_code == 0, res.output
    return tmp_path / "s" / "isplab_sample_astronaut.dng"


@pytest.mark.parametrize("how", ["file", "sidecar", "run-folder", "checkpoint"])
def test_develop_refuses_a_weights_file_that_names_code(tmp_path, sample_raw, how):
    marker = tmp_path / "pwned"
    if how == "file":
        spec = hostile(tmp_path / "evil.safetensors", marker)
    elif how == "sidecar":
        spec = hostile(tmp_path / "evil.safetensors", marker, sidecar=True)
    elif how == "run-folder":
        hostile(tmp_path / "run" / "model.safetensors", marker)
        spec = tmp_path / "run"
    else:
        hostile(tmp_path / "run" / "checkpoints" / "best" / "model.safetensors", marker)
        spec = tmp_path / "run" / "checkpoints" / "best"
    res = runner.invoke(app, ["develop", str(sample_raw), "-o", str(tmp_path / "out"),
                              "--isp", str(spec)])
    refused(res, marker, Path("model.safetensors") if "folder" in how or how == "checkpoint"
            else Path(spec))


def test_evaluate_refuses_a_weights_file_that_names_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = hostile(tmp_path / "evil.safetensors", marker)
    res = runner.invoke(app, ["evaluate", "-m", str(evil), "-p", "demosaic", "--limit", "1"])
    refused(res, marker, evil)


def test_export_refuses_a_weights_file_that_names_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = hostile(tmp_path / "evil.safetensors", marker, sidecar=True)
    res = runner.invoke(app, ["export", str(evil), "-o", str(tmp_path / "m.onnx")])
    refused(res, marker, evil)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("pipeline", ["mdie", "mpse"])
def test_enhance_refuses_a_weights_file_that_names_code(tmp_path, pipeline):
    marker = tmp_path / "pwned"
    evil = hostile(tmp_path / "evil.safetensors", marker)
    write_image(tmp_path / "in.png", torch.rand(1, 3, 32, 32))
    res = runner.invoke(app, ["enhance", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"),
                              "--pipeline", pipeline, "--model", str(evil)])
    refused(res, marker, evil)


def test_library_loaders_never_import_a_name_from_a_file(tmp_path):
    marker = tmp_path / "pwned"
    evil = hostile(tmp_path / "evil.safetensors", marker)
    for load in (load_model, resolve):
        with pytest.raises(InvalidInputError, match="not in isplab's registry"):
            load(evil)
    with pytest.raises(InvalidInputError, match="not in isplab's registry"):
        create_model("os:system", command=f"touch {marker}")
    assert not marker.exists()


def test_recipes_may_still_build_their_own_code_explicitly(tmp_path):
    """A recipe is a program the user chose to run: ``allow_import`` builds its model."""
    model = create_model("tests.train_toys:tiny_isp", allow_import=True, width=4)
    path = save_weights(model, tmp_path / "own.safetensors")
    with pytest.raises(InvalidInputError, match="not in isplab's registry"):
        load_model(path)  # the file alone never imports it
    again = load_weights(create_model("tests.train_toys:tiny_isp", allow_import=True, width=4),
                         path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values(), strict=True))


def test_bad_records_are_one_clear_error(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"isplab": "[1, 2]"})
    with pytest.raises(InvalidInputError, match="not a JSON object"):
        load_model(path)
    save_file({"w": torch.zeros(1)}, str(path), metadata={"isplab": "{not json"})
    with pytest.raises(InvalidInputError, match="unreadable model record"):
        load_model(path)
    path.write_bytes(b"\x00" * 20)
    with pytest.raises(InvalidInputError, match="w.safetensors"):
        load_model(path)
