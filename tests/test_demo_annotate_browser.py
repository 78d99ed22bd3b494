""" "Save as annotation" end to end in headless Chromium: click an object, press the button (from
the keyboard), and the COCO file the demo was started with holds an annotation whose mask is the
page's mask, for masks made by the server and masks made in the page (onnxruntime-web)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pycocotools")

from picosam2.demo.app import create_app  # noqa: E402
from picosam2.demo.server import ServerThread  # noqa: E402
from test_demo_api import DOG_POINT  # noqa: E402
from test_demo_browser import (  # noqa: E402
    browser,  # noqa: F401  (a fixture)
    image_to_page,
    needs_ort_web,
    new_page,
    open_sample,
    page_mask,
    predictor,  # noqa: F401  (a fixture)
    server_url,  # noqa: F401  (a fixture)
    wait_masks,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    return tmp_path_factory.mktemp("labels") / "site.json"


@pytest.fixture(scope="module")
def annotate_url(predictor, labels, tmp_path_factory):  # noqa: F811
    app = create_app(
        predictor=predictor, trained=False, model_cache_dir=tmp_path_factory.mktemp("models"), annotations=labels
    )
    with ServerThread(app) as url:
        yield url


def save_with_the_keyboard(page, saves):
    page.focus("#annotate")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => (window.picosam2Demo.lastSaved && window.picosam2Demo.lastSaved.annotations >= {saves})"
        " || window.picosam2Demo.lastError"
    )
    assert page.evaluate("() => window.picosam2Demo.lastError") is None


def coco_masks(path):
    from pycocotools.coco import COCO

    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds())
    return coco, [coco.annToMask(a) > 0 for a in anns], anns


def test_save_as_annotation_writes_the_pages_mask(browser, annotate_url, labels):  # noqa: F811
    context, page = new_page(browser, annotate_url)
    try:
        assert page.locator("#annotate").is_visible() and page.locator("#annotate").is_disabled()
        open_sample(page, "dog")
        x, y = image_to_page(page, *DOG_POINT)
        page.mouse.click(x, y)
        wait_masks(page, 1)
        shown = page_mask(page)
        assert shown.any()
        page.fill("#category", "dog")
        save_with_the_keyboard(page, 1)
        coco, masks, anns = coco_masks(labels)
        assert len(masks) == 1
        np.testing.assert_array_equal(masks[0], shown)
        (img,) = coco.loadImgs([anns[0]["image_id"]])
        assert img["file_name"] == "images/dog.jpg" and (labels.parent / "images" / "dog.jpg").is_file()
        assert coco.loadCats(anns[0]["category_id"])[0]["name"] == "dog"
        status = page.locator("#status").inner_text()
        assert "saved 1 object (dog) of images/dog.jpg to site.json" in status, status
        # the same object again: refused, said in the page, the file unchanged
        before = labels.read_bytes()
        page.click("#annotate")
        page.wait_for_function("() => window.picosam2Demo.lastError")
        assert "already saved" in page.locator("#error").inner_text()
        assert page.locator("#error").is_visible() and labels.read_bytes() == before
        assert not page.errors, page.errors
    finally:
        context.close()


@needs_ort_web
def test_masks_made_in_the_browser_are_saved_as_shown(browser, annotate_url, labels):  # noqa: F811
    """Two objects segmented in the page (onnxruntime-web): one annotation each, their union the
    mask shown, and the photo's pixels never went to /api/segment."""
    context, page = new_page(browser, annotate_url)
    try:
        open_sample(page, "truck")
        posts = []
        page.on("request", lambda req: posts.append(req.url) if req.method == "POST" else None)
        page.check("#local")
        page.wait_for_function("() => window.picosam2Demo.state.useLocal || window.picosam2Demo.lastError")
        assert page.evaluate("() => window.picosam2Demo.lastError") is None
        size = page.evaluate("() => [window.picosam2Demo.state.photo.width, window.picosam2Demo.state.photo.height]")
        page.mouse.click(*image_to_page(page, size[0] // 2, size[1] // 2))
        page.wait_for_function(
            "() => window.picosam2Demo.lastLatency && window.picosam2Demo.lastLatency.mode === 'browser'"
        )
        shown_before = page.evaluate("() => window.picosam2Demo.masksShown")
        page.keyboard.down("Shift")
        page.mouse.click(*image_to_page(page, size[0] // 4, size[1] // 2))
        page.keyboard.up("Shift")
        wait_masks(page, shown_before + 1)
        shown = page_mask(page)
        assert shown.any()
        n_before = len(json.loads(labels.read_text())["annotations"]) if labels.exists() else 0
        save_with_the_keyboard(page, n_before + 2)
        assert [u.rsplit("/", 1)[1] for u in posts] == ["annotate"]
        coco, masks, anns = coco_masks(labels)
        mine = [m for m, a in zip(masks, anns) if coco.loadImgs([a["image_id"]])[0]["file_name"] == "images/truck.jpg"]
        assert len(mine) == 2 and all(m.any() for m in mine)
        np.testing.assert_array_equal(mine[0] | mine[1], shown)
        assert not page.errors, page.errors
    finally:
        context.close()


def test_no_button_without_annotations(browser, server_url):  # noqa: F811
    context, page = new_page(browser, server_url)
    try:
        assert page.locator("#annotate-group").is_hidden()
    finally:
        context.close()
