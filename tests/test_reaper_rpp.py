"""The offline .RPP backend on real projects saved by REAPER (tests/fixtures/rpp, see SOURCES.md)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from extension.rpp import RppProject, envelope_points, insert_envelope_point
from extension.rpp_tree import parse, quote_field, split_fields
from models.errors import ReaTimbreError

FIXTURES = Path(__file__).parent / "fixtures" / "rpp"
MULTITAKE = FIXTURES / "02_multitake_flac_r7_win.rpp"
PARMENV = FIXTURES / "05_parmenv_automation_win.rpp"


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    dst.write_bytes(src.read_bytes())
    return dst


def _changed_lines(before: bytes, after: bytes) -> tuple[list[str], list[str]]:
    """Lines removed from and added to ``before`` (with their line endings)."""
    a = before.decode().splitlines(keepends=True)
    b = after.decode().splitlines(keepends=True)
    removed, added = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


@pytest.mark.parametrize("fixture", [MULTITAKE, PARMENV])
def test_unedited_projects_round_trip_byte_for_byte(fixture: Path, tmp_path: Path) -> None:
    project = RppProject.load(_copy(fixture, tmp_path))
    out = project.save(tmp_path / "copy.rpp")
    assert out.read_bytes() == fixture.read_bytes()


def test_line_endings_are_detected_per_file() -> None:
    assert parse(MULTITAKE.read_bytes()).newline == "\r\n"
    assert parse(PARMENV.read_bytes()).newline == "\n"


def test_fields_quote_like_reaper() -> None:
    assert split_fields('NAME "06-Fear of Blank Guitar1.flac"') == ["NAME", "06-Fear of Blank Guitar1.flac"]
    assert split_fields("SAMPLES \"\" ''") == ["SAMPLES", "", ""]
    assert quote_field("has space") == '"has space"'
    assert quote_field('say "hi"') == "'say \"hi\"'"
    assert quote_field("") == '""'
    for text in ["a b", 'x"y z', "", "plain"]:
        assert split_fields(quote_field(text)) == [text]


def test_reads_items_takes_and_resolves_windows_relative_paths() -> None:
    project = RppProject.load(MULTITAKE)
    items = project.items()
    assert len(project.tracks()) == 10
    assert len(items) == 24
    first = items[0]
    assert first.position_seconds == 0 and first.length_seconds == pytest.approx(56.36308333333334)
    take = first.active_take
    assert take is not None and take.source_type == "FLAC"
    assert take.file == "Audio Files\\01-240309_2050.flac"
    assert take.path == FIXTURES / "Audio Files" / "01-240309_2050.flac"
    assert not take.path.exists()  # the media is missing: reading still works

    by_takes = {(i.track_index, i.index): i for i in items if len(i.takes) > 1}
    null_take = by_takes[(5, 2)]  # "TAKE NULL": an empty second take
    assert [t.empty for t in null_take.takes] == [False, True]
    assert null_take.active_take.index == 0
    sel = by_takes[(5, 3)]  # "TAKE SEL": the second take is active
    assert sel.active_take.index == 1 and sel.active_take.name.endswith("2218.flac")
    empty_first = by_takes[(5, 4)]  # an item whose first take is empty
    assert empty_first.takes[0].empty and empty_first.active_take.start_offset_seconds == pytest.approx(
        2.43668808492873
    )


def test_add_take_changes_only_the_item_and_keeps_crlf(tmp_path: Path) -> None:
    src = _copy(MULTITAKE, tmp_path)
    project = RppProject.load(src)
    item = next(i for i in project.items() if (i.track_index, i.index) == (5, 3))
    rendered = tmp_path / "renders" / "guitar-compressor.wav"
    updated = project.add_take(item, rendered, "guitar (neural: compressor)")
    out = project.save(tmp_path / "out.rpp")

    assert [t.name for t in updated.takes][-1] == "guitar (neural: compressor)"
    assert updated.active_take.index == 2 and updated.active_take.path == rendered
    assert updated.active_take.start_offset_seconds == pytest.approx(0)  # copied from the old active take
    removed, added = _changed_lines(src.read_bytes(), out.read_bytes())
    assert [r.strip() for r in removed] == ["TAKE SEL"]
    assert added[0].strip() == "TAKE" and all(line.endswith("\r\n") for line in added)
    assert any(line.strip() == 'FILE "renders/guitar-compressor.wav"' for line in added)
    assert sum(1 for line in added if line.strip() == "TAKE SEL") == 1

    reread = RppProject.load(out)
    again = next(i for i in reread.items() if (i.track_index, i.index) == (5, 3))
    assert again.active_take.name == "guitar (neural: compressor)"
    assert src.read_bytes() == MULTITAKE.read_bytes()  # the original is untouched


def test_save_never_overwrites_and_refuses_moving_relative_media(tmp_path: Path) -> None:
    src = _copy(MULTITAKE, tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    files_before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    project = RppProject.load(src)
    with pytest.raises(ReaTimbreError, match="already exists"):
        project.save(src)
    with pytest.raises(ReaTimbreError, match="relative media"):
        project.save(other / "x.rpp")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files_before  # a refusal writes nothing


def test_bad_files_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReaTimbreError, match="cannot read project"):
        RppProject.load(tmp_path / "missing.rpp")
    (tmp_path / "notes.rpp").write_text("hello\n")
    with pytest.raises(ReaTimbreError, match="not a REAPER project"):
        RppProject.load(tmp_path / "notes.rpp")
    truncated = PARMENV.read_bytes()[:5000]
    (tmp_path / "cut.rpp").write_bytes(truncated)
    with pytest.raises(ReaTimbreError, match="never closed"):
        RppProject.load(tmp_path / "cut.rpp")


def test_fx_chain_names_and_existing_envelopes() -> None:
    project = RppProject.load(PARMENV)
    chain = project.fx_chain(3)
    assert [fx.name for fx in chain] == [
        "VST3: FabFilter Pro-Q 3 (FabFilter)",
        "JS: loser/Saturation",
        "Cheap Radio HPF",  # the user's rename wins, as in REAPER's FX window
    ]
    assert chain[2].envelope_params == [
        (2, "Band 1 Frequency / Cheap Radio HPF"),
        (1, "Band 1 Enabled / Cheap Radio HPF"),
    ]
    assert project.find_fx(3, name="saturation").index == 1
    assert project.find_fx(0, name="ReaSynth").kind == "VST"
    with pytest.raises(ReaTimbreError, match="no single FX"):
        project.find_fx(3, name="Pro-Q")  # two plug-ins match
    env = project.fx_envelope(3, 2, 2)
    points = envelope_points(env)
    assert len(points) == 21 and points[1].time_seconds == pytest.approx(9.47368421)
    assert points[0].value == pytest.approx(0.76930552)


def test_parmenv_write_keeps_order_and_everything_else(tmp_path: Path) -> None:
    src = _copy(PARMENV, tmp_path)
    project = RppProject.load(src)
    existing = project.fx_envelope(3, 2, 2)
    insert_envelope_point(project.document, existing, 10.0, 0.25)
    created = project.fx_envelope(3, 1, 0, create=True, param_name="Drive")
    for t, v in [(4.0, 0.75), (1.0, 0.5)]:
        insert_envelope_point(project.document, created, t, v)
    out = project.save(tmp_path / "auto.rpp")

    removed, added = _changed_lines(src.read_bytes(), out.read_bytes())
    assert removed == []
    assert "        PT 10 0.25 0\n" in added and added[0].startswith("      <PARMENV 0 ")
    reread = RppProject.load(out)
    times = [p.time_seconds for p in envelope_points(reread.fx_envelope(3, 2, 2))]
    assert times == sorted(times) and 10.0 in times
    new_env = reread.fx_envelope(3, 1, 0)
    assert new_env is not None and new_env.params[:4] == ["0", "0", "1", "0.5"]
    assert new_env.params[4] == "Drive / JS: loser/Saturation"
    assert [(p.time_seconds, p.value) for p in envelope_points(new_env)] == [(1.0, 0.5), (4.0, 0.75)]
    assert reread.fx_chain(3)[1].envelope_params == [(0, "Drive / JS: loser/Saturation")]
    # the envelope went inside the JS plug-in's part of the chain, before its WAK line
    chain = reread.track(3).blocks("FXCHAIN")[0]
    kinds = [c.tag if hasattr(c, "tag") else c.key for c in chain.children]
    js = kinds.index("JS")
    assert kinds[js : js + 6] == ["JS", "JS_DIMS", "FLOATPOS", "FXID", "PARMENV", "WAK"]


def test_midi_item_with_cc_at_960_ppq(tmp_path: Path) -> None:
    src = _copy(PARMENV, tmp_path)
    project = RppProject.load(src)
    bar = project.bar_seconds()
    assert bar == pytest.approx(4 * 60 / 76)
    item = project.add_midi_item(0, position_seconds=bar, length_seconds=2 * bar, name="coach CC")
    for seconds, value in [(bar * 2, 100), (bar, 64), (bar * 1.5, 80)]:
        ppq = round(project.ppq_from_time(item, seconds))
        project.insert_cc(item, ppq, channel=0, cc=74, value=value)
    with pytest.raises(ReaTimbreError, match="beyond the end"):
        project.insert_cc(item, 960 * 9, 0, 74, 1)
    out = project.save(tmp_path / "midi.rpp")

    reread = RppProject.load(out)
    midi_item = reread.items(track=0)[0]
    assert midi_item.active_take.source_type == "MIDI"
    events = reread.midi_events(midi_item)
    assert [(e.ppq, e.status, e.data1, e.data2) for e in events] == [
        (0, 0xB0, 74, 64),
        (1920, 0xB0, 74, 80),
        (3840, 0xB0, 74, 100),
        (7680, 0xB0, 123, 0),  # REAPER's end-of-item marker stays last
    ]
    source = midi_item.block.blocks("SOURCE")[0]
    assert source.first_line("HASDATA").fields == ["HASDATA", "1", "960", "QN"]
    removed, _ = _changed_lines(src.read_bytes(), out.read_bytes())
    assert removed == []


def test_item_without_takes_gets_a_first_take(tmp_path: Path) -> None:
    text = (
        '<REAPER_PROJECT 0.1 "7.0/linux" 0\n  TEMPO 120 4 4\n  <TRACK\n    NAME dry\n'
        "    <ITEM\n      POSITION 2\n      LENGTH 1\n    >\n  >\n>\n"
    )
    project = RppProject.from_bytes(text.encode(), tmp_path / "p.rpp")
    item = project.items()[0]
    assert item.takes == []
    updated = project.add_take(item, tmp_path / "x.wav", "x")
    assert [t.name for t in updated.takes] == ["x"] and updated.active_take.path == tmp_path / "x.wav"
    assert "TAKE" not in [line.key for line in updated.block.lines()]


def test_cc_inserted_between_existing_midi_events(tmp_path: Path) -> None:
    src = _copy(FIXTURES / "midi_items_handwritten.rpp", tmp_path)
    project = RppProject.load(src)
    (item,) = project.selected_items()
    events = project.midi_events(item)
    assert [(e.ppq, e.status, e.selected, e.muted) for e in events] == [
        (0, 0x90, False, False),
        (480, 0xB0, True, False),
        (960, 0x80, False, True),
        (3840, 0xB0, False, False),
    ]
    assert project.ppq_from_time(item, 2.4 + 0.36) == pytest.approx(576)  # 100 bpm: 0.6 s per quarter note
    project.insert_cc(item, 600, channel=2, cc=74, value=64)
    out = project.save(tmp_path / "out.rpp")
    removed, added = _changed_lines(src.read_bytes(), out.read_bytes())
    assert [r.strip() for r in removed] == ["<X 240 0"]  # only the next event's delta changes
    assert [a.strip() for a in added] == ["E 120 b2 4a 40", "<X 120 0"]
    reread = RppProject.load(out)
    ticks = [(e.ppq, e.data1) for e in reread.midi_events(reread.items()[0])]
    assert ticks == [(0, 0x3C), (480, 1), (600, 74), (960, 0x3C), (3840, 123)]


def _project_with_chain(chain_lines: list[str]) -> bytes:
    body = "\n".join(f"      {line}" for line in chain_lines)
    return (
        '<REAPER_PROJECT 0.1 "7.22/linux-x86_64" 1726000000\n  <TRACK\n    NAME synth\n    <FXCHAIN\n'
        f"{body}\n    >\n  >\n>\n"
    ).encode()


def test_plugin_renames_come_from_each_formats_own_header_field() -> None:
    """Headers as REAPER writes them (public .RPP files): AU, CLAP and LV2 keep the rename in the 3rd field, VST
    and VST3 in the 4th; the AU's 4th field is its component type (a number), never a name."""
    data = _project_with_chain(
        [
            '<AU "AU: Ozone 12 Unlimiter (iZotope)" "iZotope: Ozone 12 Unlimiter" "" 1635083896 1514296652',
            ">",
            '<AU "AU: kHs Filter (Kilohearts)" "Kilohearts: kHs Filter" "Sweep" 1635083896 1181314156 1263424339',
            ">",
            '<CLAP "CLAP: Pro-Q 4 (FabFilter)" com.FabFilter.Pro-Q.4 ""',
            '  CFG 4 1273 710 ""',
            ">",
            '<CLAP "CLAPi: Surge XT (Surge Synth Team)" org.surge-synth-team.surge-xt "Lead synth"',
            ">",
            '<VST "VST3: Ozone 12 Vintage Limiter (iZotope)" "Ozone 12 Vintage Limiter.vst3" 0 "" 299732006{56}',
            ">",
            '<VST "VST3: Vital (Vital Audio)" Vital.vst3 0 "Pad" 1234{56} ""',
            ">",
            '<LV2 "LV2: Ratatouille (brummer) (Mono)" urn:brummer:ratatouille "Amp"',
            ">",
        ]
    )
    chain = RppProject.from_bytes(data).fx_chain(0)
    assert [(fx.kind, fx.name) for fx in chain] == [
        ("AU", "AU: Ozone 12 Unlimiter (iZotope)"),
        ("AU", "Sweep"),
        ("CLAP", "CLAP: Pro-Q 4 (FabFilter)"),
        ("CLAP", "Lead synth"),
        ("VST", "VST3: Ozone 12 Vintage Limiter (iZotope)"),
        ("VST", "Pad"),
        ("LV2", "Amp"),
    ]
    assert chain[3].plugin_name == "CLAPi: Surge XT (Surge Synth Team)"
    assert RppProject.from_bytes(data).find_fx(0, name="ozone 12 unlimiter").index == 0


def test_content_after_the_root_block_is_an_error() -> None:
    good = PARMENV.read_bytes()
    assert RppProject.from_bytes(good + b"\n\n  \n").to_bytes() == good + b"\n\n  \n"  # blank lines are kept
    for extra in (b">\n", b"  <TRACK\n  >\n", b"NAME stray\n"):
        with pytest.raises(ReaTimbreError, match=r"content after the project's closing '>' on line \d+"):
            RppProject.from_bytes(good + extra)


def test_corrupt_files_never_echo_raw_binary(tmp_path: Path) -> None:
    noise = bytes(range(256)) * 64
    cases = {
        "after.rpp": PARMENV.read_bytes() + noise,
        "tag.rpp": b'<REAPER_PROJECT 0.1 "7.0" 1\n  <\x00\x1b[2J\xff\xfe' + noise + b"\n",
        "binary.rpp": noise,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ReaTimbreError) as caught:
            RppProject.load(tmp_path / name)
        message = str(caught.value)
        assert message.isprintable(), (name, message)
        assert len(message) < len(str(tmp_path)) + 160, (name, message)
        assert "\\x00" in message or name == "binary.rpp"
