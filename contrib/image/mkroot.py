#!/usr/bin/python3
"""Assemble the runtime root of the alertik image from the builder's Debian.

Runs inside the Dockerfile's builder stage (Debian, as root), with the Python
the image will use. It copies into DEST, which the final stage takes as its
only base layer:

* the interpreter and its standard library (Debian's python3.X packages),
  minus the modules an unattended syslog daemon never imports, as bytecode
  only (half the size of sources and bytecode; os.py stays, by which Python
  finds its prefix, although os itself is frozen into the interpreter);
* Debian's builds of pyzmq and google-re2 (python3-zmq, python3-re2);
* every shared library those need, found by asking the dynamic loader
  (ldd), not by package dependencies, which would bring in perl via tzdata's
  debconf, readline, Berkeley DB and the rest;
* busybox, for a shell (`/container shell` on RouterOS, `docker exec`);
* the time zone database, so that TZ sets the time in alert texts;
* /etc/passwd and /etc/group with the alertik user, and the copyright file
  and dpkg status of every Debian package a file came from (scanners such as
  Trivy and Grype read /var/lib/dpkg/status.d/).

Bytecode is compiled afterwards by the Dockerfile. See docs/CONTAINER.md.
"""

from __future__ import annotations

import os
import py_compile
import shutil
import subprocess
import sys

UID = 10001
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
STDLIB = f"/usr/lib/{PY}"

# Python comes from these packages; pyzmq and re2 from Debian's builds.
PY_PACKAGES = [
    f"{PY}-minimal",
    f"lib{PY}-minimal",
    f"lib{PY}-stdlib",
    "python3-minimal",  # /usr/bin/python3, which the venv points at
    "python3-zmq",
    "python3-re2",
]
OTHER_PACKAGES = ["busybox", "tzdata"]

# Standard library parts nothing in alertik (nor supervisor, requests, pyzmq)
# imports. Each drops a shared library too: readline and curses pull in
# ncurses and readline, dbm Berkeley DB. Test modules are for CPython's tests.
STDLIB_DROP_DIRS = {
    "__phello__",
    "_pyrepl",  # the interactive prompt's editor; `python -i` still works
    "curses",
    "dbm",
    "ensurepip",
    "idlelib",
    "lib2to3",
    "pydoc_data",  # the topics behind help(); 0.5 MB
    "test",
    "tkinter",
    "turtledemo",
    "unittest",
    "venv",
}
# Tools for people at a prompt.
STDLIB_DROP_FILES = {
    "antigravity.py",
    "doctest.py",
    "pdb.py",
    "pydoc.py",
    "tabnanny.py",
    "this.py",
    "turtle.py",
    "webbrowser.py",
}
STDLIB_DROP_MODULES = {
    "_ctypes_test",
    "_curses",
    "_curses_panel",
    "_dbm",
    "_gdbm",
    "_testbuffer",
    "_testcapi",
    "_testclinic",
    "_testclinic_limited",
    "_testexternalinspection",
    "_testimportmultiple",
    "_testinternalcapi",
    "_testlimitedcapi",
    "_testmultiphase",
    "_testsinglephase",
    "_xxtestfuzz",
    "readline",
    "xxlimited",
    "xxlimited_35",
    "xxsubtype",
}
# pyzmq's CFFI backend (for PyPy) and the files Debian ships for people.
DROP_PREFIXES = (
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/lintian/",
    "/usr/share/bug/",
    "/usr/share/menu/",
    "/usr/lib/python3/dist-packages/zmq/backend/cffi/",
)


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def dpkg_files(package: str) -> list[str]:
    return [line for line in run("dpkg-query", "-L", package).splitlines() if line]


def wanted(path: str) -> bool:
    if path.startswith(DROP_PREFIXES) or "/__pycache__/" in path:
        return False
    if path.startswith(STDLIB + "/"):
        rest = path[len(STDLIB) + 1 :]
        if rest.split("/", 1)[0] in STDLIB_DROP_DIRS or rest in STDLIB_DROP_FILES:
            return False
        if rest.startswith("lib-dynload/"):
            module = rest[len("lib-dynload/") :].split(".", 1)[0]
            return module not in STDLIB_DROP_MODULES
    return True


def copy(dest: str, path: str) -> str | None:
    """Copy path into dest the way it is in /: each symlink met on the way
    (merged /usr's /lib, a library's soname link) is recreated as a symlink
    and followed. Returns the real path of what was copied, or None for a
    directory."""
    path = os.path.normpath(path)
    parts = path.strip("/").split("/")
    current = "/"
    for i, part in enumerate(parts):
        current = os.path.join(current, part)
        target = dest + current
        if os.path.islink(current):
            if not os.path.lexists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(os.readlink(current), target)
            link = os.readlink(current)
            resolved = os.path.normpath(
                os.path.join(os.path.dirname(current), link)
                if not link.startswith("/")
                else link
            )
            rest = "/".join(parts[i + 1 :])
            return copy(dest, os.path.join(resolved, rest) if rest else resolved)
        if os.path.isdir(current):
            if not os.path.isdir(target):
                os.makedirs(target)
                shutil.copystat(current, target)
            continue
        if not os.path.lexists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(current, target)
        return current
    return None


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed_libraries(path: str) -> set[str]:
    """The libraries the dynamic loader maps for path (and the loader)."""
    result = subprocess.run(["ldd", path], capture_output=True, text=True)
    found = set()
    for line in result.stdout.splitlines():
        words = line.split()
        if "=>" in words:
            where = words[words.index("=>") + 1]
            if where == "not":
                sys.exit(f"mkroot: {path}: {line.strip()}")
            found.add(where)
        elif words and words[0].startswith("/"):
            found.add(words[0])
    return found


