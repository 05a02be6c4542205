"""Does ``reatimbre steer --memory auto`` pick the right memory class for real effects?

    python benchmarks/steer_memory.py               # every effect of the set, on both kinds of material
    python benchmarks/steer_memory.py --seconds 20

The set: third-party plug-ins from Debian packages, hosted headless through DawDreamer (``dragonfly-reverb-vst``: Hall,
Plate, Room; ``zam-plugins``: ZamDelay, ZamComp, ZaMaximX2, ZamTube; ``dpf-plugins-vst``: SoulForce, MaGigaverb), and
pedalboard's reverb, delay, compressor and distortion. Reverbs need ``reverb`` (the reverb network), delays ``long``,
compressors, limiters and distortions ``short``. Each effect gets two dry programs of generated material
(``models.material``, -90 dBFS noise floor): one with pauses between events (``pauses``) and the same with a sustained
pad at -30 dBFS underneath and the wet cut where the dry ends, so the dry never falls silent (``continuous``, as a song
region exported through the effect). The pair goes through ``prepare_pair`` and ``choose_memory`` exactly as ``reatimbre
steer`` does; each row prints the decision and its evidence. A plug-in whose package is not installed is listed as
skipped. Exit status 1 if any decision is wrong.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pedalboard

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.material import make_program  # noqa: E402
from models.rates import SAMPLE_RATE_HZ  # noqa: E402
from models.steer_memory import MemoryChoice, choose_memory  # noqa: E402
from models.steer_pair import prepare_pair  # noqa: E402

TAIL_SECONDS = 4.0  # rendered after the dry, so reverb and delay tails are in the wet
LXVST = Path("/usr/lib/lxvst")
VST = Path("/usr/lib/vst")


@dataclass(frozen=True)
class MemoryCase:
    """One real effect of the set, and the memory class it needs."""

    name: str
    kind: str  # reverb, delay, compressor, distortion
    expected: str  # "short", "long" or "reverb"
    package: str | None = None  # Debian package of a third-party plug-in; None: pedalboard
    plugin: Path | None = None
    parameters: dict[str, float] = field(default_factory=dict)  # host-normalised 0..1
    chain: tuple = ()  # pedalboard effects

    def available(self) -> bool:
        return self.plugin is None or self.plugin.exists()

    def process(self, dry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dry with room for the tail, wet) for a mono dry."""
        padded = np.pad(dry, (0, int(TAIL_SECONDS * SAMPLE_RATE_HZ)))
        if self.plugin is None:
            return padded, pedalboard.Pedalboard(list(self.chain))(padded[None, :], SAMPLE_RATE_HZ, reset=True)
        from models.plugin_effect import render_effect

        return padded, render_effect(self.plugin, dry, SAMPLE_RATE_HZ, self.parameters, TAIL_SECONDS)


CASES: tuple[MemoryCase, ...] = (
    MemoryCase(
        "Dragonfly Hall (2.5 s, 60 % dry)",
        "reverb",
        "reverb",
        "dragonfly-reverb-vst",
        LXVST / "DragonflyHallReverb-vst.so",
        {"Dry Level": 0.6, "Late Level": 0.4, "Decay": 0.2424, "Size": 0.4},
    ),
    MemoryCase(
        "Dragonfly Plate (1.5 s, 70 % dry)",
        "reverb",
        "reverb",
        "dragonfly-reverb-vst",
        LXVST / "DragonflyPlateReverb-vst.so",
        {"Dry Level": 0.7, "Wet Level": 0.3, "Decay": 0.1414},
    ),
    MemoryCase(
        "Dragonfly Room (0.8 s, 70 % dry)",
        "reverb",
        "reverb",
        "dragonfly-reverb-vst",
        LXVST / "DragonflyRoomReverb-vst.so",
        {"Dry Level": 0.7, "Late Level": 0.3, "Decay": 0.0707},
    ),
    MemoryCase(
        "MaGigaverb (DPF, default)",
        "reverb",
        "reverb",
        "dpf-plugins-vst",
        VST / "MaGigaverb-vst.so",
        {},
    ),
    MemoryCase(
        "ZamDelay (300 ms, feedback 0.3, 50 % wet)",
        "delay",
        "long",
        "zam-plugins",
        VST / "ZamDelay-vst.so",
        {"Time": 0.0375, "Feedback": 0.3, "Dry/Wet": 0.5},
    ),
    MemoryCase(
        "ZamComp (ratio 4, threshold -24 dB)",
        "compressor",
        "short",
        "zam-plugins",
        VST / "ZamComp-vst.so",
        {"Threshold": 0.7, "Ratio": 0.158, "Makeup": 0.2},
    ),
    MemoryCase(
        "ZaMaximX2 (limiter, threshold -12 dB)",
        "compressor",
        "short",
        "zam-plugins",
        VST / "ZaMaximX2-vst.so",
        {"Threshold": 0.6},
    ),
    MemoryCase(
        "ZamTube (drive 6)",
        "distortion",
        "short",
        "zam-plugins",
        VST / "ZamTube-vst.so",
        {"Tube Drive": 0.6},
    ),
    MemoryCase(
        "SoulForce (DPF, shape 0.8)",
        "distortion",
        "short",
        "dpf-plugins-vst",
        VST / "SoulForce-vst.so",
        {"Shape": 0.8},
    ),
    MemoryCase(
        "pedalboard Reverb (room 0.8, 40 % wet)",
        "reverb",
        "reverb",
        chain=(pedalboard.Reverb(room_size=0.8, damping=0.35, wet_level=0.4, dry_level=0.6),),
    ),
    MemoryCase(
        "pedalboard Delay (250 ms, feedback 0.3, mix 0.3)",
        "delay",
        "long",
        chain=(pedalboard.Delay(delay_seconds=0.25, feedback=0.3, mix=0.3),),
    ),
    MemoryCase(
        "pedalboard Compressor (-30 dB, 6:1, +10 dB)",
        "compressor",
        "short",
        chain=(pedalboard.Compressor(threshold_db=-30, ratio=6, attack_ms=5, release_ms=120), pedalboard.Gain(10)),
    ),
    MemoryCase(
        "pedalboard Distortion (25 dB)",
        "distortion",
        "short",
        chain=(pedalboard.Distortion(drive_db=25),),
    ),
)

