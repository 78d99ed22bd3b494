"""Run a training job: data, Lightning trainer, atomic checkpoints, logs, exported weights.

Layout of ``out_dir``::

    config.yaml              the resolved config of the run
    checkpoints/last.ckpt    newest checkpoint (written atomically); step-NNNNNNN.ckpt beside it
    logs/version_N/metrics.csv  CSV log of each (re)start; TensorBoard events when installed
    loss_curve.png           training loss (and dev-val mIoU) so far
    weights/                 exported PicoSAM2 weights (EMA when on), ``save_pretrained`` format
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from ..errors import ConfigError, MissingExtraError, UsageError
from .config import TrainConfig, dump_config

CKPT_DIR = "checkpoints"
LAST = "last.ckpt"


def _lightning():
    try:
        import lightning as L
    except ImportError as exc:
        raise MissingExtraError("training needs lightning: pip install 'picosam2[train]'") from exc
    return L


def build_datasets(cfg: TrainConfig, progress: bool = True):
    """(train dataset, val dataset or None) for a config; builds the packed set when asked."""
    from ..data import InstanceSet
    from .data import Augment, PackedCrops, WindowDataset, WindowPolicy, build_packed, pack_from_config

    d = cfg.data
    augment = Augment.from_data_config(d)
    teacher = None
    if d.teacher_cache:
        from .teacher_cache import TeacherCache

        teacher = TeacherCache(d.teacher_cache)
    if d.packed:
        packed = Path(d.packed)
        if not (packed / "pack.json").exists() or not _pack_complete(packed):
            if not d.train_annotations:
                raise FileNotFoundError(f"packed set not found: {packed}")
            pack_from_config(d, cfg.seed, packed, progress=progress)
        train = PackedCrops(packed, augment=augment, seed=cfg.seed, teacher=teacher, max_window=d.max_window)
    else:
        if teacher is not None:
            raise ConfigError("a teacher cache is aligned with a packed set: set data.packed too")
        iset = InstanceSet(d.train_annotations, d.train_images)
        train = WindowDataset(
            iset,
            WindowPolicy.from_data_config(d),
            augment,
            seed=cfg.seed,
            include_crowd=d.include_crowd,
            limit=d.limit,
        )
    val = None
    if d.val_annotations:
        vdir = Path(cfg.out_dir) / "val-pack"
        viset = InstanceSet(d.val_annotations, d.val_images)
        build_packed(viset, vdir, samples_per_instance=1, policy=WindowPolicy.paper_protocol(), limit=d.val_limit)
        val = PackedCrops(vdir, shuffle=False)
    return train, val


def _pack_complete(folder: Path) -> bool:
    import json

    try:
        return bool(json.loads((folder / "pack.json").read_text()).get("complete"))
    except (OSError, ValueError):
        return False


class _Loaders:
    """Train/val dataloaders whose sample stream starts where the trainer is."""

    def __init__(self, cfg: TrainConfig, train, val):
        self.cfg, self.train, self.val = cfg, train, val
        self.trainer = None

    def train_loader(self):
        from torch.utils.data import DataLoader

        from .data import StreamSampler, collate

        cfg = self.cfg
        loaders = self

        class _RankSampler(StreamSampler):
            """This rank's share of the global sample stream (rank and world read lazily: DDP
            sets them when fitting starts)."""

            def _rank_world(s):
                t = loaders.trainer
                return (t.global_rank, max(1, t.world_size)) if t is not None else (0, 1)

            def start(s):
                t = loaders.trainer
                return t.global_step * cfg.batch_size * s._rank_world()[1] if t is not None else 0

            def __iter__(s):
                rank, world = s._rank_world()
                return iter(range(s.start() + rank, cfg.max_steps * cfg.batch_size * world, world))

            def __len__(s):
                rank, world = s._rank_world()
                return max(0, (cfg.max_steps * cfg.batch_size * world - s.start()) // world)

        sampler = _RankSampler(cfg.max_steps * cfg.batch_size)
        return DataLoader(
            self.train,
            batch_size=cfg.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=cfg.data.num_workers,
            persistent_workers=False,
            drop_last=True,
        )

    def val_loader(self):
        from torch.utils.data import DataLoader

        from .data import collate

        return DataLoader(self.val, batch_size=64, shuffle=False, collate_fn=collate, num_workers=0)


def _callbacks(cfg: TrainConfig, out: Path):
    L = _lightning()

    class AtomicCheckpoint(L.Callback):
        """Every ``ckpt_every`` steps: checkpoint to a temporary name, then rename (atomic)."""

        def __init__(self):
            self.dir = out / CKPT_DIR

        def save(self, trainer, module):
            self.dir.mkdir(parents=True, exist_ok=True)
            step = trainer.global_step
            tmp = self.dir / f".step-{step:07d}.ckpt.tmp"
            trainer.save_checkpoint(tmp)
            if trainer.is_global_zero:
                final = self.dir / f"step-{step:07d}.ckpt"
                os.replace(tmp, final)
                last_tmp = self.dir / f".{LAST}.tmp"
                try:
                    os.link(final, last_tmp)
                except OSError:
                    import shutil

                    shutil.copyfile(final, last_tmp)
                os.replace(last_tmp, self.dir / LAST)
                kept = sorted(self.dir.glob("step-*.ckpt"))
                for old in kept[: max(0, len(kept) - max(1, cfg.keep_checkpoints))]:
                    old.unlink(missing_ok=True)
                export_weights(module, out / "weights", cfg, step)
                plot_curves(out)
            trainer.strategy.barrier()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if cfg.ckpt_every > 0 and trainer.global_step % cfg.ckpt_every == 0:
                self.save(trainer, module)

        def on_train_end(self, trainer, module):
            last = self.dir / LAST
            if not last.exists() or _ckpt_step(last) != trainer.global_step:
                self.save(trainer, module)

    cbs = [AtomicCheckpoint()]
    if _show_progress(cfg):
        from lightning.pytorch.callbacks import TQDMProgressBar

        cbs.append(TQDMProgressBar(refresh_rate=max(1, cfg.log_every)))
    return cbs


def _show_progress(cfg: TrainConfig) -> bool:
    """Lightning's bar: when the config asks for it and stderr is a terminal."""
    from ..progress import progress_wanted

    return bool(cfg.progress_bar) and progress_wanted()


