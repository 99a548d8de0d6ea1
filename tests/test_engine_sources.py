"""Bad Parquet/CSV inputs of a data engine are hierfit errors that name the path, column, files and types.

Small files in pytest's tmp_path, read by Dask's local scheduler: each error is raised
by opening the files or by the metadata pass, before any sampling.
"""

import doctest

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.dataframe")
pytest.importorskip("pyarrow")

import hierfit  # noqa: E402
import hierfit.data.sources  # noqa: E402
from hierfit.data.sources import open_frame  # noqa: E402
from hierfit.data.specify import specify_engine  # noqa: E402

FORMULA = "y ~ x + (1 | g)"


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"g": rng.integers(0, 10, n), "x": rng.normal(size=n), "sex": rng.choice(["F", "M"], n)})
    df["y"] = 5 + 2.0 * df.x + rng.normal(0, 0.7, 10)[df.g] + rng.normal(size=n)
    return df


def _two_parquet(tmp_path, first, second):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    first.to_parquet(a)
    second.to_parquet(b)
    return [str(a), str(b)]


def _halves(df=None):
    df = _frame() if df is None else df
    n = len(df) // 2
    return df.iloc[:n].copy(), df.iloc[n:].copy()


# -- paths that name no file ------------------------------------------------------------------

def test_parquet_glob_matching_nothing_names_the_glob(tmp_path):
    _frame().to_parquet(tmp_path / "data.parquet")
    glob = str(tmp_path / "nothing*.parquet")
    with pytest.raises(hierfit.DataError, match="matched no file") as info:
        specify_engine(FORMULA, glob)
    assert glob in str(info.value)


@pytest.mark.parametrize("name, message", [("nothing*.csv", "matched no file"),
                                           ("missing.parquet", "no such Parquet file or folder"),
                                           ("missing.csv", "no such CSV file or folder"),
                                           ("empty", "holds no Parquet files"),
                                           ("csv_only", "holds no Parquet files")])
def test_paths_naming_no_file_are_data_errors(tmp_path, name, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "csv_only").mkdir()
    _frame().to_csv(tmp_path / "csv_only" / "a.csv", index=False)
    path = str(tmp_path / name)
    with pytest.raises(hierfit.DataError, match=message) as info:
        open_frame(path)
    assert path in str(info.value)


# -- Parquet files that disagree about a column ---------------------------------------------------

def test_column_missing_from_one_parquet_file_names_column_and_file(tmp_path):
    a, b = _halves()
    paths = _two_parquet(tmp_path, a, b.drop(columns=["x"]))
    with pytest.raises(hierfit.DataError) as info:
        specify_engine(FORMULA, paths)
    msg = str(info.value)
    assert "'x'" in msg and "missing from 1 of the 2 Parquet files: " + paths[1] in msg
    # an unused column may differ between the files
    spec, _ = specify_engine("y ~ sex + (1 | g)", paths)
    assert spec.design.nobs == 400


@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_column_missing_from_the_first_parquet_file_names_the_file(tmp_path, family):
    a, b = _halves(_frame().assign(y=lambda d: (d.y > 5).astype(int)) if family == "bernoulli" else None)
    paths = _two_parquet(tmp_path, a.drop(columns=["sex"]), b)  # Dask takes the columns from the first file
    with pytest.raises(hierfit.DataError, match=r"column 'sex' is missing from 1 of the 2 Parquet files: .*a\.parquet"):
        specify_engine("y ~ sex + (1 | g)", paths, family=family)


def test_column_missing_from_one_parquet_file_fit_end_to_end(tmp_path):
    a, b = _halves()
    paths = _two_parquet(tmp_path, a, b.drop(columns=["x"]))
    with pytest.raises(hierfit.DataError, match=r"column 'x' is missing from 1 of the 2 Parquet files"):
        hierfit.fit(FORMULA, paths, chains=2, draws=100, tune=100, progressbar=False, warn=False)


@pytest.mark.parametrize("column, convert, formula, types", [
    ("g", lambda s: s.astype(str), FORMULA, ("int64", "string")),
    ("sex", lambda s: s == "M", "y ~ x + sex + (1 | g)", ("string", "bool")),
    ("y", lambda s: s.astype(str), FORMULA, ("double", "string")),
])
def test_column_types_differing_between_parquet_files(tmp_path, column, convert, formula, types):
    a, b = _halves()
    b[column] = convert(b[column])
    paths = _two_parquet(tmp_path, a, b)
    with pytest.raises(hierfit.DataError, match="different types in the 2 Parquet files") as info:
        specify_engine(formula, paths)
    msg = str(info.value)
    assert f"column '{column}'" in msg and paths[0] in msg and paths[1] in msg
    assert types[0] in msg and types[1] in msg


def test_compatible_types_between_parquet_files_are_read(tmp_path):
    a, b = _halves()
    b["g"] = b["g"].astype(float)       # integers in one file, the same numbers as floats in the other
    b["sex"] = b["sex"].astype("category")  # text and dictionary-encoded text
    spec, _ = specify_engine("y ~ x + sex + (1 | g)", _two_parquet(tmp_path, a, b))
    assert spec.design.nobs == 400 and spec.design.fixed_names == ["(Intercept)", "x", "sexM"]


