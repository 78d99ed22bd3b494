"""Versioned, optionally signed deployment bundles.

A bundle is one folder (plus a ``.tar`` of it) holding everything a camera needs for one model
release::

    manifest.json          name, version, creation time, app compatibility, health limits,
                           and the sha256 + size of every other file
    manifest.sig           Ed25519 signature of manifest.json's bytes (optional, raw 64 bytes)
    model/config.json      the network's configuration
    model/picosam2-int8.onnx   the CPU fallback (onnxruntime static INT8)
    imx500/packerOut.zip, dnnParams.xml, *_MemoryReport.json   the sensor package
    imx500/network.rpk     only when ``imx500-package`` (Raspberry Pi OS) was on PATH
    eval/report.json       the dev-val numbers the release was made with
    monitor/reference.json reference distribution of the per-frame statistics
    health/window.png, health/expected.npy   a known window and the logits it must give

The signature covers ``manifest.json`` only; the manifest covers every file by hash, so
verifying both (:func:`verify_bundle`) verifies the bundle. Keys are PEM files as
``openssl genpkey -algorithm ed25519`` writes them; the signature can also be checked with
``openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in manifest.json -sigfile manifest.sig``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from . import OpsError

FORMAT = "picosam2-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
INT8_ONNX = "model/picosam2-int8.onnx"
CONFIG = "model/config.json"
REFERENCE = "monitor/reference.json"
HEALTH_WINDOW = "health/window.png"
HEALTH_EXPECTED = "health/expected.npy"
EVAL_REPORT = "eval/report.json"
_VERSION_RE = re.compile(r"\d+(\.\d+){0,3}")


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.2.3"`` -> ``(1, 2, 3)``; dotted integers only (compared numerically)."""
    if not isinstance(text, str) or not _VERSION_RE.fullmatch(text):
        raise OpsError(f"version {text!r} is not dotted integers like 1.2.0")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise OpsError("signed bundles need the cryptography package: pip install 'picosam2[ops]'") from exc
    return serialization, ed25519, InvalidSignature