def _ckpt_step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception:  # noqa: BLE001
        return -1


def export_weights(module, folder: Path, cfg: TrainConfig, step: int, extra_meta: dict | None = None) -> Path:
    """Save the shippable network (EMA when on), BN in eval mode, with training metadata."""
    from ..models import save_pretrained

    net = copy_for_export(module.export_model())
    if cfg.export_extra:
        net.config.extra = {**net.config.extra, **cfg.export_extra}
    meta = {
        "trained": "true",
        "steps": str(step),
        "batch_size": str(cfg.batch_size),
        "samples_seen": str(step * cfg.batch_size),
        "loss": cfg.loss.mode,
        "ema": str(cfg.ema_decay),
        "data": cfg.data.packed or cfg.data.train_annotations,
        **(extra_meta or {}),
    }
    return save_pretrained(net, folder, metadata=meta)


def copy_for_export(net: torch.nn.Module) -> torch.nn.Module:
    """A float32, eval-mode copy of ``net`` (the training one is left as it is)."""
    import copy

    net = copy.deepcopy(net).float().eval()
    return net.to(memory_format=torch.contiguous_format)


def plot_curves(out: Path) -> Path | None:
    """``loss_curve.png`` from every CSV log of the run (all restarts), if matplotlib is there."""
    import csv

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    loss, val = {}, {}
    for f in sorted((out / "logs").glob("version_*/metrics.csv")):
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                step = row.get("step")
                if not step:
                    continue
                if row.get("train/loss"):
                    loss[int(step)] = float(row["train/loss"])
                if row.get("val/miou"):
                    val[int(step)] = float(row["val/miou"])
    if not loss:
        return None
    steps = sorted(loss)
    ys = [loss[s] for s in steps]
    k = max(1, len(ys) // 50)
    smooth = [sum(ys[max(0, i - k) : i + 1]) / len(ys[max(0, i - k) : i + 1]) for i in range(len(ys))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, ys, color="#bbb", lw=0.8, label="train loss")
    ax.plot(steps, smooth, color="C0", lw=1.5, label="train loss (smoothed)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    if val:
        ax2 = ax.twinx()
        vs = sorted(val)
        ax2.plot(vs, [val[s] for s in vs], "o-", color="C1", label="dev-val mIoU (paper crops)")
        ax2.set_ylabel("mIoU %")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out / "loss_curve.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out / "loss_curve.png")
    return out / "loss_curve.png"


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train according to ``cfg``; with ``resume`` continue from ``out_dir/checkpoints/last.ckpt``.

    Returns the folder of the exported weights.
    """
    L = _lightning()
    from lightning.pytorch.loggers import CSVLogger

    from .module import PicoSAM2Module

    out = Path(cfg.out_dir)
    ckpt = out / CKPT_DIR / LAST
    if resume and not ckpt.exists():
        raise FileNotFoundError(f"nothing to resume: {ckpt} does not exist")
    if not resume and ckpt.exists():
        raise UsageError(f"{out} already holds a run; pass --resume to continue it or choose another out_dir")
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    cfg_tmp = out / "config.yaml.tmp"
    cfg_tmp.write_text(dump_config(cfg))
    os.replace(cfg_tmp, out / ("config.yaml" if not resume else "config.resume.yaml"))

    train_set, val_set = build_datasets(cfg, progress=progress)
    teacher = None
    if cfg.loss.mode == "distill" and not cfg.data.teacher_cache:
        if not cfg.teacher.online:
            raise ConfigError("distillation needs data.teacher_cache (picosam2 teacher-cache) or teacher.online=true")
        from .teacher_cache import load_teacher

        teacher = load_teacher(cfg.teacher)
    module = PicoSAM2Module(cfg, teacher=teacher)
    loaders = _Loaders(cfg, train_set, val_set)
    loggers = [CSVLogger(str(out), name="logs")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(out), name="tb"))
    except ImportError:
        pass
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        num_nodes=cfg.num_nodes,
        precision=cfg.precision,
        max_steps=cfg.max_steps,
        max_epochs=-1,
        logger=loggers,
        callbacks=_callbacks(cfg, out),
        enable_checkpointing=False,
        enable_progress_bar=_show_progress(cfg),
        enable_model_summary=False,
        log_every_n_steps=max(1, cfg.log_every),
        val_check_interval=cfg.val_every if val_set is not None else None,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        limit_val_batches=None if val_set is not None else 0,
        gradient_clip_val=cfg.optim.grad_clip or None,
        use_distributed_sampler=False,
        deterministic=False,
    )
    loaders.trainer = trainer
    t0 = time.time()
    trainer.fit(
        module,
        train_dataloaders=loaders.train_loader(),
        val_dataloaders=loaders.val_loader() if val_set is not None else None,
        ckpt_path=str(ckpt) if resume else None,
    )
    if trainer.is_global_zero:
        with (out / "wall_time.txt").open("a") as fh:
            fh.write(f"{'resume' if resume else 'start'} {time.time() - t0:.1f}s\n")
    return out / "weights"