def test_partition_column_of_a_parquet_folder_is_not_missing(tmp_path):
    from hierfit.data.sources import check_source_columns

    _frame().to_parquet(tmp_path / "ds", partition_cols=["sex"])  # 'sex' is in the folder names, not the files
    ddf = open_frame(str(tmp_path / "ds"))
    check_source_columns(ddf, ["y", "x", "g", "sex"])
    bad = _frame(seed=1).drop(columns=["x"])
    bad.loc[bad.sex == "F"].drop(columns=["sex"]).to_parquet(tmp_path / "ds" / "sex=F" / "extra.parquet")
    with pytest.raises(hierfit.DataError, match=r"column 'x' is missing from 1 of the 3 Parquet files: .*extra"):
        check_source_columns(open_frame(str(tmp_path / "ds")), ["y", "x", "g", "sex"])


# -- CSV files whose rows disagree with what Dask guessed -------------------------------------------

def _late_strings_csv(tmp_path):
    df = _frame()
    df["g"] = df["g"].astype(str)
    df.loc[len(df) - 3:, "g"] = "late"  # Dask guesses int64 from the first rows
    path = tmp_path / "late.csv"
    df.to_csv(path, index=False)
    return str(path)


def test_csv_dtype_guessed_wrong_names_column_types_and_remedy(tmp_path):
    path = _late_strings_csv(tmp_path)
    with pytest.raises(hierfit.DataError) as info:
        specify_engine(FORMULA, path)
    msg = str(info.value)
    assert path in msg and "'g' (guessed int64 from the first rows, found str" in msg
    assert "dtype={'g': 'str'}" in msg and "Parquet" in msg
    assert isinstance(info.value.__cause__, ValueError)


def test_csv_dtype_error_is_translated_by_any_pass(tmp_path):
    from hierfit.data.passes import run_pass

    ddf = open_frame(_late_strings_csv(tmp_path))
    with pytest.raises(hierfit.DataError, match=r"'g' \(guessed int64"):
        run_pass(lambda part: len(part), ddf, ["g", "y"], (), lambda *n: sum(n))


def test_csv_integer_column_with_later_missing_values_suggests_assume_missing(tmp_path):
    df = _frame()
    df["g"] = df["g"].astype("Int64")
    df.loc[len(df) - 1, "g"] = pd.NA  # written as an empty field after integers
    df.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(hierfit.DataError, match=r"found float64 further on.*assume_missing=True"):
        specify_engine(FORMULA, str(tmp_path / "d.csv"))


def test_column_missing_from_a_later_csv_file_names_column_and_file(tmp_path):
    a, b = _halves()
    a.to_csv(tmp_path / "a.csv", index=False)
    b.drop(columns=["x"]).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(hierfit.DataError) as info:
        specify_engine(FORMULA, str(tmp_path / "*.csv"))
    msg = str(info.value)
    assert "column 'x' is missing from 1 of the 2 CSV files: " in msg and msg.count("b.csv") == 1  # from the headers


def test_other_errors_are_not_translated():
    import dask.dataframe as dd

    from hierfit.data.sources import explain_engine_error

    ddf = dd.from_pandas(_frame(), npartitions=2)
    assert explain_engine_error(KeyError("['z'] not in index"), ddf, ["y", "x"]) is None
    assert explain_engine_error(KeyError("z"), ddf, ["z"]) is None
    assert explain_engine_error(ValueError("something else"), ddf, ["y"]) is None


# -- separators and compression, in any case of the name -------------------------------------------

@pytest.mark.parametrize("name, sep, compression", [("t.TSV", "\t", None), ("t.tsv.gz", "\t", "gzip"),
                                                    ("t.Tsv.Bz2", "\t", "bz2"), ("t.CSV.GZ", ",", "gzip"),
                                                    ("t.CSV", ",", None)])
def test_csv_and_tsv_names_in_any_case(tmp_path, name, sep, compression):
    df = _frame(n=50)
    df.to_csv(tmp_path / name, sep=sep, index=False, compression=compression)
    ddf = open_frame(str(tmp_path / name))
    assert ddf.columns.tolist() == ["g", "x", "sex", "y"]
    pd.testing.assert_frame_equal(ddf.compute().reset_index(drop=True), df, check_dtype=False)


def test_csv_and_tsv_mixed_are_refused(tmp_path):
    _frame(n=20).to_csv(tmp_path / "a.csv", index=False)
    _frame(n=20).to_csv(tmp_path / "b.tsv", sep="\t", index=False)
    with pytest.raises(hierfit.DataError, match="comma-separated .* tab-separated"):
        open_frame([str(tmp_path / "a.csv"), str(tmp_path / "b.tsv")])


def test_docstring_examples_run():
    result = doctest.testmod(hierfit.data.sources, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_csv_file_lacking_a_formula_column_is_named_not_read_as_missing(tmp_path):
    a, b = _halves()
    cols = ["y", "x", "g"]  # the formula's columns, in the files' order: Dask selects nothing and reads NaN
    a[cols].to_csv(tmp_path / "a.csv", index=False)
    b[["y", "g"]].to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(hierfit.DataError, match=r"column 'x' is missing from 1 of the 2 CSV files: .*b\.csv"):
        specify_engine(FORMULA, [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