def load_private_key(path: str | os.PathLike):
    """An Ed25519 private key from a PEM file (``openssl genpkey -algorithm ed25519``)."""
    serialization, ed25519, _ = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise OpsError(f"cannot read private key {path}: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise OpsError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike):
    """An Ed25519 public key from a PEM file (``openssl pkey -in key.pem -pubout``)."""
    serialization, ed25519, _ = _crypto()
    try:
        data = Path(path).read_bytes()
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            key = serialization.load_pem_private_key(data, password=None).public_key()
    except (OSError, ValueError, TypeError) as exc:
        raise OpsError(f"cannot read public key {path}: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise OpsError(f"{path} is not an Ed25519 public key")
    return key


def default_app_range(app_version: str) -> dict:
    """Compatible camera-app versions: this release's minor series (0.x) or major series."""
    v = parse_version(app_version)
    below = f"0.{v[1] + 1}.0" if v[0] == 0 else f"{v[0] + 1}.0.0"
    return {"name": "picosam2", "min_version": app_version, "below_version": below}


def check_app_compat(manifest: dict, app_version: str) -> None:
    rng = manifest.get("app", {})
    v = parse_version(app_version)
    if not parse_version(rng.get("min_version", "0")) <= v < parse_version(rng.get("below_version", "9999")):
        raise OpsError(
            f"bundle {manifest.get('version')} needs picosam2 >= {rng.get('min_version')}, < "
            f"{rng.get('below_version')}; this device runs {app_version}"
        )


def _listed_files(folder: Path) -> list[str]:
    names = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            raise OpsError(f"bundle holds a symbolic link: {rel}")
        if p.is_file() and rel not in (MANIFEST, SIGNATURE):
            names.append(rel)
    return names


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def finalize_bundle(folder: str | os.PathLike, meta: dict, key_path: str | os.PathLike | None = None) -> dict:
    """Hash every file of ``folder`` into ``manifest.json`` (with ``meta``: name, version, ...)
    and, with ``key_path``, sign it into ``manifest.sig``. Returns the manifest."""
    folder = Path(folder)
    parse_version(meta["version"])
    files = {
        rel: {"sha256": sha256_file(folder / rel), "bytes": (folder / rel).stat().st_size}
        for rel in _listed_files(folder)
    }
    manifest = {"format": FORMAT, **meta, "files": files}
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (folder / SIGNATURE).unlink(missing_ok=True)
    write_atomic(folder / MANIFEST, data)
    if key_path is not None:
        write_atomic(folder / SIGNATURE, load_private_key(key_path).sign(data))
    return manifest


def verify_bundle(folder: str | os.PathLike, pubkey: str | os.PathLike | None = None) -> dict:
    """Check a bundle folder: the manifest parses, every listed file exists with its sha256 and
    size, no file is unlisted, and (with ``pubkey``) ``manifest.sig`` verifies. Returns the
    manifest with ``"signature"`` set to ``"verified"``, ``"unchecked"`` or ``"absent"``.
    Raises :class:`OpsError` (one line) on the first problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OpsError(f"bundle not found: {folder}")
    try:
        data = (folder / MANIFEST).read_bytes()
        manifest = json.loads(data)
    except (OSError, ValueError) as exc:
        raise OpsError(f"bundle {folder}: unreadable {MANIFEST}: {exc}") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise OpsError(f"bundle {folder}: {MANIFEST} is not a {FORMAT} manifest")
    sig_path = folder / SIGNATURE
    status = "absent"
    if pubkey is not None:
        _, _, invalid = _crypto()
        key = load_public_key(pubkey)
        if not sig_path.is_file():
            raise OpsError(f"bundle {folder} is not signed, and a trusted key is set")
        try:
            key.verify(sig_path.read_bytes(), data)
        except invalid as exc:
            raise OpsError(f"bundle {folder}: signature does not verify against {pubkey}") from exc
        status = "verified"
    elif sig_path.is_file():
        status = "unchecked"
    listed = manifest["files"]
    for rel, entry in listed.items():
        p = folder / rel
        if rel.startswith("/") or ".." in Path(rel).parts or not p.is_file():
            raise OpsError(f"bundle {folder}: listed file {rel} is missing")
        if p.stat().st_size != entry.get("bytes") or sha256_file(p) != entry.get("sha256"):
            raise OpsError(f"bundle {folder}: {rel} does not match its sha256 in the manifest (tampered or corrupt)")
    extra = sorted(set(_listed_files(folder)) - set(listed))
    if extra:
        raise OpsError(f"bundle {folder}: file {extra[0]} is not in the manifest")
    parse_version(manifest.get("version", ""))
    return {**manifest, "signature": status}


def write_tar(folder: str | os.PathLike, tar_path: str | os.PathLike) -> Path:
    """``folder`` as an uncompressed tar whose single top-level entry is the folder's name."""
    folder, tar_path = Path(folder), Path(tar_path)
    tmp = tar_path.with_name(f".{tar_path.name}.tmp")
    with tarfile.open(tmp, "w") as tar:
        tar.add(folder, arcname=folder.name)
    os.replace(tmp, tar_path)
    return tar_path


@contextlib.contextmanager
def opened_bundle(path: str | os.PathLike, scratch: str | os.PathLike | None = None):
    """Yield a bundle folder for a folder or a ``.tar`` path (extracted, with tarfile's ``data``
    filter, into a temporary folder under ``scratch``, removed afterwards)."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise OpsError(f"bundle not found: {path}")
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=scratch))
    try:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise OpsError(f"cannot unpack bundle {path}: {exc}") from exc
        tops = [p for p in tmp.iterdir()]
        if len(tops) != 1 or not tops[0].is_dir():
            raise OpsError(f"bundle {path}: expected one top-level folder in the tar")
        yield tops[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
