"""A fit as plain values (JSON + arrays) and back: what a fit file holds.

:func:`fit_to_record` describes a fit by values only: formula texts, family name
and link, distributional formulas, offset expression, priors (distribution names
and numbers), method and parametrization with their reasons, sampler settings,
timing, the data columns the design uses (with their factor level orders and the
caller's row index) and the posterior draws.  :func:`record_to_parts` rebuilds the
design by re-running the design stage on those stored columns (so ``scale()``
means and sds, factor levels and column names come out as they were), checks that
the rebuilt design is the one that was fitted, and returns the parts from which
:class:`hierfit.results.fit.HierFit` constructs itself.

Example
-------
>>> meta, arrays = fit_to_record(fit)  # doctest: +SKIP
>>> parts = record_to_parts(meta, arrays, "exam.hfit")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import xarray as xr

from hierfit.engine.sampling import SamplerSettings
from hierfit.errors import HierfitError, PersistenceError
from hierfit import families
from hierfit.spec.design import build_design
from hierfit.spec.parametrization import Parametrization
from hierfit.spec.priors import Dist, PredictorPriors, PriorSet
from hierfit.spec.specify import Method, Specification

__all__ = ["fit_to_record", "record_to_parts", "encode_column", "decode_column"]


# -- plain values ---------------------------------------------------------------------------------------------------

def _plain(v):
    """A JSON value for a scalar (numpy scalars to Python), or a PersistenceError for other objects."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    raise PersistenceError(f"cannot store the value {v!r} ({type(v).__name__}) in a fit file: only numbers, text "
                           "and booleans are stored")


def _jsonable(v) -> bool:
    try:
        _plain(v)
        return True
    except PersistenceError:
        return False


def encode_column(name: str, values, arrays: dict) -> dict:
    """Store one column (or index level) as arrays + a JSON description; returns the description.

    Numbers, booleans and dates are stored as they are; categoricals as codes and levels;
    object/text columns as codes and their distinct values (types kept: 1 stays 1, "1" stays "1").

    Example
    -------
    >>> arrays = {}
    >>> encode_column("g", pd.Series(["b", "a", "b"]), arrays)
    {'kind': 'values', 'values': ['b', 'a']}
    """
    s = pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        arrays[name] = s.cat.codes.to_numpy(dtype=np.int32)
        return {"kind": "categorical", "levels": [_plain(c) for c in s.cat.categories],
                "ordered": bool(s.cat.ordered)}
    if s.dtype.kind in "biufmM" and not hasattr(s.dtype, "tz"):
        arr = s.to_numpy()
        if arr.dtype.kind in "biufmM":  # (nullable integers may come out as objects)
            arrays[name] = arr
            return {"kind": "array"}
    uniques, codes = [], []
    lookup: dict = {}
    for v in s.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            codes.append(-1)
            continue
        key = (type(v).__name__, v)
        if key not in lookup:
            lookup[key] = len(uniques)
            uniques.append(_plain(v))
        codes.append(lookup[key])
    arrays[name] = np.asarray(codes, dtype=np.int32)
    return {"kind": "values", "values": uniques}


def decode_column(desc: dict, arr: np.ndarray):
    """The inverse of :func:`encode_column` (a numpy array or a pandas Categorical).

    Example
    -------
    >>> arrays = {}
    >>> decode_column(encode_column("g", pd.Series(["b", "a", "b"]), arrays), arrays["g"]).tolist()
    ['b', 'a', 'b']
    """
    kind = desc["kind"]
    if kind == "array":
        return arr
    if kind == "categorical":
        return pd.Categorical.from_codes(arr, categories=desc["levels"], ordered=desc["ordered"])
    if kind == "values":
        values = np.empty(len(desc["values"]) + 1, dtype=object)
        values[:-1] = desc["values"]
        values[-1] = None
        out = values[np.where(arr < 0, len(values) - 1, arr)]
        return out
    raise PersistenceError(f"unknown column encoding {kind!r}")


