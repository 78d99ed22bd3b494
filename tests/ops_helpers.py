"""Helpers for the operations tests (not a test module): keys, bundles, device roots, frames."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def write_keypair(folder: Path, name: str) -> tuple[Path, Path]:
    """An Ed25519 key pair as PEM files, in the formats `openssl genpkey` / `openssl pkey -pubout` write."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    priv, pub = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return priv, pub


def rerelease(src: Path, dest: Path, version: str, key: Path | None, edit=None) -> Path:
    """A copy of bundle ``src`` released again as ``version`` (manifest rewritten and signed with
    ``key`` by the real code), after ``edit(folder)``; writes ``dest`` and ``dest.tar``."""
    from picosam2.ops.bundle import MANIFEST, SIGNATURE, finalize_bundle, write_tar

    shutil.copytree(src, dest)
    meta = json.loads((dest / MANIFEST).read_text())
    for k in ("format", "files"):
        meta.pop(k)
    meta["version"] = version
    (dest / SIGNATURE).unlink(missing_ok=True)
    if edit is not None:
        edit(dest)
    finalize_bundle(dest, meta, key)
    write_tar(dest, dest.with_name(dest.name + ".tar"))
    return dest


def active_fingerprint(root: Path) -> tuple[str, str]:
    """(where ROOT/active points, the sha256 manifest entries of that slot) to compare before/after."""
    target = os.readlink(root / "active")
    return target, (root / target / "manifest.json").read_text()


def save_windows(windows: np.ndarray, folder: Path) -> Path:
    """Each 96 x 96 window as a photo: the camera's centred 96-pixel window over it is the window itself."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, w in enumerate(windows):
        Image.fromarray(w).save(folder / f"{i:04d}.png")
    return folder


def darken(windows: np.ndarray, factor: float = 0.5) -> np.ndarray:
    return np.clip(windows.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def blur(windows: np.ndarray, radius: float = 1.5) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(w).filter(ImageFilter.GaussianBlur(radius))) for w in windows])


def grid_windows(photos, per_side: int = 6) -> np.ndarray:
    """Centred windows at a grid of points over each photo (prompts not aimed at objects)."""
    from picosam2.image_io import load_image
    from picosam2.prompts import crop_image, point_window

    out = []
    for p in photos:
        img = load_image(p)
        h, w = img.shape[:2]
        for fy in np.linspace(0.1, 0.9, per_side):
            for fx in np.linspace(0.1, 0.9, per_side):
                out.append(crop_image(img, point_window(fx * w, fy * h, (w, h), mode="centered"), 96))
    return np.stack(out)
