"""Save/load round trip in a new process, the command line, and reproducibility."""

import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import PersistenceError
from conftest import grouped_data, quiet_fit


def test_save_load_in_new_process(fit_rs, tmp_path):
    path = tmp_path / "rs.hfit"
    fit_rs.save(path)
    code = (
        "import hierfit, sys\n"
        f"m = hierfit.load({str(path)!r})\n"
        "print(m.fixef().to_csv()); print(m.summary().to_text())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert fit_rs.fixef().to_csv() in out.stdout
    assert fit_rs.summary().to_text() in out.stdout


def test_load_errors(tmp_path, fit_ri):
    with pytest.raises(PersistenceError, match="no such file"):
        hierfit.load(tmp_path / "missing.hfit")
    good = tmp_path / "ri.hfit"
    fit_ri.save(good)
    truncated = tmp_path / "truncated.hfit"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(PersistenceError, match="damaged or truncated"):
        hierfit.load(truncated)
    newer = tmp_path / "newer.hfit"
    with zipfile.ZipFile(newer, "w") as zf:
        zf.writestr("meta.json", '{"format": "hierfit-fit", "format_version": 99, "hierfit_version": "9.0"}')
        zf.writestr("arrays/x.npy", b"")
    with pytest.raises(PersistenceError, match=r"format 99, newer than this hierfit reads.*saved by hierfit 9\.0"):
        hierfit.load(newer)
    foreign = tmp_path / "foreign.hfit"
    foreign.write_text("hello")
    with pytest.raises(PersistenceError):
        hierfit.load(foreign)


def test_interrupted_save_leaves_no_file(fit_ri, tmp_path, monkeypatch):
    import os

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        fit_ri.save(tmp_path / "x.hfit")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small_data():
    return grouped_data(12, 8, intercept=1.0, slope=0.5, sd=0.7, seed=3)


def test_same_seed_same_draws_different_seed_differs(small_data):
    a = quiet_fit("y ~ x + (1 | g)", small_data, draws=200, tune=200, chains=2, seed=5)
    b = quiet_fit("y ~ x + (1 | g)", small_data, draws=200, tune=200, chains=2, seed=5)
    c = quiet_fit("y ~ x + (1 | g)", small_data, draws=200, tune=200, chains=2, seed=6)
    np.testing.assert_array_equal(a.draws["b"].values, b.draws["b"].values)
    assert not np.array_equal(a.draws["b"].values, c.draws["b"].values)


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "hierfit", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_fit_save_and_summary(small_data, tmp_path):
    csv = tmp_path / "d.csv"
    small_data.to_csv(csv, index=False)
    out = _cli("fit", str(csv), "y ~ x + (1 | g)", "--draws", "200", "--tune", "200", "--chains", "2",
               "--seed", "1", "--no-progress", "--save", str(tmp_path / "m.hfit"))
    assert out.returncode == 0, out.stderr
    assert "Random effects:" in out.stdout and "Number of obs: 96, groups:  g, 12" in out.stdout
    assert "draws=" not in out.stdout and "tune=" not in out.stdout  # the CLI's own flag names
    assert "Traceback" not in out.stderr
    out2 = _cli("summary", str(tmp_path / "m.hfit"))
    assert out2.returncode == 0 and "Fixed effects:" in out2.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "/no/such.csv", "y ~ x"], "no such file"),
        (["fit", "{dir}", "y ~ x"], "is a directory"),
        (["fit", "{bad}", "y ~ x"], "cannot read"),
        (["fit", "{csv}", "y ~ x + (1 | )"], "empty grouping factor"),
        (["fit", "{csv}", "y ~ nope"], "unknown column 'nope'"),
        (["summary", "{csv}"], "is not a hierfit fit file"),
    ],
)
def test_cli_errors_are_one_clear_line(args, message, tmp_path, small_data):
    csv = tmp_path / "d.csv"
    small_data.to_csv(csv, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage\x00\n\x00")
    args = [a.format(dir=tmp_path, bad=bad, csv=csv) for a in args]
    out = _cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("hierfit: error:") and message in out.stderr


# -- the command line: never a traceback, never overwrite data, its own flag names ------------------------------------

def _main(capsys, *args):
    from hierfit.cli import main

    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_version_family_choices_and_descriptions(capsys):
    rc, out, _ = _main(capsys, "--version")
    assert rc == 0 and out.strip() == f"hierfit {hierfit.__version__}"
    rc, out, _ = _main(capsys, "fit", "--help")
    assert rc == 0 and all(name in out for name in hierfit.families.FAMILIES) and "--target-accept" in out
    rc, out, _ = _main(capsys, "summary", "--help")
    assert rc == 0 and "Print the lme4-style summary of a fit saved with" in out
    rc, _, err = _main(capsys, "fit", "d.csv", "y ~ x", "--family", "poison")
    assert rc == 2 and err.startswith("hierfit: error: argument --family: invalid choice: 'poison'")
    assert "gaussian" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["fit"], ["fit", "{csv}"], ["fit", "{csv}", "y ~ x", "--draws", "abc"],
    ["fit", "{csv}", "y ~ x", "--draws", "0"], ["fit", "{csv}", "y ~ x", "--chains", "-1"],
    ["fit", "{csv}", "y ~ x", "--seed", "1e3"], ["fit", "{csv}", "y ~ (((x"], ["fit", "{csv}", ""],
    ["fit", "{binary}", "y ~ x"], ["summary", "{csv}"], ["summary", "{dir}"], ["summary", "/no/such.hfit"],
    ["fit", "{csv}", "y ~ x", "--save", "{dir}"],
])
def test_cli_bad_input_is_one_line_and_exit_2(args, tmp_path, small_data, capsys):
    csv = tmp_path / "d.csv"
    small_data.to_csv(csv, index=False)
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    args = [a.format(csv=csv, binary=binary, dir=tmp_path) for a in args]
    rc, _, err = _main(capsys, *args)
    assert rc == 2, err
    assert err.startswith("hierfit: error: ") and "Traceback" not in err


