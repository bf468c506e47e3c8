"""What no image built by the bundle ships: apt's package caches and lists.

A base without Debian's `docker-clean` apt hook (scripts/make-base-image.sh's, made with
debootstrap) keeps both `*.bin` caches (about 80 MB) and the downloaded packages after
an `apt-get install`, unless the same step cleans them (issue 15: the image's size).
"""

from __future__ import annotations

import subprocess

LEFT_BY_APT = "find /var/cache/apt /var/lib/apt/lists -type f ! -name lock 2>/dev/null; true"


def test_no_image_keeps_apt_package_caches_or_lists(prepared: dict[str, str]):
    images = sorted({image for key, image in prepared.items() if key.endswith("_IMAGE")})
    assert len(images) >= 8, prepared  # the search covers every image the suite builds
    left = {}
    for image in images:
        files = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--user", "0"]
            + ["--entrypoint", "/bin/sh", image, "-c", LEFT_BY_APT],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if files:
            left[image] = files[:5]
    assert not left, left
