"""Command line: ``hierfit fit``, ``hierfit summary``, ``hierfit demo``.

It uses only the public ``hierfit`` package.  Every error is one line
``hierfit: error: ...`` and exit status 2 (130 when interrupted); warnings name the
command's own flags (``--draws 2000``, not ``draws=2000``).  ``--save`` never
overwrites an input file or a file that is not a hierfit fit, and its folder is
checked before sampling starts.

Example
-------
.. code-block:: console

    $ hierfit fit exam.csv "normexam ~ standLRT + sex + (standLRT | school)" --seed 1 --save exam.hfit
    $ hierfit summary exam.hfit
    $ hierfit demo
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

import hierfit

DEMO_FORMULA = "normexam ~ standLRT + sex + (standLRT | school)"

#: keyword arguments of hierfit.fit -> this command's flags (for messages)
FLAGS = {"draws": "--draws", "tune": "--tune", "chains": "--chains", "seed": "--seed", "sampler": "--sampler",
         "family": "--family", "target_accept": "--target-accept", "cores": "--cores",
         "parametrization": "--parametrization"}
_KWARG = re.compile(r"(?<![\w.-])(" + "|".join(FLAGS) + r")=(\{[^}]*\}|'[^']*'|\"[^\"]*\"|[\w.+-]+)")
_PAIR = re.compile(r"""['"]([^'"]+)['"]\s*:\s*['"]([^'"]+)['"]""")
_CHOICES = ("auto", "noncentered", "centered")
_UPDATE = re.compile(r"fit\.update\((.*?)\)(?=\.(?:\s|$))", re.M)
_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}


class CliError(Exception):
    """A bad command line (argparse's errors), reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block; main() prints it
        raise CliError(f"{message} (see '{self.prog} --help')")


def with_flags(text: str) -> str:
    """Rewrite ``draws=2000`` in a message as this command's ``--draws 2000``.

    Example
    -------
    >>> with_flags("Run more tune and draws (e.g. tune=2000, draws=2000); target_accept=0.95")
    'Run more tune and draws (e.g. --tune 2000, --draws 2000); --target-accept 0.95'
    >>> with_flags("Remedy: fit.update(draws=3000).")
    'Remedy: run again with --draws 3000.'
    >>> with_flags("Remedy: fit.update(parametrization={'g': 'noncentered'}, target_accept=0.95).")
    'Remedy: run again with --parametrization g=noncentered, --target-accept 0.95.'
    """
    text = _UPDATE.sub(lambda m: f"run again with {m.group(1)}", text)
    return _KWARG.sub(lambda m: f"{FLAGS[m.group(1)]} {_flag_value(m.group(2))}", text)


def _flag_value(value: str) -> str:
    """A keyword's value as the flag takes it: ``{'g': 'noncentered'}`` -> ``g=noncentered``."""
    if value.startswith("{"):
        return ",".join(f"{k}={v}" for k, v in _PAIR.findall(value))
    return value.strip("'\"")


def parametrization_arg(text: str):
    """The ``--parametrization`` flag's value: one choice for every term, or ``GROUP=CHOICE,...`` per term.

    Example
    -------
    >>> parametrization_arg("noncentered")
    'noncentered'
    >>> parametrization_arg("g=noncentered,school=centered")
    {'g': 'noncentered', 'school': 'centered'}
    """
    if "=" not in text:
        if text not in _CHOICES:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(_CHOICES)} (or GROUP=CHOICE,...)")
        return text
    out = {}
    for part in text.split(","):
        group, _, choice = part.partition("=")
        if not group.strip() or choice.strip() not in _CHOICES:
            raise argparse.ArgumentTypeError(f"{part!r}: expected GROUP=CHOICE with CHOICE one of "
                                             f"{', '.join(_CHOICES)}")
        out[group.strip()] = choice.strip()
    return out


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hierfit", description="Bayesian mixed models with lme4/brms formulas.")
    p.add_argument("--version", action="version", version=f"hierfit {hierfit.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{fit,summary,demo}")
    fam_names = list(hierfit.families.FAMILIES)

    def sampling_args(sp):
        sp.add_argument("--family", default="gaussian", choices=fam_names, metavar="FAMILY",
                        help=f"response family, one of: {', '.join(fam_names)} (default: gaussian)")
        sp.add_argument("--draws", type=int, default=1000, help="post-warm-up draws per chain (default 1000)")
        sp.add_argument("--tune", type=int, default=1000, help="warm-up iterations per chain (default 1000)")
        sp.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
        sp.add_argument("--seed", type=int, default=None, help="random seed (same seed, same draws)")
        sp.add_argument("--target-accept", type=float, default=0.8, dest="target_accept",
                        help="NUTS target acceptance rate in (0, 1) (default 0.8; raise to 0.95 after divergences)")
        sp.add_argument("--parametrization", type=parametrization_arg, default="auto", metavar="CHOICE",
                        help="auto (default), noncentered, centered, or per term GROUP=CHOICE,... "
                             "(e.g. g=noncentered)")
        sp.add_argument("--sampler", default="nutpie", choices=["nutpie", "pymc"], help="default: nutpie")
        sp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        sp.add_argument("--save", metavar="FILE",
                        help="save the fit to FILE (read it back with 'hierfit summary FILE'); never overwrites "
                             "the data file or a file that is not a hierfit fit")

    f = sub.add_parser("fit", help="fit a model to a CSV file and print its summary",
                       description="Fit a Bayesian mixed model to the data in a CSV file and print its summary.")
    f.add_argument("data", help="CSV file (first row: column names)")
    f.add_argument("formula", help='e.g. "normexam ~ standLRT + sex + (standLRT | school)"')
    f.add_argument("--sep", default=",", help="column separator of the CSV file (default ','; e.g. --sep ';')")
    sampling_args(f)
    s = sub.add_parser("summary", help="print the summary of a saved fit",
                       description="Print the lme4-style summary of a fit saved with 'hierfit fit ... --save FILE' "
                                   "or fit.save(FILE) in Python. Fit files hold data only; nothing in them is run.")
    s.add_argument("file", help="a hierfit fit file (.hfit)")
    d = sub.add_parser("demo", help=f"fit {DEMO_FORMULA} on the bundled Exam data and print the summary",
                       description=f"Fit {DEMO_FORMULA} to the bundled Exam data (4,059 students in 65 schools) "
                                   "and print the summary.")
    sampling_args(d)
    d.set_defaults(seed=1)  # the same output every time: README.md shows it
    return p


