"""The explorer widget, driven through its child widgets' values, on the example images."""

from __future__ import annotations

import time
from pathlib import Path

from _examples import make_examples_module

import layerforensics as lf
from layerforensics.builder import Dir, File, ImageBuilder
from layerforensics.explore import MORE, explore, hexdump, text_preview

EX = make_examples_module()


def motd_entry(img: lf.Image, layer: int) -> int:
    f = img.files
    return int(f[(f["layer"] == layer) & (f["path"] == "/etc/motd")]["entry"].iloc[0])


def names(ex) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.strip() for r in ex.rows()]


def test_initial_view_is_top_layer_with_closed_dirs(demo: lf.Image) -> None:
    ex = explore(demo, key="t-initial")
    assert ex.layer_select.value == demo.layer_count - 1
    rows = ex.rows()
    assert [r.split()[-1] for r in rows] == ["bin/", "etc/", "usr/", "var/"]
    assert all("▸" in r for r in rows)
    assert "layer 5: " in ex.status.value
    # the layer list masks nothing here but shows index, size and step
    assert [label.split()[0] for label, _ in ex.layer_select.options] == list("012345")
    assert "rm /etc/motd" in ex.layer_select.options[5][0].replace("\u00a0", " ")


def test_click_dir_opens_and_closes(demo: lf.Image) -> None:
    ex = explore(demo, key="t-click")
    ex.tree.value = "/etc"
    rows = names(ex)
    assert rows[1].endswith("▾ etc/") or "▾ etc/" in rows[1]
    assert any(r.endswith("motd") and r.startswith("-") for r in rows)  # deleted by layer 5
    assert any(r.endswith("app.conf") for r in rows)
    ex.tree.value = "/etc/app.conf"
    ex.tree.value = "/etc"  # selecting it again closes it
    assert not any("motd" in r for r in names(ex))


def test_preview_of_versions(demo: lf.Image) -> None:
    ex = explore(demo, key="t-preview")
    ex.layer_select.value = 1
    ex.select("/etc/motd")
    assert "Welcome (version 2: overwritten in layer 1)" in ex.preview.value
    assert "<span class='ln'>1 │ </span>" in ex.preview.value
    assert "in layer 1</td><td>modified" in ex.details.value
    assert "deleted by layer 5" in ex.details.value
    labels = [label for label, _ in ex.version.options]
    e0 = motd_entry(demo, 0)
    assert [v for _, v in ex.version.options] == [(0, e0), (1, motd_entry(demo, 1))]
    assert labels[0].startswith("layer 0 · file · 20 B · overwritten by layer 1")
    ex.version.value = (0, e0)
    assert "Welcome (version 1)" in ex.preview.value
    assert f"version</td><td>layer 0, entry {e0}" in ex.details.value


def test_deleted_file_is_listed_and_readable_at_the_deleting_layer(demo: lf.Image) -> None:
    ex = explore(demo, key="t-deleted")
    ex.layer_select.value = 3
    ex.select("/var/cache/apt/pkgcache.bin")
    row = next(r for r in ex.rows() if r.rstrip().endswith("pkgcache.bin"))
    assert row.startswith("-")
    assert "APT cache APT cache" in ex.preview.value
    ex.filter.value = "deleted"
    assert ex.rows()[-2:] == [
        "-     400 B          pkgcache.bin",
        "-     425 B          srcpkgcache.bin",
    ]
    ex.search.value = "pkgcache"
    rows = names(ex)
    assert [r.split()[-1] for r in rows] == [
        "var/",
        "cache/",
        "apt/",
        "pkgcache.bin",
        "srcpkgcache.bin",
    ]


def test_filters(demo: lf.Image) -> None:
    ex = explore(demo, key="t-filters")
    ex.layer_select.value = 2
    ex.filter.value = "changes"
    ex.tree.value = "/usr"
    ex.tree.value = "/usr/local"
    ex.tree.value = "/usr/local/bin"
    assert ex.rows() == [
        "+    1.3 kB  ▾ usr/",
        "+    1.3 kB    ▾ local/",
        "+    1.3 kB      ▾ bin/",
        "+     640 B          busybox",
        "+     640 B          ls (hardlink)",
        "+       0 B          sh → busybox",
    ]
    ex.filter.value = "wasted"
    wasted = {p for _, p in ex.tree.options}
    assert "/etc" in wasted or "/var" in wasted
    ex.tree.value = "/etc"
    assert "/etc/app.conf" in {p for _, p in ex.tree.options}  # chmod copy-up is waste


