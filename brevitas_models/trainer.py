"""Training that scales: one loop for one CPU, one GPU, or many through ``torchrun``.

``fit(model, dataset, options)`` trains for ``options.steps`` optimizer steps (Adam, cosine
decay, class-weighted cross entropy ignoring 255):

* Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group (NCCL on
  GPUs, gloo on CPUs), wraps the model in ``DistributedDataParallel`` and splits every epoch
  with a ``DistributedSampler``; ``batch_size`` is per process. Rank 0 alone shows progress
  and writes checkpoints; at the end every rank's parameter checksum is gathered and must be
  equal (``ranks_in_step`` in the result).
* Mixed precision (``amp``): on CUDA only, autocast float16 with a gradient scaler, for
  training; evaluation and export run the float32 model.
* Resume: every ``checkpoint_every`` steps and at the end, ``<out>/last.pt`` holds the model,
  optimizer, schedule, scaler and step; ``resume=True`` continues from it, skipping the
  batches of the interrupted epoch that were already used, so a resumed run takes the same
  steps as an uninterrupted one. ``stop_at`` ends the run after that step (as a preempted
  job would), with its state saved.
* Two-stage training: ``init_from_twin(student, twin)`` starts the binary network from the
  trained full-precision twin's weights (stage one trains the twin).
* Distillation: ``teacher`` (the full-precision twin, frozen) gives soft targets; the loss is
  ``(1 - w) CE + w T^2 KL(softmax(t / T) || softmax(s / T))`` per pixel, with ``w`` either
  constant or decaying linearly to 0 over the run (``distill_schedule``), the pixels weighted
  by their label's class weight if ``distill_class_weighted``; ``feature_weight`` adds
  attention transfer from the teacher's batch-norm outputs to the student's of the same name
  (``feature_loss``). ``label_smoothing`` goes to the cross entropy.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from brevitas_models.data.common import IGNORE_INDEX
from brevitas_models.errors import ModelError

RESUME_FORMAT = "brevitas_models.resume/1"
SCHEDULES = ("constant", "decay")


@dataclass(frozen=True)
class FitOptions:
    steps: int = 300
    batch_size: int = 8
    lr: float = 5e-3
    seed: int = 0
    amp: bool = True
    checkpoint_every: int = 100
    out: str | None = None
    resume: bool = False
    stop_at: int | None = None
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    distill_schedule: str = "constant"
    distill_class_weighted: bool = False
    feature_weight: float = 0.0
    label_smoothing: float = 0.0
    progress: bool = True


@dataclass
class FitResult:
    losses: list[float]
    step: int
    world_size: int
    ranks_in_step: bool
    stopped: bool


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def _device(local_rank: int) -> torch.device:
    return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                 labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise ``T^2 KL(teacher || student)`` at temperature ``T``, over labelled pixels;
    ``weights`` (per class): each pixel weighs its label's weight, as in the cross entropy."""
    log_s = F.log_softmax(student / temperature, 1)
    p_t = F.softmax(teacher / temperature, 1)
    kl = (p_t * (torch.log(p_t.clamp_min(1e-12)) - log_s)).sum(1)
    valid = labels != IGNORE_INDEX
    if not valid.any():
        return kl.sum() * 0.0
    pixel = torch.ones_like(kl[valid]) if weights is None else weights[labels[valid]]
    return temperature**2 * (pixel * kl[valid]).sum() / pixel.sum()


def attention_map(x: torch.Tensor) -> torch.Tensor:
    """Zagoruyko and Komodakis' spatial attention of an N x C x H x W map: the channel mean of
    ``x^2``, flattened and L2-normalised per sample."""
    return F.normalize(x.pow(2).mean(1).flatten(1), dim=1)


def feature_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    """Attention transfer: mean over the maps of both ``||a_s - a_t||^2`` (batch mean)."""
    terms = [(attention_map(student[k]) - attention_map(teacher[k])).pow(2).sum(1).mean() for k in student]
    return torch.stack(terms).mean()


def _record_batch_norms(student: nn.Module, teacher: nn.Module) -> tuple[dict, dict, list]:
    """Forward hooks on the batch norms the two networks share by name: each forward leaves
    their outputs (pre-activation maps) in the returned dicts (student's, teacher's); the
    list holds the hooks' handles."""
    maps: tuple[dict, dict] = ({}, {})
    handles = []
    norms = [{n: m for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
             for net in (student, teacher)]
    for name in norms[0].keys() & norms[1].keys():
        for store, module in zip(maps, (norms[0][name], norms[1][name])):
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, store=store, name=name: store.__setitem__(name, out)))
    return *maps, handles


def _checksum(model: nn.Module) -> float:
    return float(sum(p.detach().double().sum().item() for p in model.parameters()))


