"""Figures shown once in Jupyter.

With matplotlib's inline backend a figure made through pyplot is shown when the cell
ends, and a Figure returned on the cell's last line is shown again as the cell's value.
:func:`shown_once` marks hierfit's figures; when Jupyter displays a marked figure as a
cell's value it first releases it from pyplot's figure manager, so the end of the cell
does not show it a second time.  A figure assigned to a name is shown once, by pyplot.
Outside Jupyter nothing changes (``plt.show()`` and ``fig.savefig`` work as usual).
"""

from __future__ import annotations

import sys

__all__ = ["shown_once"]

_MARK = "hierfit_figure"


def _release_then(printer):
    def show(fig, *args, **kwargs):
        if getattr(fig, _MARK, False):
            import matplotlib.pyplot as plt

            plt.close(fig)  # the figure object stays usable; pyplot just forgets it
        return printer(fig, *args, **kwargs)

    show.hierfit_wrapped = True
    return show


def _wrap_jupyter_printers() -> None:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return
    if shell is None:
        return
    from matplotlib.figure import Figure

    for formatter in shell.display_formatter.formatters.values():
        try:
            printer = formatter.lookup_by_type(Figure)
        except KeyError:
            continue
        if not getattr(printer, "hierfit_wrapped", False):
            formatter.for_type(Figure, _release_then(printer))


def shown_once(fig):
    """Mark a figure so that Jupyter shows it once when it is a cell's value; returns the figure.

    Example
    -------
    >>> import matplotlib.pyplot as plt
    >>> fig = shown_once(plt.figure())
    >>> fig.hierfit_figure
    True
    >>> plt.close(fig)
    """
    from matplotlib.figure import Figure

    if isinstance(fig, Figure):
        setattr(fig, _MARK, True)
        _wrap_jupyter_printers()
    return fig
