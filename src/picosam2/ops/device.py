"""A/B model slots on a device, the way embedded Linux updaters (RAUC, Mender, SWUpdate) do it.

Layout of a device root ``ROOT``::

    ROOT/slots/a/, ROOT/slots/b/   two bundle folders (one active, one previous)
    ROOT/active -> slots/a         the active slot: a relative symbolic link
    ROOT/state.json                health results and recent events (written atomically)
    ROOT/trusted.pem               optional release public key; when present, bundles must be signed by it
    ROOT/.lock                     held (flock) while an install or rollback runs

:func:`install` verifies the bundle first (hashes, signature), then refuses an older version
(unless ``allow_downgrade``) or an incompatible app, writes the **inactive** slot through a
temporary folder and a rename, runs the health check there, and only if it passes switches the
active link (new link under a temporary name, then ``os.replace``, atomic on POSIX). Killing it
at any moment leaves ``ROOT/active`` pointing at the old, complete slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path

from . import OpsError
from .bundle import MANIFEST, opened_bundle, parse_version, utc_now, verify_bundle, write_atomic
from .health import health_check

SLOTS = ("a", "b")
MAX_EVENTS = 50


class HealthCheckFailed(RuntimeError):
    """The new slot failed its health check; the active slot was not changed (exit status 1)."""


class Device:
    """One device root (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------------
    def slot_dir(self, slot: str) -> Path:
        return self.root / "slots" / slot

    def active_slot(self) -> str | None:
        try:
            target = os.readlink(self.root / "active")
        except OSError:
            return None
        name = Path(target).name
        return name if name in SLOTS and self.slot_dir(name).is_dir() else None

    def other(self, slot: str | None) -> str:
        return "b" if slot == "a" else "a"

    def manifest(self, slot: str | None) -> dict | None:
        if slot is None:
            return None
        try:
            return json.loads((self.slot_dir(slot) / MANIFEST).read_text())
        except (OSError, ValueError):
            return None

    def state(self) -> dict:
        try:
            return json.loads((self.root / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def trusted_key(self, pubkey=None) -> Path | None:
        if pubkey is not None:
            return Path(pubkey)
        p = self.root / "trusted.pem"
        return p if p.is_file() else None

    # -- writing ---------------------------------------------------------------------------
    def _save_state(self, **updates) -> None:
        state = self.state()
        event = updates.pop("event", None)
        state.update(updates)
        if event:
            state["events"] = ([*state.get("events", []), {"at": utc_now(), **event}])[-MAX_EVENTS:]
        write_atomic(self.root / "state.json", (json.dumps(state, indent=2) + "\n").encode())

    @contextlib.contextmanager
    def locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise OpsError(f"another install or rollback is running on {self.root}") from exc
            yield

    def _switch(self, slot: str) -> None:
        tmp = self.root / ".active.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(f"slots/{slot}", tmp)
        os.replace(tmp, self.root / "active")
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _clean_leftovers(self) -> None:
        """Half-written slots and unpacked tars of an interrupted install (never a real slot)."""
        for p in [*self.root.glob(".incoming-*"), *(self.root / "slots").glob(".*.new*")]:
            shutil.rmtree(p, ignore_errors=True)

    def _write_slot(self, bundle: Path, slot: str) -> Path:
        (self.root / "slots").mkdir(parents=True, exist_ok=True)
        new = self.root / "slots" / f".{slot}.new"
        shutil.rmtree(new, ignore_errors=True)
        shutil.copytree(bundle, new)
        for p in new.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        dest = self.slot_dir(slot)
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(new, dest)
        return dest

    def install(
        self, bundle, pubkey=None, allow_downgrade: bool = False, latency_budget_ms=None, require_gate: bool = False
    ) -> dict:
        """Verify, write the inactive slot, health-check it, switch. Raises :class:`OpsError`
        (refused, nothing written to a slot) or :class:`HealthCheckFailed` (not activated)."""
        from .. import __version__
        from .bundle import check_app_compat

        with self.locked():
            self._clean_leftovers()
            with opened_bundle(bundle, scratch=self.root) as folder:
                manifest = verify_bundle(folder, self.trusted_key(pubkey))
                check_app_compat(manifest, __version__)
                if require_gate:
                    from .gate import check_bundle_gate

                    check_bundle_gate(manifest, folder)
                active = self.active_slot()
                current = self.manifest(active)
                if current and parse_version(manifest["version"]) < parse_version(current["version"]):
                    if not allow_downgrade:
                        raise OpsError(
                            f"bundle {manifest['version']} is older than the active {current['version']} "
                            "(--allow-downgrade to install it anyway)"
                        )
                target = self.other(active)
                dest = self._write_slot(folder, target)
            if verify_bundle(dest)["files"] != manifest["files"]:  # the copy, by hash
                raise OpsError(f"slot {target} does not match the verified bundle after copying")
            health = health_check(dest, manifest, latency_budget_ms)
            self._save_state(slot_health={**self.state().get("slot_health", {}), target: health})
            ev = {"action": "install", "slot": target, "version": manifest["version"], "health": health["reason"]}
            self._save_state(last_health={**health, "slot": target}, event=ev)
            if not health["ok"]:
                raise HealthCheckFailed(
                    f"health check of {manifest['version']} failed ({health['reason']}); "
                    f"slot {target} not activated, active stays {active or 'none'}"
                )
            self._switch(target)
            return {"slot": target, "previous": active, "version": manifest["version"], "health": health,
                    "signature": manifest["signature"]}  # fmt: skip

    def check(self, latency_budget_ms=None) -> dict:
        """Health check of the active slot as it stands (hashes, then the network), recorded in
        the state: the post-switch check of a rollout (``picosam2 device check``)."""
        active = self.active_slot()
        if active is None:
            raise OpsError(f"no active slot in {self.root}")
        with self.locked():
            manifest = verify_bundle(self.slot_dir(active))
            health = health_check(self.slot_dir(active), manifest, latency_budget_ms)
            self._save_state(
                last_health={**health, "slot": active},
                slot_health={**self.state().get("slot_health", {}), active: health},
                event={"action": "check", "slot": active, "version": manifest["version"], "health": health["reason"]},
            )
        return {**health, "slot": active}

    def rollback(self, if_active: str | None = None) -> dict:
        """Switch back to the other slot (its files verified by hash first). With ``if_active``,
        only when the active version is that one (a no-op otherwise, for playbooks)."""
        with self.locked():
            active = self.active_slot()
            current = self.manifest(active) or {}
            if if_active is not None and current.get("version") != if_active:
                return {"changed": False, "active": active, "version": current.get("version")}
            other = self.other(active)
            if active is None or self.manifest(other) is None:
                raise OpsError(f"nothing to roll back to on {self.root}: slot {other} is empty")
            man = verify_bundle(self.slot_dir(other))
            self._check_not_failed(other, man["version"])
            self._switch(other)
            self._save_state(event={"action": "rollback", "from": current.get("version"), "to": man["version"]})
            return {"changed": True, "active": other, "version": man["version"], "from": current.get("version")}

    def slot_failed(self, slot: str, version: str) -> str | None:
        """The reason ``slot`` (holding ``version``) failed its last health check, else None."""
        h = self.state().get("slot_health", {}).get(slot)
        return h["reason"] if h and h.get("version") == version and not h.get("ok") else None

    def _check_not_failed(self, slot: str, version: str) -> None:
        reason = self.slot_failed(slot, version)
        if reason:
            raise OpsError(
                f"slot {slot} holds {version}, which failed its health check ({reason}): not switching to it"
            )

    def record_fallback(self, slot: str, to: str, reason: str) -> None:
        """The app could not start ``slot``'s network and runs ``to``'s: keep why."""
        with contextlib.suppress(OSError):
            fb = {"at": utc_now(), "from": slot, "to": to, "reason": reason}
            self._save_state(last_fallback=fb, event={"action": "fallback", **fb})

    def start_network(self, start):
        """``start(slot_dir)`` on the active slot; if it raises, on the previous slot (when that
        one holds a bundle that did not fail its health check), recording why. Returns
        ``(network, slot, version)``."""
        active = self.active_slot()
        if active is None:
            raise OpsError(
                f"no active slot in {self.root}: run `picosam2 device install BUNDLE --root {self.root}` first"
            )
        try:
            return start(self.slot_dir(active)), active, (self.manifest(active) or {}).get("version")
        except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to fall back
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            other = self.other(active)
            man = self.manifest(other)
            if man is None or self.slot_failed(other, man.get("version")):
                raise OpsError(f"the network of active slot {active} does not start ({reason}) and slot "
                                   f"{other} holds no working bundle") from exc  # fmt: skip
            self.record_fallback(active, other, reason)
            print(f"warning: slot {active} does not start ({reason}); running slot {other} ({man.get('version')})",
                  file=sys.stderr)  # fmt: skip
            return start(self.slot_dir(other)), other, man.get("version")

    def status(self) -> dict:
        """Versions of both slots, the active one, the last health result and fallback."""
        if not self.root.is_dir():
            raise OpsError(f"no device root at {self.root}")
        active = self.active_slot()
        state = self.state()
        slots = {}
        for s in SLOTS:
            m = self.manifest(s)
            slots[s] = (
                None if m is None else {"version": m.get("version"), "created": m.get("created"), "gate": m.get("gate")}
            )
        return {
            "root": str(self.root),
            "active": active,
            "active_version": (slots.get(active) or {}).get("version") if active else None,
            "slots": slots,
            "active_gate": (slots.get(active) or {}).get("gate") if active else None,
            "last_health": state.get("last_health"),
            "last_fallback": state.get("last_fallback"),
            "events": state.get("events", [])[-5:],
        }