def fit(model: nn.Module, dataset: Dataset, options: FitOptions, *,
        weights: torch.Tensor | None = None, teacher: nn.Module | None = None,
        meta: dict[str, Any] | None = None) -> FitResult:
    """Train ``model`` in place (module docstring). ``meta`` goes into the resume state."""
    if options.distill_schedule not in SCHEDULES:
        raise ModelError(f"distill schedule must be one of {SCHEDULES}, not {options.distill_schedule!r}")
    if options.steps <= 0:
        raise ModelError(f"training: --steps must be positive, not {options.steps}")
    rank, world, local_rank = distributed()
    device = _device(local_rank)
    torch.manual_seed(options.seed)
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    model.train()
    step, losses = 0, []
    last = Path(options.out) / "last.pt" if options.out else None
    state = None
    if options.resume:
        if last is None or not last.is_file():
            raise ModelError(f"--resume: no resume state {last} (train without --resume first)")
        state = torch.load(last, map_location=device, weights_only=True)
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise ModelError(f"--resume: {last} is not a {RESUME_FORMAT} file")
        # before DDP and the optimizer take the parameters (loaded after them, the binary
        # networks' learned scales stopped following the optimizer: tested)
        model.load_state_dict(state["model"])
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    generator = torch.Generator().manual_seed(options.seed)
    sampler = (DistributedSampler(dataset, world, rank, shuffle=True, seed=options.seed, drop_last=True)
               if world > 1 else RandomSampler(dataset, generator=generator))
    loader = DataLoader(dataset, batch_size=options.batch_size, sampler=sampler, drop_last=True)
    if len(loader) == 0:
        raise ModelError(f"training: {len(dataset)} samples make no batch of {options.batch_size} "
                         f"per process ({world} processes)")
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    total = options.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
    use_amp = options.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        step, losses = int(state["step"]), list(state["losses"])

    def save_state() -> None:
        if rank == 0 and last is not None:
            last.parent.mkdir(parents=True, exist_ok=True)
            tmp = last.with_suffix(".tmp")
            torch.save({"format": RESUME_FORMAT, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                        "scaler": scaler.state_dict(), "step": step, "losses": losses,
                        "options": asdict(options), "meta": meta or {}}, tmp)
            tmp.replace(last)

    end = total if options.stop_at is None else min(total, options.stop_at)
    weights = None if weights is None else weights.to(device)
    if teacher is not None and options.feature_weight > 0:
        student_maps, teacher_maps, hooks = _record_batch_norms(model, teacher)
    bar = tqdm(total=total, initial=step, desc=f"train {getattr(model, 'name', '')}".strip(),
               unit="step", disable=not options.progress or rank != 0)
    while step < end:
        epoch, skip = divmod(step, len(loader))
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        else:
            generator.manual_seed(options.seed * 100003 + epoch)
        for i, (images, labels) in enumerate(loader):
            if i < skip:
                continue
            images, labels = images.to(device), labels.to(device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                logits = net(images)
                loss = F.cross_entropy(logits.float(), labels, weight=weights, ignore_index=IGNORE_INDEX,
                                       label_smoothing=options.label_smoothing)
                w = options.distill_weight
                if teacher is not None and (w > 0 or options.feature_weight > 0):
                    if options.distill_schedule == "decay":
                        w = w * (1.0 - step / total)
                    with torch.no_grad():
                        target = teacher(images).float()
                    if w > 0:
                        loss = (1 - w) * loss + w * distill_loss(
                            logits.float(), target, options.distill_temperature, labels,
                            weights if options.distill_class_weighted else None)
                    if options.feature_weight > 0:
                        loss = loss + options.feature_weight * feature_loss(student_maps, teacher_maps)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            step += 1
            losses.append(float(loss.item()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if options.checkpoint_every and step % options.checkpoint_every == 0:
                save_state()
            if step >= end:
                break
    bar.close()
    if teacher is not None and options.feature_weight > 0:
        for hook in hooks:
            hook.remove()
    save_state()
    in_step = True
    if world > 1:
        sums = [None] * world
        dist.all_gather_object(sums, _checksum(model))
        in_step = all(s == sums[0] for s in sums)
    model.eval()
    return FitResult(losses, step, world, in_step, stopped=step < total)


def init_from_twin(student: torch.nn.Module, twin: torch.nn.Module) -> int:
    """Stage two starts from the trained twin: copy every tensor whose name and shape match
    (convs, batch norms, MBU gates; the twin's ``head.*`` is the student's ``head.conv.*``);
    returns how many were copied."""
    source = {k.replace("head.", "head.conv.", 1) if k.startswith("head.") else k: v
              for k, v in twin.state_dict().items()}
    target = student.state_dict()
    copied = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    student.load_state_dict({**target, **copied})
    return len(copied)
