"""Check the assembled image root at build time; the Dockerfile runs this
inside it (chroot), with nothing of the builder around.

Imports every top-level package installed and every module of alertik, so a
missing shared library, standard-library module or package file fails the
build instead of the first start on a router. Warnings are errors: requests
only warns when charset_normalizer cannot be imported.
"""

import importlib
import importlib.metadata
import pkgutil
import sys
import warnings
from importlib import resources

warnings.simplefilter("error")

import alertik  # noqa: E402

# Debian's pyzmq records no file list, so it is named here; private names
# (google-re2's _re2, which Debian moved into re2/) come with their packages.
installed = set(importlib.metadata.packages_distributions()) | {"zmq"}
names = sorted(name for name in installed if not name.startswith("_"))
for name in names:
    importlib.import_module(name)
modules = [
    m.name
    for m in pkgutil.walk_packages(alertik.__path__, "alertik.")
    if not m.name.endswith("__main__")
]
for name in modules:
    importlib.import_module(name)
# The one data file alertik reads (a link in the source tree).
assert resources.files("alertik").joinpath("supervisord.conf").is_file()
print(
    f"verify: {len(names)} packages and {len(modules)} alertik modules import "
    f"on Python {sys.version.split()[0]}"
)