MATERIALS = ("pauses", "continuous")


def material(kind: str, seconds: float, seed: int) -> np.ndarray:
    """Generated program material; ``continuous`` lays a -30 dBFS pad under it so the dry never pauses."""
    rng = np.random.default_rng(seed)
    program = make_program(seconds, SAMPLE_RATE_HZ, rng).astype(np.float64)
    if kind == "continuous":
        t = np.arange(program.size) / SAMPLE_RATE_HZ
        pad = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) / (i + 1) for i, f in enumerate((110, 165, 220)))
        program = program + 10 ** (-30 / 20) * pad / np.max(np.abs(pad)) * (1 + 0.3 * np.sin(2 * np.pi * 0.2 * t))
    elif kind != "pauses":
        raise ValueError(f"material must be one of {MATERIALS}, got {kind!r}")
    program = program + 10 ** (-90 / 20) * rng.standard_normal(program.size)
    return (0.9 * program / np.max(np.abs(program))).astype(np.float32)


def classify(case: MemoryCase, kind: str, seconds: float = 30.0, seed: int = 0) -> MemoryChoice:
    """The memory ``reatimbre steer`` would choose; ``continuous`` pairs end with the dry (no tail, no pause)."""
    program = material(kind, seconds, seed)
    dry, wet = case.process(program)
    if kind == "continuous":
        dry, wet = dry[: program.size], wet[:, : program.size]
    return choose_memory(prepare_pair(dry, wet, SAMPLE_RATE_HZ))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each dry program (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    wrong = 0
    print(f"| effect | kind | package | needs | {' | '.join(MATERIALS)} |")
    print("|---|---|---|---|" + "---|" * len(MATERIALS))
    details = []
    for case in CASES:
        if not case.available():
            print(f"| {case.name} | {case.kind} | {case.package} | {case.expected} | skipped: not installed |")
            continue
        cells = []
        for kind in MATERIALS:
            start = time.monotonic()
            choice = classify(case, kind, args.seconds, args.seed)
            ok = choice.memory == case.expected
            wrong += not ok
            e = choice.evidence
            tail = "none" if e["envelope_tail_seconds"] is None else f"{e['envelope_tail_seconds']:.2f} s"
            cells.append(
                f"{choice.memory} {'✓' if ok else '✗'} (tail {tail}, IR {e['impulse_ring_seconds']:.2f} s "
                f"{e['impulse_late_excess_db']:+.0f} dB, density {e['impulse_ring_density']:.2f})"
            )
            details.append(f"{case.name} / {kind} ({time.monotonic() - start:.1f} s): {choice.reason}")
        print(f"| {case.name} | {case.kind} | {case.package or 'pedalboard'} | {case.expected} | {' | '.join(cells)} |")
    print()
    for line in details:
        print(line)
    print(f"\n{wrong} wrong decision(s)")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
