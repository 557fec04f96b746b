"""`import_annotations(fmt, paths, map_specs, value_specs)`: any supported export -> oriented labels."""
from __future__ import annotations

from pathlib import Path

from rlaif.annotations.argilla import read_argilla
from rlaif.annotations.canonical import read_canonical
from rlaif.annotations.core import ImportResult, orient, parse_map, parse_values
from rlaif.annotations.labelstudio import read_label_studio
from rlaif.annotations.prodigy import read_prodigy
from rlaif.errors import ConfigError, InputError

_READERS = {"csv": read_canonical, "annotations": read_canonical, "label-studio": read_label_studio,
            "argilla": read_argilla, "prodigy": read_prodigy}
FORMATS = tuple(_READERS)


def import_annotations(fmt: str, paths: list[str | Path], map_specs: list[str] | None = None,
                       value_specs: list[str] | None = None) -> ImportResult:
    """Read every file, then orient all of them together (an item may span files)."""
    if fmt not in _READERS:
        raise ConfigError(f"unknown annotation format {fmt!r}. Fix: use one of {', '.join(FORMATS)}")
    shown, dropped = _READERS[fmt]([Path(p) for p in paths], parse_map(map_specs), parse_values(value_specs))
    if not shown and not dropped:
        raise InputError(paths[0], None, f"no annotations found in {len(paths)} file(s)",
                         f"check that the files are {fmt} exports (rlaif convert --help lists the formats)")
    return orient(shown, dropped)
