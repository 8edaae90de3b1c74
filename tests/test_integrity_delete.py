"""A delete whose file cleanup fails after its commit (EACCES, EIO): the deletion is durable,
so the client gets its 204, the album leaves the search at once, and after a restart it is
still gone (its leftover image quarantined, never silently lost). The fault is injected into
the real store at the one point that fails (the unlink or the directory fsync)."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service import store as store_module
from service.config import Settings
from service.store import QUARANTINE
from service.testing.images import new_cover_png
from tests.conftest import add_album, app_client, top_album


def _failing_unlink(images: Path) -> Callable[..., None]:
    """Path.unlink that refuses (EACCES) for files in ``images``, as a read-only mount would."""
    real = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.parent == images:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        real(self, missing_ok=missing_ok)

    return unlink


def _failing_fsync(_: Path) -> None:
    raise OSError(errno.EIO, os.strerror(errno.EIO))


@pytest.mark.parametrize("fault", ["unlink EACCES", "fsync EIO"])
def test_delete_after_commit_is_acknowledged_and_unsearchable(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    settings = make_settings()
    images = settings.data / "images"
    cover = new_cover_png(800)
    with app_client(settings) as client:
        assert add_album(client, "mine", cover)[0] == 201
        assert top_album(client, cover) == "mine"
        target: Any = Path if fault.startswith("unlink") else store_module
        name = "unlink" if fault.startswith("unlink") else "fsync_dir"
        with monkeypatch.context() as patch, caplog.at_level(logging.ERROR):
            patch.setattr(target, name, _failing_unlink(images) if name == "unlink"
                          else _failing_fsync)
            r = client.delete("/catalog/mine")
        assert r.status_code == 204, r.text  # it was committed: a 500 would be a lie
        assert "deleted" in caplog.text and "mine" in caplog.text  # the cleanup failure, logged
        assert client.get("/catalog/mine").status_code == 404
        assert "mine" not in [a["album_id"] for a in client.get("/catalog").json()["albums"]]
        assert top_album(client, cover) != "mine"
        assert list(images.glob("mine.*")) == ([images / "mine.png"]
                                               if name == "unlink" else [])
    with app_client(settings) as client:  # durable: still gone after a restart
        assert client.get("/catalog/mine").status_code == 404
        assert top_album(client, cover) != "mine"
    # The image the unlink left behind is moved aside by startup, not deleted.
    assert list(images.glob("mine.*")) == []
    kept = list((settings.data / QUARANTINE).glob("*/mine.png"))
    assert [p.read_bytes() == cover for p in kept] == ([True] if name == "unlink" else [])