def _encode_index(prefix: str, index: pd.Index, arrays: dict) -> dict:
    if isinstance(index, pd.RangeIndex) and index.name is None:
        return {"range": [int(index.start), int(index.stop), int(index.step)]}
    levels = [encode_column(f"{prefix}/{i}", index.get_level_values(i), arrays) for i in range(index.nlevels)]
    return {"levels": levels, "names": [n if _jsonable(n) else str(n) for n in index.names]}


def _decode_index(prefix: str, desc: dict, arrays: dict) -> pd.Index:
    if "range" in desc:
        return pd.RangeIndex(*desc["range"])
    cols = [decode_column(d, arrays[f"{prefix}/{i}"]) for i, d in enumerate(desc["levels"])]
    if len(cols) == 1:
        return pd.Index(cols[0], name=desc["names"][0])
    return pd.MultiIndex.from_arrays(cols, names=desc["names"])


def _dist(d: Dist | None):
    return None if d is None else [d.family, [float(p) for p in d.params]]


def _undist(v) -> Dist | None:
    return None if v is None else Dist(v[0], tuple(float(p) for p in v[1]))


def _priors_to_values(ps: PriorSet) -> dict:
    return {
        "predictors": {dp: {"intercept": _dist(pp.intercept), "b": {k: _dist(v) for k, v in pp.b.items()},
                            "sd": {k: [_dist(d) for d in v] for k, v in pp.sd.items()},
                            "cor": {k: _dist(v) for k, v in pp.cor.items()},
                            "thresholds": [_dist(d) for d in pp.thresholds]}
                       for dp, pp in ps.predictors.items()},
        "dpars": {k: _dist(v) for k, v in ps.dpars.items()},
        "rows": [{k: _plain(v) for k, v in row.items()} for row in ps.rows],
    }


def _priors_from_values(v: dict) -> PriorSet:
    preds = {dp: PredictorPriors(intercept=_undist(pp["intercept"]), b={k: _undist(d) for k, d in pp["b"].items()},
                                 sd={k: [_undist(d) for d in ds] for k, ds in pp["sd"].items()},
                                 cor={k: _undist(d) for k, d in pp["cor"].items()},
                                 thresholds=[_undist(d) for d in pp.get("thresholds", [])])
             for dp, pp in v["predictors"].items()}
    return PriorSet(predictors=preds, dpars={k: _undist(d) for k, d in v["dpars"].items()}, rows=list(v["rows"]))


#: Groups computed from the draws on demand (``fit.posterior``): not stored.
DERIVED_GROUPS = ("log_likelihood", "observed_data", "posterior_predictive")


