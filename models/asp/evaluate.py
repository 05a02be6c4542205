"""``reatimbre match-eval``: the paper's Tables 1–4 for our synths, baselines beside them, LSD by timbre group.

For every test clip (patches no model trained or validated on) and every method: the inferred patch is rendered
at the clip's note and compared with the clip (LSD, dB, :func:`models.metrics.lsd_db`); continuous parameters
are compared in the encoded 0..1 space (MSE) and categorical ones by class (accuracy over the synth's one-hot
groups). Methods: each model variant, and three baselines — a random training patch of the synth, the training
patch whose clip is nearest the test clip by mel distance, and the most common class (continuous parameters at
their training mean). Timbre groups: the clips' HPSS harmonic share in 0–20 … 80–100 %.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.asp.data import MatchData
from models.asp.infer import (
    candidate_vectors,
    closest_candidate,
    closest_native,
    heard_distance,
    infer_vectors,
    render_distance,
    render_mel,
)
from models.asp.nets import AspModel
from models.asp.refine import guide_from_guesses, refine_patch
from models.errors import ReaTimbreError
from models.metrics import lsd_db
from models.synth.match_synths import MatchSynth, match_synth
from models.synth.spaces import Layout

BASELINES = ("random_preset", "nearest_preset", "most_common")
TIMBRE_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)
REFINED = "refined"
"""The suffix of a best-of row whose patches were then refined by ear (``joint_encoder, best of 12, refined``)."""


def parameter_errors(predicted: np.ndarray, truth: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Per row: continuous MSE (NaN without continuous slots) and categorical accuracy (NaN without groups)."""
    if layout.continuous:
        index = list(layout.continuous)
        mse = np.mean((predicted[:, index] - truth[:, index]) ** 2, axis=1)
    else:
        mse = np.full(len(truth), np.nan)
    if layout.groups:
        hits = [
            np.argmax(predicted[:, s : s + n], axis=1) == np.argmax(truth[:, s : s + n], axis=1)
            for s, n in layout.groups
        ]
        accuracy = np.mean(np.stack(hits, axis=1), axis=1)
    else:
        accuracy = np.full(len(truth), np.nan)
    return mse, accuracy


def most_common_vector(train: np.ndarray, layout: Layout) -> np.ndarray:
    """Continuous slots at their training mean, each group's most frequent class."""
    vector = train.mean(axis=0)
    for start, classes in layout.groups:
        counts = np.bincount(np.argmax(train[:, start : start + classes], axis=1), minlength=classes)
        vector[start : start + classes] = np.eye(classes)[int(np.argmax(counts))]
    return vector


def nearest_rows(queries: np.ndarray, pool: np.ndarray, count: int = 1) -> np.ndarray:
    """For each query spectrogram, the index of the pool spectrogram nearest by mean squared mel difference
    (``count`` above 1: the indices of the ``count`` nearest, nearest first, shape (n, count))."""
    q = queries.reshape(len(queries), -1).astype(np.float32)
    p = pool.reshape(len(pool), -1).astype(np.float32)
    p_norm = np.sum(p * p, axis=1)
    nearest = np.empty((len(q), count), dtype=np.int64)
    for start in range(0, len(q), 64):
        chunk = q[start : start + 64]
        distance = p_norm[None, :] - 2.0 * chunk @ p.T
        nearest[start : start + 64] = np.argsort(distance, axis=1, kind="stable")[:, :count]
    return nearest[:, 0] if count == 1 else nearest


def best_of_label(method: str, candidates: int) -> str:
    """The row name of a method that renders ``candidates`` guesses per clip and keeps the closest."""
    return f"{method}, best of {candidates}"


def _stats(values: np.ndarray) -> dict[str, float | None]:
    values = values[np.isfinite(values)]
    if not values.size:
        return {"mean": None, "std": None}
    return {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}


