"""The ablation machinery on a tiny budget (the real run is ``make ablation``)."""

from __future__ import annotations

import json

import pytest

from brevitas_models.ablation import VARIANTS, main, network_name, register_variants, run
from brevitas_models.errors import ModelError
from brevitas_models.nets import build
from brevitas_models.opcount import count_ops, weight_memory
from brevitas_models.train import TrainConfig

TINY = TrainConfig(epochs=1, train_size=16, val_size=8, image_size=16)


def test_tiny_ablation_writes_deterministic_tables(tmp_path):
    doc = run(tmp_path / "a", seeds=(0,), variants=("plain", "fp"), config=TINY, progress=False)
    assert set(doc["variants"]) == {"plain", "fp"}
    register_variants()
    for variant, entry in doc["variants"].items():
        model = build(network_name(variant), 16)
        report = count_ops(model, (16, 16))
        assert (entry["bops"], entry["flops"]) == (report.total.bops, report.total.flops)
        assert {k: entry[k] for k in ("params", "bits")} == weight_memory(model)
        [r] = entry["runs"]
        assert 0 <= r["miou"] <= 1 and entry["miou"] == {"mean": r["miou"], "std": 0.0,
                                                         "min": r["miou"], "max": r["miou"]}
    assert doc["variants"]["fp"]["bops"] == 0 and doc["variants"]["fp"]["speedup_vs_fp"] == 1
    assert doc["variants"]["plain"]["speedup_vs_fp"] > 1
    assert doc["variants"]["plain"]["bits"] < doc["variants"]["fp"]["bits"]
    written = json.loads((tmp_path / "a" / "ablation.json").read_text())
    assert written == json.loads(json.dumps(doc))
    table = (tmp_path / "a" / "ablation.md").read_text()
    assert "| plain |" in table and "| fp |" in table and "16x16 images" in table
    # a fresh folder trains again: the same numbers, byte for byte
    run(tmp_path / "b", seeds=(0,), variants=("plain", "fp"), config=TINY, progress=False)
    for name in ("ablation.json", "ablation.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_variants_are_the_papers_ablation():
    register_variants()
    nets = {v: build(network_name(v), 4) for v in VARIANTS}
    assert nets["plain"].mbu is None and nets["plain+att"].mbu is None
    assert nets["mbu1"].mbu.dilations == (1,) and nets["mbu4"].mbu.dilations == (1, 2, 3, 4)
    assert [nets[v].att.mode for v in ("plain", "mbu1", "mbu4")] == ["none"] * 3
    assert [nets[v].att.mode for v in ("plain+att", "mbu1+att", "mbu4+att")] == ["axial"] * 3
    assert not nets["fp"].binary and nets["fp"].mbu.dilations == (1, 2, 3, 4)


def test_bad_input(tmp_path, capsys):
    with pytest.raises(ModelError, match="unknown variant"):
        run(tmp_path, seeds=(0,), variants=("mbu9",), config=TINY, progress=False)
    with pytest.raises(ModelError, match="image size 20 must be a multiple of 8"):
        run(tmp_path, config=TrainConfig(image_size=20), progress=False)
    assert main(["--out", str(tmp_path), "--variants", "nope", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: ablation: unknown variant")