def _read_csv(path: str, sep: str):
    import pandas as pd

    try:
        df = pd.read_csv(path, sep=sep)
    except FileNotFoundError:
        raise hierfit.HierfitError(f"no such file: {path!r}") from None
    except IsADirectoryError:
        raise hierfit.HierfitError(f"{path!r} is a directory, not a CSV file") from None
    except PermissionError:
        raise hierfit.HierfitError(f"cannot read {path!r}: permission denied") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise hierfit.HierfitError(f"cannot read {path!r} as CSV: {msg}") from None
    if df.shape[1] == 1:
        header = str(df.columns[0])
        found = [s for s in _SEPARATORS if s != sep and s in header]
        if found:
            s = found[0]
            shown = "'\\t'" if s == "\t" else repr(s)
            raise hierfit.HierfitError(
                f"{path!r} has a single column {header!r}: its columns look {_SEPARATORS[s]}-separated "
                f"({shown}), not separated by {sep!r}; pass --sep {shown}")
    df.attrs["name"] = path
    return df


def _check_save_target(target: str, inputs: list[str]) -> None:
    """Refuse a --save target that is an input file, a non-fit file, or in a missing/read-only folder."""
    real = os.path.realpath(target)
    for inp in inputs:
        if os.path.exists(inp) and (os.path.realpath(inp) == real or
                                    (os.path.exists(target) and os.path.samefile(inp, target))):
            raise hierfit.HierfitError(f"--save {target!r} is the input file {inp!r}; refusing to overwrite it "
                                       "(choose another name, e.g. model.hfit)")
    if os.path.isdir(target):
        raise hierfit.HierfitError(f"--save {target!r} is a directory; give a file name, e.g. {target}/model.hfit")
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise hierfit.HierfitError(f"--save {target!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise hierfit.HierfitError(f"--save {target!r}: folder {folder!r} is not writable")
    if os.path.exists(target):
        try:
            with open(target, "rb") as fh:
                head = fh.read(2)
        except OSError as err:
            raise hierfit.HierfitError(f"--save {target!r}: cannot check the existing file ({err.strerror})") from None
        if head != b"PK" and os.path.getsize(target) > 0:
            raise hierfit.HierfitError(f"--save {target!r} exists and is not a hierfit fit file; refusing to "
                                       "overwrite it (choose another name)")


def _fit_and_print(args, data, inputs: list[str]) -> None:
    if args.save:
        _check_save_target(args.save, inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = hierfit.fit(args.formula, data, family=args.family, draws=args.draws, tune=args.tune,
                        chains=args.chains, seed=args.seed, sampler=args.sampler, target_accept=args.target_accept,
                        parametrization=args.parametrization, progressbar=not args.no_progress, warn=False)
    shown = set()
    for w in caught:  # hierfit's own warnings (data, method); others are in the summary or internal
        if issubclass(w.category, hierfit.HierfitWarning) and str(w.message) not in shown:
            shown.add(str(w.message))
            print(f"hierfit: warning: {with_flags(str(w.message))}", file=sys.stderr)
    print(with_flags(m.summary().to_text()))
    if args.save:
        m.save(args.save)
        print(f"saved to {args.save}")


def _run(argv) -> None:
    args = _parser().parse_args(argv)
    if args.command == "fit":
        _fit_and_print(args, _read_csv(args.data, args.sep), [args.data])
    elif args.command == "demo":
        args.formula = DEMO_FORMULA
        print(f"Fitting {DEMO_FORMULA} to the bundled Exam data (4,059 students, 65 schools)...", flush=True)
        _fit_and_print(args, hierfit.datasets.load("exam"), [])
    elif args.command == "summary":
        print(with_flags(hierfit.load(args.file).summary().to_text()))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hierfit`` command; returns the exit status.

    Example
    -------
    >>> main(["--version"])  # doctest: +SKIP
    hierfit 0.1.0
    """
    try:
        _run(argv)
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    except (CliError, hierfit.HierfitError) as err:
        print(f"hierfit: error: {with_flags(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hierfit: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print("hierfit: error: the input is nested too deeply", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - never a traceback on the command line
        print(f"hierfit: error: {type(err).__name__}: {' '.join(str(err).split())} (unexpected; please report "
              "it with the command you ran)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
