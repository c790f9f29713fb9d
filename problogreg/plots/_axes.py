"""The axes a matplotlib figure draws on: given by the caller, or a new figure's."""

import matplotlib.pyplot as plt


def _figure(ax):
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
        return fig, ax
    return ax.figure, ax
