"""Training loop, evaluation, checkpoints and their errors, train_or_load reuse."""

import dataclasses

import pytest
import torch

from brevitas_models.data.synthetic import SyntheticSegmentation
from brevitas_models.errors import ModelError
from brevitas_models.nets import build
from brevitas_models.train import (
    TrainConfig,
    evaluate,
    load_checkpoint,
    load_model,
    save_checkpoint,
    train_model,
    train_or_load,
)

TINY = TrainConfig(epochs=1, batch_size=4, lr=5e-3, train_size=8, val_size=4, image_size=16, threads=1)


def test_short_training_lowers_the_loss():
    config = dataclasses.replace(TINY, train_size=32, epochs=4)
    model = build("demo", width=4)
    data = SyntheticSegmentation("train", config.train_size, config.image_size, config.data_seed)
    losses = train_model(model, data, config, progress=False)
    assert len(losses) == 32
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_training_is_deterministic(tmp_path):
    config = dataclasses.replace(TINY, train_size=16)
    first = train_or_load("demo", 4, tmp_path / "a", config, progress=False)
    torch.rand(5)  # whatever the caller did with the global generator in between
    second = train_or_load("demo", 4, tmp_path / "b", config, progress=False)
    assert second.trained and second.meta["final_loss"] == first.meta["final_loss"]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_evaluate_reports_miou_of_a_perfect_and_a_constant_model():
    data = SyntheticSegmentation("val", 4, 16)

    class Oracle(torch.nn.Module):
        def forward(self, x):
            index = next(i for i in range(len(data)) if torch.equal(data[i][0], x[0]))
            labels = torch.stack([data[i][1] for i in range(index, index + len(x))])
            return torch.nn.functional.one_hot(labels, 6).permute(0, 3, 1, 2).float()

    assert evaluate(Oracle(), data, 6, batch_size=2)["miou"] == 1.0
    background = torch.nn.Conv2d(3, 6, 1)
    torch.nn.init.zeros_(background.weight)
    with torch.no_grad():
        background.bias.copy_(torch.tensor([1.0, 0, 0, 0, 0, 0]))
    result = evaluate(background, data, 6)
    # only background is predicted: IoU(background) = its pixel share, every other class 0
    labels = torch.stack([data[i][1] for i in range(len(data))])
    share = float((labels == 0).float().mean())
    present = len(torch.unique(labels))
    assert result["miou"] == pytest.approx(share / present)
    assert result["pixel_accuracy"] == pytest.approx(share)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = build("demo", width=3)
    data = SyntheticSegmentation("train", 8, 16)
    train_model(model, data, TINY, steps=2, progress=False)
    path = save_checkpoint(tmp_path / "m.pt", model, {"name": "demo", "width": 3, "num_classes": 6})
    loaded, meta = load_model(path, "demo")
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta["width"] == 3


def _real_checkpoint(tmp_path):
    return save_checkpoint(tmp_path / "ok.pt", build("pixel_baseline", 4), {"name": "pixel_baseline", "width": 4})


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_truncated_checkpoint(tmp_path):
    data = _real_checkpoint(tmp_path).read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="is not a readable torch file") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"hello, not a checkpoint\n", bytes(range(256)) * 4, b""],
)
def test_file_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="not a readable torch file"):
        load_checkpoint(path)


def test_torch_file_that_is_not_our_checkpoint(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ModelError, match="is not a brevitas_models.checkpoint/1 file"):
        load_checkpoint(path)
    torch.save(build("demo", 2).state_dict(), path)
    with pytest.raises(ModelError, match="is not a brevitas_models.checkpoint/1 file"):
        load_checkpoint(path)


def test_checkpoint_of_another_network(tmp_path):
    path = _real_checkpoint(tmp_path)
    with pytest.raises(ModelError, match="holds network 'pixel_baseline', not 'demo'"):
        load_model(path, "demo")


def test_checkpoint_that_does_not_fit_its_network(tmp_path):
    path = save_checkpoint(tmp_path / "x.pt", build("pixel_baseline", 4), {"name": "pixel_baseline", "width": 5})
    with pytest.raises(ModelError, match="does not fit network 'pixel_baseline'"):
        load_model(path)


def test_train_or_load_reuses_a_matching_checkpoint(tmp_path):
    first = train_or_load("pixel_baseline", 4, tmp_path, TINY, progress=False)
    assert first.trained and first.checkpoint.is_file()
    assert 0.0 <= first.meta["val"]["miou"] <= 1.0
    second = train_or_load("pixel_baseline", 4, tmp_path, TINY, progress=False)
    assert not second.trained and second.meta == first.meta
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    other = train_or_load("pixel_baseline", 4, tmp_path, dataclasses.replace(TINY, data_seed=1), progress=False)
    assert other.trained and other.meta["data_seed"] == 1


def test_train_or_load_refuses_a_corrupt_checkpoint(tmp_path):
    (tmp_path / "pixel_baseline_w4.pt").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="pixel_baseline_w4.pt is not a readable torch file"):
        train_or_load("pixel_baseline", 4, tmp_path, TINY, progress=False)


def test_class_weights_by_hand():
    import numpy as np

    from brevitas_models.train import class_weights

    labels = np.array([0, 0, 0, 1, 255, 255])  # freq 3/4, 1/4, class 2 absent
    w = class_weights(labels, 3, 1.0)
    # 1/freq = 4/3, 4, 0; mean over labelled pixels = 3/4*4/3 + 1/4*4 = 2
    assert w.tolist() == pytest.approx([2 / 3, 2.0, 0.0])
    assert class_weights(labels, 3, 0.0).tolist() == pytest.approx([1.0, 1.0, 0.0])
