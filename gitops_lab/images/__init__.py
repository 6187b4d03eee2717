"""Image update automation (API.md §1b): the lab's registry, its "CI", ImagePolicy and write-back.
The controller runs inside the agent; the rest (registry, OCI builder, policy, setters) is usable alone.
"""

from gitops_lab.images.oci import build_image, ci_build, push_image
from gitops_lab.images.policy import ImageRef, PolicyError, parse_spec, select
from gitops_lab.images.registry import RegistryClient, RegistryError
from gitops_lab.images.registry_server import LabRegistry, RegistryServerError
from gitops_lab.images.semver import Range, RangeError, Version, parse_version

__all__ = [
    "ImageRef",
    "LabRegistry",
    "PolicyError",
    "Range",
    "RangeError",
    "RegistryClient",
    "RegistryError",
    "RegistryServerError",
    "Version",
    "build_image",
    "ci_build",
    "parse_spec",
    "parse_version",
    "push_image",
    "select",
]