def _pack(value, arrays: dict, key: str):
    """Nested dicts/lists of numbers, text and numpy arrays as JSON values, the arrays set aside under ``key``."""
    if isinstance(value, np.ndarray):
        arrays[key] = _array_values(value)
        return {"__array__": key}
    if isinstance(value, dict):
        return {"__dict__": {str(k): _pack(v, arrays, f"{key}/{k}") for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [_pack(v, arrays, f"{key}/{i}") for i, v in enumerate(value)]
    return _plain(value)


def _unpack(value, arrays: dict):
    """The inverse of :func:`_pack`."""
    if isinstance(value, dict) and "__array__" in value:
        return arrays[value["__array__"]]
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _unpack(v, arrays) for k, v in value["__dict__"].items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


def _weights_record(d, arrays: dict):
    """``weights=`` as stored: its expression, ``"<array>"`` (values under ``weights``) or None."""
    if d.weights_arg is not None:
        return d.weights_arg
    add = d.addition
    if add is not None and add.weights is not None and d.formula.addition_term("weights") is None:
        arrays["weights"] = np.asarray(add.weights, dtype=float)
        return "<array>"
    return None


def _tree_to_values(tree: xr.DataTree, arrays: dict) -> dict:
    groups = {}
    for path, node in tree.to_dict().items():
        if path.strip("/") in DERIVED_GROUPS:
            continue
        ds = node
        gi = len(groups)
        desc = {"path": path, "vars": {}, "coords": {},
                "attrs": {k: _plain(v) for k, v in ds.attrs.items() if _jsonable(v)}}
        for j, (name, da) in enumerate(ds.data_vars.items()):
            key = f"tree/{gi}/v{j}"
            desc["vars"][str(name)] = {"dims": list(map(str, da.dims)), "array": key}
            arrays[key] = _array_values(da.values)
        for j, (name, da) in enumerate(ds.coords.items()):
            key = f"tree/{gi}/c{j}"
            desc["coords"][str(name)] = {"dims": list(map(str, da.dims)), "array": key}
            arrays[key] = _array_values(da.values)
        groups[path] = desc
    return groups


def _array_values(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind == "O":
        return a.astype(str)
    return a


def _tree_from_values(groups: dict, arrays: dict) -> xr.DataTree:
    out = {}
    for path, desc in groups.items():
        data_vars = {name: (v["dims"], arrays[v["array"]]) for name, v in desc["vars"].items()}
        coords = {name: (c["dims"], arrays[c["array"]]) for name, c in desc["coords"].items()}
        out[path] = xr.Dataset(data_vars, coords=coords, attrs=desc["attrs"])
    return xr.DataTree.from_dict(out)


def _fingerprint(design) -> dict:
    """Numbers that identify the design: sums of X, Z and y, and the names and levels."""
    out = {"nobs": design.nobs, "y": [float(design.y.sum()), float((design.y ** 2).sum())], "predictors": {}}
    w = np.linspace(1.0, 2.0, len(design.y))  # the rows held (placeholders for engine data)
    for dp, pred in design.predictors.items():
        out["predictors"][dp] = {
            "fixed_names": list(pred.fixed_names),
            "X": [float(v) for v in np.concatenate([pred.X.sum(0), (pred.X * w[:, None]).sum(0)])],
            "offset": None if pred.offset is None else float((pred.offset * w).sum()),
            "blocks": [[b.name, list(b.coefs), [str(x) for x in b.levels], int(b.index @ np.arange(len(b.index))),
                        [float(v) for v in (b.Z * w[:, None]).sum(0)]] for b in pred.blocks],
        }
    return out


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


# -- the record -----------------------------------------------------------------------------------------------------

def fit_to_record(fit) -> tuple[dict, dict[str, np.ndarray]]:
    """The fit as (JSON-able dict, arrays): everything a fit file holds."""
    d = fit.design
    if d.frame is None:
        raise PersistenceError("this fit has no stored data columns, so it cannot be saved")
    arrays: dict[str, np.ndarray] = {}
    columns = {c: encode_column(f"data/{i}", d.frame[c], arrays) for i, c in enumerate(d.frame.columns)}
    if d.used_rows is not None and not d.used_rows.all():
        arrays["rows/used"] = np.asarray(d.used_rows, dtype=bool)
    if d.offset_values is not None:
        arrays["offset"] = np.asarray(d.offset_values, dtype=float)
    par = fit.parametrization
    model = {
        "formula": d.formula.text,
        "family": {"name": d.family.name, "link": d.family.link_name},
        "dpars": {dp: p.formula.text for dp, p in d.predictors.items() if dp != "mu"},
        "offset": d.offset_arg,
        "weights": _weights_record(d, arrays),
        "engine_summary": None if d.summary is None else _pack(d.summary.to_dict(), arrays, "summary"),
        "data_name": d.data_name,
        "n_dropped": int(d.n_dropped),
        "dropped_by_column": {str(k): int(v) for k, v in d.dropped_by_column.items()},
        "columns": columns,
        "column_order": [str(c) for c in d.frame.columns],
        "data_index": _encode_index("index", d.data_index, arrays),
        "priors": _priors_to_values(fit.priors),
        "method": {"name": fit.method.name, "reason": fit.method.reason, "message": fit.method.message},
        "parametrization": {"choices": dict(par), "reasons": dict(par.reasons), "names": dict(par.names),
                            "kappa": {k: _plain(v) for k, v in par.kappa.items()}},
        "settings": {k: _plain(v) for k, v in dataclasses.asdict(fit.settings).items()},
        "timing": {k: _plain(v) for k, v in fit.timing.items()},
        "kernel": fit.kernel,
        "fingerprint": _fingerprint(d),
        "posterior": _tree_to_values(fit.tree, arrays),
        "interrupted": bool(fit.interrupted),
    }
    return model, arrays


def record_to_parts(meta: dict, arrays: dict, path) -> dict:
    """Rebuild the specification and posterior from a record: keyword arguments for ``HierFit``."""
    written_by = meta.get("hierfit_version", "an unknown version")
    try:
        m = meta["model"]
        columns = {c: decode_column(m["columns"][c], arrays[f"data/{i}"]) for i, c in enumerate(m["column_order"])}
        data_index = _decode_index("index", m["data_index"], arrays)
        rows = data_index[arrays["rows/used"]] if "rows/used" in arrays else data_index
        frame = pd.DataFrame(columns, index=rows)
        fam = families.get(m["family"]["name"], m["family"]["link"])
        offset = m["offset"]
        if offset == "<array>":
            offset = arrays["offset"]
        weights = m.get("weights")
        if weights == "<array>":
            weights = arrays["weights"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # they were shown when the model was fitted
            design = build_design(m["formula"], frame, data_name=m["data_name"], family=fam,
                                  dpars=m["dpars"] or None, offset=offset, weights=weights)
        if m.get("engine_summary") is not None:  # fitted from engine data: the statistics stand in for the rows
            from hierfit.spec.summaries import DataSummary

            design.summary = DataSummary.from_dict(_unpack(m["engine_summary"], arrays))
            if design.aggregation is not None:  # counts: scale()/center() with the rows' moments again
                from hierfit.data.counts import restore_row_coding

                restore_row_coding(design)
            elif not design.rows_held:  # scale()/center(): the rows' moments, not the placeholders'
                from hierfit.data.metadata import fix_stateful_transforms, has_stateful_transforms

                if has_stateful_transforms(design) and not design.summary.column_moments:
                    raise PersistenceError(f"{path}: this fit of engine data uses scale()/center() but the file "
                                           "(written by an older hierfit) lacks the rows' moments they need; fit "
                                           "the model again")
                if has_stateful_transforms(design):
                    fix_stateful_transforms(design, SimpleNamespace(numeric=design.summary.column_moments))
        design.n_dropped = m["n_dropped"]
        design.dropped_by_column = dict(m["dropped_by_column"])
        design.data_index = data_index
        design.used_rows = arrays["rows/used"] if "rows/used" in arrays else np.ones(len(data_index), dtype=bool)
        if not _same(m["fingerprint"], _fingerprint(design)):
            raise PersistenceError(f"{str(path)!r} (written by hierfit {written_by}): the model's design could not be "
                                   "rebuilt identically from the stored data with this hierfit; refit the model")
        p = m["parametrization"]
        spec = Specification(design, _priors_from_values(m["priors"]), Method(**m["method"]),
                             Parametrization(p["choices"], p["reasons"], p["names"], p["kappa"]))
        return dict(spec=spec, settings=SamplerSettings(**m["settings"]),
                    posterior=_tree_from_values(m["posterior"], arrays), timing=dict(m["timing"]), kernel=m["kernel"],
                    interrupted=bool(m.get("interrupted", False)))
    except PersistenceError:
        raise
    except (HierfitError, KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            OverflowError) as err:
        raise PersistenceError(f"cannot rebuild the model stored in {str(path)!r} (written by hierfit {written_by}): "
                               f"{type(err).__name__}: {err}") from err
