"""Plots of the exponents recorded by ExponentTracker."""

from keras_int.callbacks import PREFIX


def plot_exponents(history, path):
    """Writes a PNG of every tracked exponent over epochs (or batch records).

    Args:
      history: a ``keras.callbacks.History``, its ``.history`` dict, or an
        ``ExponentTracker``'s ``batch_records`` list.
      path: where to write the PNG.

    >>> history = model.fit(x, y, epochs=5, callbacks=[keras_int.callbacks.ExponentTracker()])
    >>> keras_int.plot_exponents(history, "exponents.png")
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(history, list):
        x_label = "batch"
        series = {k: [r[k] for r in history] for k in history[0] if k.startswith(PREFIX)} if history else {}
        x = [r["step"] for r in history]
    else:
        values = getattr(history, "history", history)
        series = {k: v for k, v in values.items() if k.startswith(PREFIX)}
        x_label = "epoch"
        x = list(range(1, len(next(iter(series.values()), [])) + 1))
    if not series:
        raise ValueError("plot_exponents: no exponents found; train with keras_int.callbacks.ExponentTracker")
    kinds = sorted({name.rsplit("/", 1)[-1] for name in series})
    fig, axes = plt.subplots(len(kinds), 1, figsize=(8, 2.6 * len(kinds)), squeeze=False, sharex=True)
    for axis, kind in zip(axes[:, 0], kinds):
        for name, values in sorted(series.items()):
            if name.rsplit("/", 1)[-1] == kind:
                axis.plot(x, values, marker=".", label=name[len(PREFIX):].rsplit("/", 1)[0] or kind)
        axis.set_ylabel(kind)
        axis.legend(fontsize="x-small", loc="best")
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(x_label)
    fig.suptitle("DFP exponents (value = q * 2**e)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
