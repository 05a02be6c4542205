"""Where models and settings live: the shipped weights (:data:`SHIPPED_DIR`, inside the package) and the per-user
directories, configuration (server token) and data (user models, renders, datasets).

``REATIMBRE_CONFIG_DIR`` and ``REATIMBRE_DATA_DIR`` override the platform defaults, which is how tests
and portable installs keep everything in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "reatimbre"
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"


def config_dir() -> Path:
    """Directory for configuration and secrets (the server token); not created here."""
    override = os.environ.get("REATIMBRE_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Directory for user data: steered models, renders, generated datasets; not created here."""
    override = os.environ.get("REATIMBRE_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_models_dir() -> Path:
    """Where user (steered) models live, beside the shipped ones in ``models/weights``."""
    return data_dir() / "models"
