"""Optional dependencies: Ray (batch on a cluster), reapy (drive a running REAPER), DawDreamer (host plug-ins).

They are extras of the ``reatimbre`` package (``pip install 'reatimbre[ray]'``, ``[reapy]``, ``[plugins]``;
``python3 install.py --dev`` installs all of them). The features that need one import it through :func:`require`,
so a missing package is one clear line that says how to install it, not an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from models.errors import ReaTimbreError

#: Importable module -> (distribution on PyPI, the reatimbre extra that installs it).
EXTRAS = {
    "ray": ("ray", "ray"),
    "reapy": ("python-reapy", "reapy"),
    "dawdreamer": ("dawdreamer", "plugins"),
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"reapy.reascript_api"``) for ``purpose``, or raise one line saying what to install."""
    top = module.split(".")[0]
    distribution, extra = EXTRAS[top]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the package is there but something it needs is broken: show the real error
        raise ReaTimbreError(
            f"{purpose} needs the {distribution} package, which is not installed: "
            f"pip install 'reatimbre[{extra}]' (python3 install.py --dev installs every extra)"
        ) from None
