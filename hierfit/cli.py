"""Command line: ``hierfit fit``, ``hierfit summary``, ``hierfit demo``.

Example
-------
.. code-block:: console

    $ hierfit fit exam.csv "normexam ~ standLRT + sex + (standLRT | school)" --seed 1 --save exam.hfit
    $ hierfit summary exam.hfit
    $ hierfit demo
"""

from __future__ import annotations

import argparse
import sys
import warnings

from hierfit.errors import HierfitError

DEMO_FORMULA = "normexam ~ standLRT + sex + (standLRT | school)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hierfit", description="Bayesian mixed models with lme4/brms formulas.")
    sub = p.add_subparsers(dest="command", required=True)

    def sampling_args(sp):
        sp.add_argument("--family", default="gaussian", help="response family (default: gaussian)")
        sp.add_argument("--draws", type=int, default=1000, help="post-warm-up draws per chain (default 1000)")
        sp.add_argument("--tune", type=int, default=1000, help="warm-up iterations per chain (default 1000)")
        sp.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
        sp.add_argument("--seed", type=int, default=None, help="random seed (same seed, same draws)")
        sp.add_argument("--sampler", default="nutpie", choices=["nutpie", "pymc"])
        sp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        sp.add_argument("--save", metavar="FILE", help="save the fit to FILE (read it back with 'hierfit summary')")

    f = sub.add_parser("fit", help="fit a model to a CSV file and print its summary")
    f.add_argument("data", help="CSV file")
    f.add_argument("formula", help='e.g. "normexam ~ standLRT + sex + (standLRT | school)"')
    sampling_args(f)
    s = sub.add_parser("summary", help="print the summary of a saved fit")
    s.add_argument("file")
    d = sub.add_parser("demo", help=f"fit {DEMO_FORMULA} on the bundled Exam data and print the summary")
    sampling_args(d)
    d.set_defaults(seed=1)  # the same output every time: README.md shows it
    return p


def _read_csv(path: str):
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise HierfitError(f"no such file: {path!r}") from None
    except IsADirectoryError:
        raise HierfitError(f"{path!r} is a directory, not a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise HierfitError(f"cannot read {path!r} as CSV: {str(err).splitlines()[0]}") from None
    df.attrs["name"] = path
    return df


def _fit_and_print(args, data) -> None:
    from hierfit.pipeline import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # shown in the summary instead
        warnings.filterwarnings("always", module="hierfit")
        m = fit(args.formula, data, family=args.family, draws=args.draws, tune=args.tune, chains=args.chains,
                seed=args.seed, sampler=args.sampler, progressbar=not args.no_progress, warn=False)
    print(m.summary().to_text())
    if args.save:
        m.save(args.save)
        print(f"saved to {args.save}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hierfit`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "fit":
            _fit_and_print(args, _read_csv(args.data))
        elif args.command == "demo":
            from hierfit.datasets import load

            args.formula = DEMO_FORMULA
            print(f"Fitting {DEMO_FORMULA} to the bundled Exam data (4,059 students, 65 schools)...", flush=True)
            _fit_and_print(args, load("exam"))
        elif args.command == "summary":
            from hierfit.results.persist import load

            print(load(args.file).summary().to_text())
    except HierfitError as err:
        print(f"hierfit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hierfit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