def owners() -> dict[str, str]:
    """Which installed package each file belongs to, from dpkg's file lists
    (one dpkg-query -S per file takes minutes under emulation)."""
    found: dict[str, str] = {}
    info = "/var/lib/dpkg/info"
    for name in sorted(os.listdir(info)):
        if name.endswith(".list"):
            with open(os.path.join(info, name)) as f:
                for line in f:
                    found.setdefault(line.rstrip("\n"), name[: -len(".list")])
    return found


def bytecode_only(dest: str, tree: str) -> None:
    """Replace every .py under tree by its bytecode, next to it (module.pyc).

    Python loads such sourceless modules directly. Tracebacks still name the
    file and line, without the source text. Hash-based and unchecked: nothing
    is stat'ed or compared at import. A link (Debian's _sysconfigdata and
    sitecustomize are) becomes the bytecode of what it points to."""
    root = dest + tree
    sources = [
        os.path.join(directory, name)
        for directory, _, files in os.walk(root)
        for name in files
        if name.endswith(".py") and os.path.join(directory, name) != root + "/os.py"
    ]
    for path in sources:
        source = path
        while os.path.islink(source):
            link = os.readlink(source)
            base = dest if link.startswith("/") else os.path.dirname(source)
            source = os.path.normpath(base + "/" + link)
        py_compile.compile(
            source,
            cfile=path + "c",
            dfile=path[len(dest) :],
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    for path in sources:
        os.unlink(path)


def main() -> None:
    dest = os.path.abspath(sys.argv[1])
    os.makedirs(dest)
    # Merged /usr: /bin, /lib (and /lib64 or /lib32) are links into /usr.
    for name in os.listdir("/"):
        if os.path.islink("/" + name) and os.readlink("/" + name).startswith("usr/"):
            os.symlink(os.readlink("/" + name), os.path.join(dest, name))

    copied: set[str] = set()
    for package in PY_PACKAGES + OTHER_PACKAGES:
        for path in dpkg_files(package):
            if wanted(path) and not os.path.isdir(path):
                real = copy(dest, path)
                if real:
                    copied.add(real)

    bytecode_only(dest, STDLIB)

    # busybox's applets, as links next to it; sh is the one that matters.
    busybox = "/usr/bin/busybox"
    for applet in run(busybox, "--list").split():
        link = os.path.join(dest, "usr/bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)

    # Every shared library any ELF file needs, until nothing new turns up;
    # and glibc's compatibility stubs, which manylinux wheels (such as
    # charset_normalizer's) still link although glibc 2.34 emptied them.
    libc = next(p for p in needed_libraries(sys.executable) if "/libc.so" in p)
    for stub in ("libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1"):
        path = os.path.join(os.path.dirname(libc), stub)
        if os.path.exists(path):
            copied.add(copy(dest, path) or path)
    todo = [p for p in copied if is_elf(p)]
    seen = set(todo)
    while todo:
        for library in needed_libraries(todo.pop()):
            real = copy(dest, library)
            if real and real not in seen:
                seen.add(real)
                copied.add(real)
                todo.append(real)

    # /etc: the alertik user, and name resolution as glibc would default.
    etc = os.path.join(dest, "etc")
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write(
            "root:x:0:0:root:/root:/bin/sh\n"
            f"alertik:x:{UID}:{UID}:alertik:/var/lib/alertik:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
    with open(os.path.join(etc, "group"), "w") as f:
        f.write(f"root:x:0:\nalertik:x:{UID}:\nnogroup:x:65534:\n")
    with open(os.path.join(etc, "nsswitch.conf"), "w") as f:
        f.write("passwd: files\ngroup: files\nhosts: files dns\n")
    copy(dest, "/usr/lib/os-release")
    os.symlink("../usr/lib/os-release", os.path.join(etc, "os-release"))

    # Provenance: the copyright and dpkg record of each package used.
    owner = owners()
    packages = {owner[path] for path in copied if path in owner}
    status = os.path.join(dest, "var/lib/dpkg/status.d")
    os.makedirs(status)
    for package in sorted(packages):
        name = package.split(":")[0]
        with open(os.path.join(status, name), "w") as f:
            f.write(run("dpkg-query", "-s", package))
        notice = f"/usr/share/doc/{name}/copyright"
        if os.path.exists(notice):
            copy(dest, notice)

    # Writable places: the user's own, and a world-writable /tmp.
    tmp = os.path.join(dest, "tmp")
    os.makedirs(tmp)
    os.chmod(tmp, 0o1777)
    for path in ("log", "var/lib/alertik", "run/alertik"):
        os.makedirs(os.path.join(dest, path), mode=0o755)
        os.chown(os.path.join(dest, path), UID, UID)
    os.makedirs(os.path.join(dest, "root"), mode=0o700)

    print(f"mkroot: {len(copied)} files from {len(packages)} packages", file=sys.stderr)


if __name__ == "__main__":
    main()