def evaluate_synth(
    data: MatchData,
    models: dict[str, AspModel],
    max_clips: int = 0,
    seed: int = 0,
    adapter: MatchSynth | None = None,
    on_clip: Callable[[], None] | None = None,
    candidates: int = 1,
    refine: int | None = 0,
) -> dict[str, Any]:
    """Every method's per-clip LSD, parameter MSE and accuracy on one synth's test clips (raw arrays inside).

    ``candidates`` above 1 adds, per model, a row that renders that many of its guesses
    (:func:`models.asp.infer.candidate_vectors`) and keeps the closest, and beside them the same for the
    ``candidates`` nearest training patches, so a render check is judged against a baseline given the same.
    ``refine`` (renders; None: the synth's :attr:`~models.synth.match_synths.MatchSynth.refine_renders`) adds
    to each of those rows one that refines its patch by ear (:func:`models.asp.refine.refine_patch`), as
    ``match`` does."""
    rng = np.random.default_rng(seed)
    test, train = data.rows("test"), data.rows("train")
    for split, rows in (("test", test), ("training", train)):
        if not len(rows):
            raise ReaTimbreError(f"{data.folder} holds no {split} clips: render more patches (match-data --patches)")
    if max_clips and len(test) > max_clips:
        test = np.sort(rng.choice(test, max_clips, replace=False))
    adapter = adapter or match_synth(data.synth)
    layout = Layout.from_json(data.space["layout"])
    truth = data.params[test]
    targets = data.mel_db80[test].astype(np.float32)
    notes = [int(n) for n in data.note[test]]
    vectors: dict[str, np.ndarray] = {name: infer_vectors(model, targets, data.synth) for name, model in models.items()}
    random_rows = rng.choice(train, len(test))
    nearest = train[nearest_rows(targets, data.mel_db80[train])]
    vectors["random_preset"] = data.params[random_rows]
    vectors["nearest_preset"] = data.params[nearest]
    vectors["most_common"] = np.repeat(most_common_vector(data.params[train], layout)[None], len(test), axis=0)
    stored = {"random_preset": random_rows, "nearest_preset": nearest}
    results: dict[str, Any] = {}
    for method, predicted in vectors.items():
        lsd = np.empty(len(test))
        for i in range(len(test)):
            if method in stored:  # a training patch renders from its stored values (exact)
                native = data.patch_values[int(data.patch_index[stored[method][i]])]
            else:
                native = adapter.space.decode(predicted[i])
            lsd[i] = float(lsd_db(render_mel(adapter, native, notes[i]), targets[i]))
            if on_clip is not None:
                on_clip()
        mse, accuracy = parameter_errors(predicted, truth, layout)
        results[method] = {"lsd_db": lsd, "mse": mse, "accuracy": accuracy}
    if candidates > 1:  # the best-of rows first; a model's first guess is the one just rendered
        first = {name: results[name]["lsd_db"] for name in models}
        renders = None if refine == 0 else adapter.renders_refining(refine)
        best = _best_of(data, models, test, train, adapter, layout, candidates, seed, on_clip, first, renders)
        results = {**best, **results}
    return {
        "synth": data.synth,
        "clips": len(test),
        "harmonic_share": data.harmonic_share[test],
        "methods": results,
        "refine_renders": renders if candidates > 1 else None,
    }