def test_hardlink_and_symlink_preview(demo: lf.Image) -> None:
    ex = explore(demo, key="t-links")
    ex.select("/usr/local/bin/ls")
    assert "00000000: 7f45 4c46" in ex.preview.value  # hex dump of the bytes it links to
    assert "640 B" in ex.preview.value
    ex.select("/usr/local/bin/sh")
    assert "symlink → busybox" in ex.preview.value


def test_secrets_highlighted_and_masked(classic: lf.Image) -> None:
    ex = explore(classic, key="t-secrets")
    ex.tree.value = "/app"
    env = next(r for r in ex.rows() if r.rstrip().endswith(".env"))
    assert env.startswith("-!")
    ex.tree.value = "/app/.env"
    assert "<span class='hit'>GITHUB_TOKEN=" + EX.GITHUB_TOKEN + "</span>" in ex.preview.value
    assert "secret finding" in ex.preview.value
    layer_labels = " ".join(label for label, _ in ex.layer_select.options)
    assert EX.NPM_TOKEN not in layer_labels and "npm_FA********" in layer_labels
    ex.filter.value = "secrets"
    assert {p for _, p in ex.tree.options} == {"/app", "/app/.env"}


def test_rerun_restores_state(demo: lf.Image) -> None:
    ex = explore(demo, key="t-rerun")
    ex.layer_select.value = 1
    ex.select("/etc/motd")
    ex.version.value = (0, motd_entry(demo, 0))
    again = explore(demo, key="t-rerun")
    assert again.layer_select.value == 1
    assert again.tree.value == "/etc/motd"
    assert again.version.value == (0, motd_entry(demo, 0))
    assert "Welcome (version 1)" in again.preview.value
    other = explore(demo, key="t-other")
    assert other.tree.value is None and other.layer_select.value == demo.layer_count - 1


def test_display_protocol(demo: lf.Image) -> None:
    bundle = explore(demo, key="t-display")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_preview_helpers() -> None:
    assert hexdump(bytes(range(20))).splitlines()[0].startswith("00000000: 0001 0203")
    html = text_preview(b"a\nb<c>\n", highlight={2})
    assert "<span class='hit'>b&lt;c&gt;</span>" in html
    assert "hex" not in html and "00000000" in text_preview(b"\x00\x01")
    big = text_preview(b"x" * 100, limit=10)
    assert "90 more bytes not shown" in big


def test_lazy_tree_on_a_wide_directory(tmp_path: Path) -> None:
    b = ImageBuilder()
    b.layer([Dir("/d")] + [File(f"/d/f{i:04d}", b"x") for i in range(1000)], created_by="ADD")
    b.save_docker(tmp_path / "wide.tar")
    img = lf.open_image(tmp_path / "wide.tar")
    ex = explore(img, key="t-wide", page=100)
    start = time.perf_counter()
    ex.tree.value = "/d"
    assert time.perf_counter() - start < 2
    values = [v for _, v in ex.tree.options]
    assert len(values) == 1 + 100 + 1 and values[-1] == MORE + "/d"
    assert "900 more" in ex.rows()[-1]
    ex.tree.value = MORE + "/d"
    assert len(ex.tree.options) == 1 + 200 + 1
    assert ex.tree.value == "/d"


def test_collapse_button_closes_the_parent_of_a_file(demo: lf.Image) -> None:
    ex = explore(demo, key="t-collapse")
    ex.select("/usr/local/bin/busybox")
    assert "/usr/local/bin/busybox" in {p for _, p in ex.tree.options}
    ex.collapse.click()
    assert ex.tree.value == "/usr/local/bin"
    assert "/usr/local/bin/busybox" not in {p for _, p in ex.tree.options}
    assert "/usr/local/bin" in {p for _, p in ex.tree.options}
