"""The handwriting fonts `lenet train --styles` draws digits in: which, from which Debian package, under
which licence, and finding them on this machine. Nothing is downloaded; a missing font is named, and the
run uses the others (a checkpoint records which were used, so a resume elsewhere can tell)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


@dataclass(frozen=True)
class HandFont:
    name: str
    package: str  # the Debian package that installs it
    licence: str  # of the font files (the package's own scripts may differ)
    files: tuple[str, ...]  # file names looked for under FONT_DIRS; every one found is used


# Checked by eye (docs/styles_fonts.png): each writes all ten digits as a person would. Left out: the
# cursive scripts whose digits are ornamental (Kristi, Dancing Script, Joscelyn's secretary hand), and
# Femke Klaver, whose strokes are hatched outlines.
HAND_FONTS = (
    HandFont("DKG Handwriting", "fonts-dkg-handwriting", "GPL-3+", ("dkg.ttf", "dkgIt.ttf", "dkgBd.ttf")),
    HandFont(
        "Because We Had To (six hands)",
        "fonts-bwht",
        "OFL-1.1",
        (
            "BecauseWeBuild-Regular.otf",
            "BecauseWeConnect-Regular.otf",
            "BecauseWeCreate-Regular.otf",
            "BecauseWeLearn-Regular.otf",
            "BecauseWeMentor-Regular.otf",
            "BecauseWeOrganize-Regular.otf",
        ),
    ),
    HandFont("Breip", "fonts-breip", "OFL-1.0", ("Breip.ttf",)),
    HandFont("Humor Sans", "fonts-humor-sans", "OFL-1.1", ("Humor-Sans.ttf",)),
    HandFont("Klee One", "fonts-klee", "OFL-1.1", ("KleeOne-Regular.ttf", "KleeOne-SemiBold.ttf")),
    HandFont("Comic Neue", "fonts-comic-neue", "OFL-1.1", ("ComicNeue-Regular.otf", "ComicNeue-Italic.otf")),
    HandFont("Kaushan Script", "fonts-kaushanscript", "OFL-1.1", ("KaushanScript-Regular.otf",)),
    HandFont("Rufscript", "fonts-rufscript", "GPL-3+ with font exception", ("Rufscript010.ttf",)),
    HandFont("Seto", "fonts-seto", "OFL-1.1", ("setofont.ttf",)),
    HandFont("Kiloji", "fonts-kiloji", "BSD-3-Clause", ("kiloji.ttf", "kiloji_b.ttf")),
)
INSTALL_HINT = "apt-get install " + " ".join(font.package for font in HAND_FONTS)


@dataclass
class FoundFonts:
    paths: list[Path]  # every font file found, in HAND_FONTS order
    names: list[str]  # the fonts with at least one file found
    missing: list[HandFont]

    def missing_line(self) -> str | None:
        """One line naming the fonts not found and how to install them, or None."""
        if not self.missing:
            return None
        names = ", ".join(font.name for font in self.missing)
        packages = " ".join(font.package for font in self.missing)
        return f"--styles: fonts not found: {names} (apt-get install {packages}); using the others"


def find_fonts(
    fonts: tuple[HandFont, ...] = HAND_FONTS, font_dirs: tuple[str, ...] = FONT_DIRS
) -> FoundFonts:
    """Where this machine keeps each font: searched under the usual folders, then asked of fontconfig."""
    on_disk: dict[str, Path] = {}
    for folder in font_dirs:
        root = Path(folder).expanduser()
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.suffix.lower() in (".ttf", ".otf"):
                    on_disk.setdefault(path.name, path)
    wanted = {name for font in fonts for name in font.files}
    if not wanted <= on_disk.keys():
        for path in _fontconfig_files():
            on_disk.setdefault(path.name, path)
    paths: list[Path] = []
    names: list[str] = []
    missing: list[HandFont] = []
    for font in fonts:
        found = [on_disk[name] for name in font.files if name in on_disk]
        paths += found
        (names.append(font.name) if found else missing.append(font))
    return FoundFonts(paths, names, missing)


def _fontconfig_files() -> list[Path]:
    if shutil.which("fc-list") is None:
        return []
    try:
        listed = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(line.strip().rstrip(":")) for line in listed.splitlines() if line.strip()]