def _best_of(
    data: MatchData,
    models: dict[str, AspModel],
    test: np.ndarray,
    train: np.ndarray,
    adapter: MatchSynth,
    layout: Layout,
    candidates: int,
    seed: int,
    on_clip: Callable[[], None] | None,
    first_lsd: dict[str, np.ndarray],
    refine: int | None = None,
) -> dict[str, Any]:
    """Rows of methods that render ``candidates`` guesses per test clip and keep the closest. A model's first
    guess is its one guess, whose distance per clip ``first_lsd`` holds: it is not rendered again. With
    ``refine`` renders (0 too: a synth that ``match`` does not refine), each row is followed by its patches
    refined by ear (``<row>, refined``). For a synth whose renders vary (amsynth, Kars) a kept patch's distance
    is that of one more render (:func:`~models.asp.infer.heard_distance`), not the luckiest of those that chose it."""
    targets = data.mel_db80[test].astype(np.float32)
    truth = data.params[test]
    results: dict[str, Any] = {}
    guesses = {name: candidate_vectors(model, targets, data.synth, candidates, seed) for name, model in models.items()}
    neighbours = train[nearest_rows(targets, data.mel_db80[train], candidates)]
    guesses["nearest_preset"] = data.params[neighbours]
    for method, vectors in guesses.items():
        lsd = np.empty(len(test))  # the closest render's distance, where refining starts from
        heard = np.empty(len(test))  # the distance reported: one more render's, for a synth that is not repeatable
        chosen = np.empty_like(truth)
        for i in range(len(test)):
            note = int(data.note[test[i]])
            if method == "nearest_preset":  # training patches render from their stored values (exact)
                natives = [data.patch_values[int(data.patch_index[row])] for row in neighbours[i]]
                pick, lsd[i], _ = closest_native(adapter, natives, targets[i], note)
                native = natives[pick]
            else:
                pick, native, lsd[i] = closest_candidate(adapter, vectors[i, 1:], targets[i], note)
                pick += 1
                if first_lsd[method][i] <= lsd[i]:
                    pick, lsd[i] = 0, first_lsd[method][i]
                    native = adapter.space.decode(vectors[i, 0])
            heard[i] = heard_distance(adapter, native, note, targets[i], float(lsd[i]))
            chosen[i] = vectors[i, pick]
            if on_clip is not None:
                on_clip()
        mse, accuracy = parameter_errors(chosen, truth, layout)
        label = best_of_label(method, candidates)
        results[label] = {"lsd_db": heard, "mse": mse, "accuracy": accuracy}
        if refine is not None:
            results[f"{label}, {REFINED}"] = _refined(
                data, test, adapter, layout, chosen, lsd, refine, seed, on_clip, vectors
            )
    return results


