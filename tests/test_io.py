"""Saving and loading: exact round trips, atomic writes, and refusing damaged files."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from seed import DOSAGE, FITTED, FORMULA

import chainrule as cr
from chainrule import nn
from chainrule.errors import ChainruleError
from chainrule.io import atomic_write, load, save

pytest.importorskip("safetensors")


def _same_parameters(a, b):
    named_a, named_b = list(a.named_parameters()), list(b.named_parameters())
    assert [n for n, _ in named_a] == [n for n, _ in named_b]
    for (name, p), (_, q) in zip(named_a, named_b, strict=True):
        assert p.dtype == q.dtype and p.shape == q.shape, name
        np.testing.assert_array_equal(p.data, q.data)  # bit for bit
        assert p.frozen == q.frozen, name


@pytest.mark.parametrize(
    "model",
    [
        nn.MLP([1, 2, 1], activation="softplus", seed=3),
        nn.MLP([64, 128, 64, 10], seed=1),
        nn.MLP([2, 5, 1], activation="tanh", output_activation="sigmoid", dtype="float32"),
        nn.Sequential(nn.Linear(2, 3, seed=1), nn.Tanh(), nn.Linear(3, 1, bias=False)),
    ],
    ids=["seed-mlp", "digits-mlp", "float32", "sequential"],
)
def test_layer_models_round_trip_exactly(tmp_path, model):
    model.parameters()[0].data[0, 0] = 1 / 3  # a value with every bit set
    path = tmp_path / "model.safetensors"
    assert save(model, path) == path
    again = load(path)
    assert type(again) is type(model) and again.config() == model.config()
    _same_parameters(model, again)
    x = np.linspace(-1, 1, 2 * model.parameters()[0].shape[0]).reshape(2, -1)
    np.testing.assert_array_equal(again(x).data, model(x).data)


def test_formula_round_trips_exactly_with_frozen_parameters(tmp_path):
    model = cr.Formula(FORMULA, inputs=["dosage"], values={**FITTED, "b3": 0.1 + 0.2})
    model.freeze()
    model.unfreeze("b3")
    path = tmp_path / "seed.safetensors"
    save(model, path)
    again = load(path)
    assert isinstance(again, cr.Formula)
    assert again.config() == model.config() and again.inputs == ("dosage",)
    _same_parameters(model, again)
    assert [n for n, p in again.named_parameters() if not p.frozen] == ["b3"]
    data = {"dosage": np.array(DOSAGE)}
    np.testing.assert_array_equal(again(data).data, model(data).data)


def test_the_file_is_safetensors_with_the_architecture_in_its_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    save(nn.MLP([1, 2, 1], activation="softplus"), path)
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    meta = header["__metadata__"]
    assert json.loads(meta["config"])["sizes"] == [1, 2, 1]
    assert header["hidden.weight"]["dtype"] == "F64" and header["hidden.weight"]["shape"] == [1, 2]
    from safetensors.numpy import load as plain_load

    assert set(plain_load(raw)) == {"hidden.weight", "hidden.bias", "output.weight", "output.bias"}


def test_load_into_a_given_model(tmp_path):
    path = tmp_path / "m.safetensors"
    source = nn.MLP([1, 2, 1], activation="softplus", seed=1)
    save(source, path)
    target = nn.MLP([1, 2, 1], activation="softplus", seed=2)
    target.freeze("hidden.*")
    assert load(path, model=target) is target
    np.testing.assert_array_equal(target.hidden.weight.data, source.hidden.weight.data)
    assert target.hidden.weight.frozen  # the caller's choice stays


def test_wrong_shapes_are_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save(nn.MLP([1, 2, 1]), path)
    with pytest.raises(ChainruleError, match=r"m.safetensors: hidden.weight has shape \(1, 2\)"):
        load(path, model=nn.MLP([1, 3, 1]))
    with pytest.raises(
        ChainruleError, match="missing hidden1.weight.*unexpected hidden.bias, hidden.weight"
    ):
        load(path, model=nn.MLP([1, 2, 2, 1]))


def test_a_file_whose_weights_do_not_fit_its_architecture_is_refused(tmp_path):
    from safetensors.numpy import save as raw_save

    from chainrule.io import FORMAT, _checksum

    tensors = {n: p.data for n, p in nn.MLP([1, 3, 1]).named_parameters()}
    metadata = {
        "format": FORMAT,
        "version": "1",
        "config": json.dumps(nn.MLP([1, 2, 1]).config()),
        "frozen": "[]",
        "sha256": _checksum(tensors),
    }
    path = tmp_path / "liar.safetensors"
    path.write_bytes(raw_save(tensors, metadata=metadata))
    with pytest.raises(ChainruleError, match=r"liar.safetensors: hidden.weight has shape \(1, 3\)"):
        load(path)


def test_wrong_dtype_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save(nn.MLP([1, 2, 1], dtype="float32"), path)
    with pytest.raises(ChainruleError, match="dtype float32 in the file.*needs float64"):
        load(path, model=nn.MLP([1, 2, 1]))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.safetensors"
    save(nn.MLP([2, 4, 1], seed=0), path)
    return path


@pytest.mark.parametrize("keep", [0, 3, 8, 20, -40, -8, -1])
def test_truncated_files_are_refused(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep])
    with pytest.raises(ChainruleError, match="model.safetensors"):
        load(saved)


def test_a_flipped_byte_in_the_weights_is_refused(saved):
    raw = bytearray(saved.read_bytes())
    raw[-5] ^= 0x10  # inside the last weight
    saved.write_bytes(bytes(raw))
    with pytest.raises(ChainruleError, match="model.safetensors.*checksum.*corrupted"):
        load(saved)


def test_a_flipped_byte_in_the_header_is_refused(saved):
    raw = bytearray(saved.read_bytes())
    raw[9] = ord("}")  # breaks the JSON header
    saved.write_bytes(bytes(raw))
    with pytest.raises(ChainruleError, match="model.safetensors.*corrupted"):
        load(saved)


def test_other_files_are_refused(tmp_path):
    from safetensors.numpy import save as raw_save

    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(raw_save({"w": np.zeros(2)}))
    with pytest.raises(ChainruleError, match="plain.safetensors: a safetensors file, but not"):
        load(plain)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a model at all")
    with pytest.raises(ChainruleError, match="notes.txt"):
        load(text)
    with pytest.raises(ChainruleError, match="missing.safetensors: no such file"):
        load(tmp_path / "missing.safetensors")
    with pytest.raises(ChainruleError, match="is a folder"):
        load(tmp_path)


def test_a_newer_file_version_is_refused(saved):
    raw = saved.read_bytes().replace(b'"version":"1"', b'"version":"9"')
    saved.write_bytes(raw)
    with pytest.raises(ChainruleError, match="newer chainrule"):
        load(saved)


def test_a_model_without_config_cannot_be_saved(tmp_path):
    class Line(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(1.0)

        def forward(self, x):
            return self.w * x

    with pytest.raises(ChainruleError, match="cannot save a Line: it has no config"):
        save(Line(), tmp_path / "line.safetensors")
    assert not (tmp_path / "line.safetensors").exists()


def test_missing_safetensors_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ChainruleError, match=r"pip install 'chainrule\[io\]'"):
        save(nn.MLP([1, 2, 1]), tmp_path / "m.safetensors")


def test_importing_chainrule_does_not_import_heavy_packages():
    code = (
        "import sys, chainrule, chainrule.io, chainrule.training; "
        "print([m for m in ('safetensors', 'rich', 'torch', 'sklearn', 'matplotlib') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------
# atomic_write
# ---------------------------------------------------------------------------------------


def test_atomic_write_bytes_and_text(tmp_path):
    target = tmp_path / "out.bin"
    assert atomic_write(target, b"\x00\x01") == target
    assert target.read_bytes() == b"\x00\x01"
    atomic_write(target, "b3 = 2.61 ✓\n")
    assert target.read_text(encoding="utf-8") == "b3 = 2.61 ✓\n"
    assert os.listdir(tmp_path) == ["out.bin"]  # no temporary file left


def test_atomic_write_keeps_permissions_of_an_existing_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.txt"
    atomic_write(fresh, "x")
    assert stat.S_IMODE(fresh.stat().st_mode) & 0o600 == 0o600


def test_atomic_write_writes_through_a_symbolic_link(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_an_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "model.safetensors"
    old = nn.MLP([1, 2, 1], seed=1)
    save(old, path)
    before = path.read_bytes()

    def crash(fd):
        raise failure("interrupted while writing")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt if failure is KeyboardInterrupt else ChainruleError):
        save(nn.MLP([1, 2, 1], seed=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]
    _same_parameters(load(path), old)


def test_unwritable_paths_are_named(tmp_path):
    with pytest.raises(ChainruleError, match="cannot write .*nowhere/m.safetensors: the folder"):
        save(nn.MLP([1, 2, 1]), tmp_path / "nowhere" / "m.safetensors")
    with pytest.raises(ChainruleError, match=f"cannot write {tmp_path}: it is a folder"):
        atomic_write(tmp_path, "x")