def test_cli_semicolon_csv_names_the_separator(tmp_path, small_data, capsys):
    csv = tmp_path / "semi.csv"
    small_data.to_csv(csv, index=False, sep=";")
    rc, _, err = _main(capsys, "fit", str(csv), "y ~ x + (1 | g)")
    assert rc == 2 and "semicolon-separated (';')" in err and "--sep ';'" in err


def test_cli_save_never_overwrites_an_input_or_a_non_fit_file(tmp_path, small_data, capsys, monkeypatch):
    csv = tmp_path / "d.csv"
    small_data.to_csv(csv, index=False)
    before = csv.read_bytes()
    for target in (str(csv), str(tmp_path / "." / "d.csv")):
        rc, _, err = _main(capsys, "fit", str(csv), "y ~ x + (1 | g)", "--save", target)
        assert rc == 2 and "is the input file" in err and "refusing to overwrite" in err
    other = tmp_path / "notes.txt"
    other.write_text("my notes")
    rc, _, err = _main(capsys, "fit", str(csv), "y ~ x + (1 | g)", "--save", str(other))
    assert rc == 2 and "is not a hierfit fit file; refusing to overwrite" in err
    assert csv.read_bytes() == before and other.read_text() == "my notes"
    # the output folder is checked before sampling: these return at once
    rc, _, err = _main(capsys, "fit", str(csv), "y ~ x + (1 | g)", "--save", str(tmp_path / "no" / "m.hfit"))
    assert rc == 2 and "does not exist" in err
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    rc, _, err = _main(capsys, "fit", str(csv), "y ~ x + (1 | g)", "--save", str(tmp_path / "m.hfit"))
    assert rc == 2 and "is not writable" in err


def test_cli_messages_use_the_cli_flag_names():
    from hierfit.cli import with_flags

    text = ("Run more tune and draws (e.g. tune=2000, draws=2000); raise target_accept=0.95; "
            "sampler='pymc', chains=8; 0 divergent transitions; seed = 1; n_draws=3")
    assert with_flags(text) == ("Run more tune and draws (e.g. --tune 2000, --draws 2000); raise --target-accept "
                                "0.95; --sampler pymc, --chains 8; 0 divergent transitions; seed = 1; n_draws=3")
    remedy = "Likely reason: the funnel. Remedy: fit.update(parametrization={'g': 'noncentered'}, target_accept=0.95)."
    assert with_flags(remedy) == ("Likely reason: the funnel. Remedy: run again with --parametrization "
                                  "g=noncentered, --target-accept 0.95.")


def test_cli_parametrization_flag_follows_the_printed_remedy(capsys, monkeypatch):
    import hierfit
    from hierfit import cli

    seen = {}

    def fake_fit(*args, **kwargs):
        seen.update(kwargs)
        raise hierfit.HierfitError("stop here")

    monkeypatch.setattr(hierfit, "fit", fake_fit)
    rc, _, err = _main(capsys, "demo", "--parametrization", "school=noncentered,student=centered")
    assert rc == 2 and "stop here" in err
    assert seen["parametrization"] == {"school": "noncentered", "student": "centered"}
    rc, _, err = _main(capsys, "demo", "--parametrization", "sideways")
    assert rc == 2 and "'sideways' is not one of auto, noncentered, centered" in err
    rc, _, err = _main(capsys, "demo", "--parametrization", "g=tilted")
    assert rc == 2 and "'g=tilted': expected GROUP=CHOICE" in err
    assert cli.parametrization_arg("centered") == "centered"