def _refined(
    data: MatchData,
    test: np.ndarray,
    adapter: MatchSynth,
    layout: Layout,
    start: np.ndarray,
    start_lsd: np.ndarray,
    renders: int,
    seed: int,
    on_clip: Callable[[], None] | None,
    guesses: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each test clip's patch ``start`` (encoded) refined by ear with ``renders`` renders at the clip's note, guided
    by that clip's row of ``guesses`` (n, count, k; :func:`models.asp.refine.guide_from_guesses`) as ``match`` is."""
    lsd = np.empty(len(test))
    found = np.empty_like(start)
    for i in range(len(test)):
        target, note = data.mel_db80[test[i]].astype(np.float32), int(data.note[test[i]])
        measure = render_distance(adapter, note, target)
        guide = guide_from_guesses(guesses[i], layout)
        refined = refine_patch(adapter.space, start[i], float(start_lsd[i]), measure, renders, seed + i, guide)
        lsd[i], found[i] = heard_distance(adapter, refined.native, note, target, refined.lsd_db), refined.vector
        if on_clip is not None:
            on_clip()
    mse, accuracy = parameter_errors(found, data.params[test], layout)
    return {"lsd_db": lsd, "mse": mse, "accuracy": accuracy}


def tables(per_synth: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation per synth and method, all synths pooled (Table 1), and LSD by timbre group."""
    methods = list(per_synth[0]["methods"])
    out: dict[str, Any] = {"all": {}, "synths": {}, "timbre_groups": {}}
    for method in methods:
        out["all"][method] = {
            metric: _stats(np.concatenate([s["methods"][method][metric] for s in per_synth]))
            for metric in ("lsd_db", "mse", "accuracy")
        }
    for s in per_synth:
        out["synths"][s["synth"]] = {
            "clips": s["clips"],
            "refine_renders": s.get("refine_renders"),
            **{
                method: {metric: _stats(values) for metric, values in s["methods"][method].items()}
                for method in methods
            },
        }
    share = np.concatenate([s["harmonic_share"] for s in per_synth])
    for method in methods:
        lsd = np.concatenate([s["methods"][method]["lsd_db"] for s in per_synth])
        groups = {}
        for low, high in zip(TIMBRE_EDGES[:-1], TIMBRE_EDGES[1:], strict=True):
            inside = (share >= low) & (share < high)
            groups[f"{round(low * 100)}-{min(100, round(high * 100))}%"] = {
                "clips": int(inside.sum()),
                **_stats(lsd[inside]),
            }
        out["timbre_groups"][method] = groups
    return out


def goals(table: dict[str, Any], variants: Sequence[str], tuned: Sequence[str] = ()) -> dict[str, Any]:
    """The issue's relative goals, checked on the pooled table (True/False per goal and variant). ``tuned``: the
    variants whose weights were tuned by ear (``match-tune``); the joint encoder against the separate VAEs is the
    paper's comparison only when both or neither were (``joint_encoder_vs_separate_comparable``)."""
    all_ = table["all"]
    random_lsd = all_["random_preset"]["lsd_db"]["mean"]
    nearest_lsd = all_["nearest_preset"]["lsd_db"]["mean"]
    common_acc = all_["most_common"]["accuracy"]["mean"]
    checks: dict[str, Any] = {}
    for variant in variants:
        lsd = all_[variant]["lsd_db"]["mean"]
        checks[variant] = {
            "lsd_at_most_0.7_of_random": bool(lsd <= 0.7 * random_lsd),
            "lsd_below_nearest": bool(lsd < nearest_lsd),
            "accuracy_5_points_above_most_common": bool(all_[variant]["accuracy"]["mean"] >= common_acc + 0.05),
        }
    for row in all_:  # render-checked rows, judged against the nearest patches given the same renders
        variant, _, best_of = row.partition(", best of ")
        if best_of and variant in variants:
            lsd = all_[row]["lsd_db"]["mean"]
            checks[row] = {
                "lsd_at_most_0.7_of_random": bool(lsd <= 0.7 * random_lsd),
                "lsd_below_nearest": bool(lsd < nearest_lsd),
                "lsd_below_nearest_best_of_same": bool(
                    lsd < all_[f"nearest_preset, best of {best_of}"]["lsd_db"]["mean"]
                ),
                "accuracy_5_points_above_most_common": bool(all_[row]["accuracy"]["mean"] >= common_acc + 0.05),
            }
    if "joint_encoder" in all_ and "separate" in all_:
        ratio = all_["joint_encoder"]["lsd_db"]["mean"] / all_["separate"]["lsd_db"]["mean"]
        checks["joint_encoder_vs_separate_lsd_ratio"] = round(ratio, 3)
        checks["joint_encoder_at_most_0.95_of_separate"] = bool(ratio <= 0.95)
        checks["joint_encoder_vs_separate_comparable"] = ("joint_encoder" in tuned) == ("separate" in tuned)
    return checks


def _group_cell(stats: dict[str, Any]) -> str:
    return "–" if stats["mean"] is None else f"{stats['mean']:.2f} (n={stats['clips']})"


def markdown(table: dict[str, Any]) -> str:
    """The tables as Markdown: pooled (Table 1), then one per synth (Tables 2–4), then timbre groups."""

    def cell(stats: dict[str, float | None], scale: float = 1.0, digits: int = 2) -> str:
        if stats["mean"] is None:
            return "–"
        return f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f}"  # type: ignore[operator]

    def block(title: str, rows: dict[str, Any]) -> list[str]:
        lines = [
            f"**{title}**",
            "",
            "| method | LSD (dB) | continuous MSE | categorical accuracy (%) |",
            "|---|---|---|---|",
        ]
        for method, stats in rows.items():
            if method in ("clips", "refine_renders"):
                continue
            lsd, mse, accuracy = cell(stats["lsd_db"]), cell(stats["mse"], 1, 4), cell(stats["accuracy"], 100, 1)
            lines.append(f"| {method} | {lsd} | {mse} | {accuracy} |")
        return lines + [""]

    lines = block("All synths", table["all"])
    for synth, rows in table["synths"].items():
        refined = "" if rows.get("refine_renders") is None else f", refined with {rows['refine_renders']} renders"
        lines += block(f"{synth} ({rows['clips']} test clips{refined})", rows)
    methods = list(table["timbre_groups"])
    groups = list(table["timbre_groups"][methods[0]])
    lines += ["**LSD (dB) by timbre group (HPSS harmonic share)**", "", "| method | " + " | ".join(groups) + " |"]
    lines.append("|---|" + "---|" * len(groups))
    for method in methods:
        row = table["timbre_groups"][method]
        lines.append(f"| {method} | " + " | ".join(_group_cell(row[g]) for g in groups) + " |")
    return "\n".join(lines) + "\n"
