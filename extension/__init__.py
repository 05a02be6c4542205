"""ReaTimbre's REAPER bridge.

* :mod:`extension.reaper_ops` — REAPER operations written once against REAPER's API names (inside REAPER,
  or through reapy; the tests run them against an emulator of REAPER's binding in ``tests/reaper_emulator/``);
* :mod:`extension.rpp` / :mod:`extension.rpp_tree` — .RPP project files, edited without losing a byte;
* :mod:`extension.coach_steps` — the coach's suggestions in the shape write-back needs;
* :mod:`extension.midi_file`, :mod:`extension.osc_audition` — steps as a MIDI file, or sent live over OSC;
* :mod:`extension.osc` — the OSC bridge to REAPER's control surface (send parameter values, record feedback);
* :mod:`extension.reapy_bridge` — the hardened reapy server (loopback only, token, allow-listed, never blocks
  REAPER); :mod:`extension.reapy_client` — ReaTimbre's token-sending client for it;
* :mod:`extension.reaper_install` — ``install.py --reaper`` / ``--uninstall``.

Modules copied into REAPER (coach_steps, fx_names, reaper_ops, reapy_bridge and this file) use only the standard
library (reapy_bridge also needs models/atomic_files.py beside models/errors.py).
"""
