"""A REAPER emulator for the tests: the ReaScript API subset ReaTimbre uses, RPP load/save, reapy's wire
protocol and an OSC listener. REAPER itself is never run by the test suite."""

from .emulator import EmuParam, ReaperEmulator

__all__ = ["EmuParam", "ReaperEmulator"]
