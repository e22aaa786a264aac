# %% [markdown]
# # When does a simulation leave its training set?
#
# A potential trained on a crystal at room temperature is often run hotter,
# strained or for longer than its data. This tutorial follows a heating run of
# copper, frame by frame and atom by atom, against a training set made at 300
# and 600 K, and answers three questions a user of a machine-learned potential
# asks:
#
# 1. at which frame does the run leave the domain of the training set?
# 2. which atoms are new, and how new?
# 3. which environments would be worth labelling next?
#
# The tool is the differential entropy dH of each atomic environment against
# the training set: dH <= 0 means the environment lies inside the set's domain;
# dH > 0 means it does not (its sign needs no calibration). Everything here is
# computed when the documentation is built (EMT copper from ASE).
# Units: dH in nats, bandwidth h in 1/Å.

# %%
import matplotlib.pyplot as plt
import numpy as np

import atominfo
from atominfo.outputs import plots
from atominfo.structures.datasets import fcc_cu, md_frames
from atominfo.workflows.trajectory import iter_trajectory_dh, trajectory_dh

h = 0.015  # the default bandwidth, 1/Å

# %% [markdown]
# ## The training set and the run
#
# Training set: 30 snapshots each of a 32-atom FCC copper cell at 300 K and
# 600 K (Langevin MD with EMT). The run: the same cell heated in steps of
# 300 K from 300 K to 1800 K, 8 snapshots per step, each step starting where
# the last one ended.

# %%
train = md_frames(fcc_cu(2), 300, n_frames=30, interval=10, seed=0) + md_frames(
    fcc_cu(2), 600, n_frames=30, interval=10, seed=1
)
ref = atominfo.Reference(atominfo.descriptors(train), h)  # built once, queried per frame

run, temperature, start = [], [], fcc_cu(2)
for step, kelvin in enumerate(range(300, 2100, 300)):
    frames = md_frames(start, kelvin, n_frames=8, interval=10, equilibration=20, seed=10 + step)
    for atoms in frames:
        atoms.info["temperature"] = kelvin
    run += frames
    temperature += [kelvin] * len(frames)
    start = frames[-1]
print(f"training set: {len(train)} structures; run: {len(run)} frames of {len(run[0])} atoms")

# %% [markdown]
# ## 1. Where does the run leave the domain?
#
# `trajectory_dh` scores every frame against the reference and keeps one row per
# frame: the fraction of atoms with dH > 0 (novelty), the largest and the mean
# dH. `plot_trajectory` draws the first two; the heating steps are shaded.

# %%
table = trajectory_dh(run, ref)
axes = plots.plot_trajectory(table, title="Heating run against the 300-600 K training set")
for i, kelvin in enumerate(range(300, 2100, 300)):  # the heating steps, 8 frames each
    for ax in axes:
        if i % 2:
            ax.axvspan(8 * i - 0.5, 8 * i + 7.5, color="0.92", zorder=0)
    axes[0].text(
        8 * i + 3.5,
        0.9,
        f"{kelvin} K",
        ha="center",
        fontsize=8,
        transform=axes[0].get_xaxis_transform(),
    )
plt.show()

by_temperature = {}
for kelvin, novelty in zip(temperature, table["novelty"]):
    by_temperature.setdefault(kelvin, []).append(novelty)
for kelvin, values in by_temperature.items():
    print(f"{kelvin:5d} K: {np.mean(values):6.1%} of the atoms novel (mean over 8 frames)")
first = next((i for i, v in enumerate(table["novelty"]) if v > 0), None)
print(
    f"first frame with a novel atom: {first} ({temperature[first]} K)"
    if first is not None
    else "no frame has a novel atom"
)

# %% [markdown]
# Up to 600 K the run stays inside the training set: (almost) no atom has
# dH > 0. Beyond it the share of new environments grows with temperature, and
# once the small cell melts most environments are new. A potential trained on
# this set interpolates at 300-600 K and extrapolates beyond: its forces there
# are not supported by data.
#
# ## 2. Which atoms are new, and how new?
#
# `iter_trajectory_dh` yields the per-atom dH of each frame, one frame at a
# time (it never holds the whole trajectory's per-atom values). Here: the
# distribution of dH per temperature.

# %%
per_atom = {kelvin: [] for kelvin in by_temperature}
for frame in iter_trajectory_dh(run, ref):
    per_atom[frame.atoms.info["temperature"]].append(frame.dH)

fig, ax = plt.subplots(figsize=(6.5, 4.0), layout="constrained")
values = [np.concatenate(v) for v in per_atom.values()]
ax.boxplot(values, tick_labels=[f"{k} K" for k in per_atom], showfliers=False)
ax.axhline(0, color="k", lw=1, ls="--")
ax.set(ylabel="dH against the training set (nats)", xlabel="temperature of the run")
ax.set_title("Per-atom dH of the heating run")
plt.show()

# %% [markdown]
# dH grows steadily with temperature, well before the melt: it measures how far
# an environment lies from the data, not only whether it is outside. At 900 K
# the bulk of the atoms is still inside, but the largest thermal displacements
# already reach beyond those the 600 K data sampled.
#
# ## 3. What to label next
#
# The environments with the largest dH are the most informative to add. With
# the run's descriptors and dH, rank the atoms and take the most novel few
# from each temperature (a spread over the run rather than all from the melt).
# From the command line, `atominfo extract` does this on files and writes cut-outs
# ready for DFT (see [What to label](../labelling.md)).

# %%
picks = []
for frame in iter_trajectory_dh(run, ref):
    best = int(np.argmax(frame.dH))
    picks.append((float(frame.dH[best]), frame.number, best, frame.atoms.info["temperature"]))
picks.sort(reverse=True)
chosen = {}
for dH, number, atom, kelvin in picks:  # the most novel atom of the best frame per temperature
    if dH > 0 and kelvin not in chosen:
        chosen[kelvin] = (number, atom, dH)
for kelvin, (number, atom, dH) in sorted(chosen.items()):
    print(f"{kelvin:5d} K: frame {number:2d}, atom {atom:2d}, dH = {dH:7.2f} nats")

# %% [markdown]
# Adding the frames of these picks to the training set and scoring the run
# again shows what they bring:

# %%
more = atominfo.Reference(
    atominfo.descriptors(train + [run[number] for number, _, _ in chosen.values()]), h
)
again = trajectory_dh(run, more)
print(
    f"frames with novel atoms: {int(np.sum(table['novelty'] > 0))} of {len(run)} before, "
    f"{int(np.sum(again['novelty'] > 0))} after adding {len(chosen)} frames"
)

# %% [markdown]
# A handful of frames cannot cover a melt: the hot end of the run needs many
# more, and the learning curve and the stop verdict of the
# [Datasets](../datasets.md) guide say when a campaign has enough.
#
# The same from the command line (see [Simulations](../simulations.md)):
#
# ```bash
# atominfo dh run.extxyz --ref train.extxyz --table frames.csv --plot frames.png
# atominfo extract run.extxyz --ref train.extxyz -o to_label.extxyz
# ```
