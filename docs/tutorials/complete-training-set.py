# %% [markdown]
# # Is my training set complete?
#
# A training set for a machine-learned interatomic potential is *complete* for
# a simulation when every atomic environment that the simulation visits lies
# close to environments of the set. This tutorial asks that question of a
# small copper training set with three tools of atominfo:
#
# 1. the entropy H and the diversity D of the set, against log n;
# 2. its learning curve: does H still grow when more data of the same kind are
#    added, and how far is it from its asymptote (the information gap)?
# 3. the differential entropy dH of a new simulation against the set: dH > 0
#    marks the environments that the set does not cover.
#
# Everything on this page is computed when the documentation is built (EMT
# copper from ASE, a few hundred MD steps), so the numbers and figures are
# those of the code as it stands. Units: entropies in nats, bandwidth h in 1/Å.

# %%
import matplotlib.pyplot as plt
import numpy as np

import atominfo
from atominfo.outputs import plots
from atominfo.structures.datasets import fcc_cu, md_frames
from atominfo.workflows.curves import learning_curve

h = 0.015  # the default bandwidth, 1/Å

# %% [markdown]
# ## The data
#
# The training set: 40 snapshots of a 32-atom FCC copper cell in Langevin MD at
# 300 K (EMT potential). The simulation we want to run: the same crystal at
# 1200 K, 20 snapshots.

# %%
cold = md_frames(fcc_cu(2), 300, n_frames=40, interval=10, seed=0)
hot = md_frames(fcc_cu(2), 1200, n_frames=20, interval=10, seed=1)
train = atominfo.load_frames(cold)  # a FrameSet: descriptors kept per structure
X, Y = train.X, atominfo.descriptors(hot)
print(f"training set: {len(cold)} structures, {len(X)} environments; hot run: {len(Y)}")

# %% [markdown]
# ## 1. How much information does the set hold?
#
# H is at most log n, reached when every environment is distinct on the scale
# h. A thermal crystal repeats a few environments over and over: H lies far
# below log n.

# %%
H, D = atominfo.entropy(X, h), atominfo.diversity(X, h)
print(f"H = {H:.3f} nats, D = {D:.3f} nats, log n = {np.log(len(X)):.3f} nats")

# %% [markdown]
# ## 2. Would more of the same help? The learning curve
#
# The entropy of random subsets of increasing size (3 random draws per size).
# The summary classifies the curve by the rise of H per doubling of N at the
# full size: *saturated* when its 95% interval lies below 0.05 nats (more
# snapshots of the same kind add little), *still rising* when it lies above,
# *not determined* otherwise. Only a curve still rising is extrapolated, by
# the fit `H(N) = a - b exp(-c (ln N)^2)`, and only when that fit passes its
# checks: then the summary gives the asymptote a and the information gap (a
# minus H of the whole set) with their 95% intervals; otherwise it says why
# and gives no number rather than a wrong one.

# %%
curve = learning_curve(train, h, by="structures", n_seeds=3, seed=0)
print(*curve.summary_lines(), sep="\n")
fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
plots.plot_learning_curves([curve], ["300 K training set"], ax=ax)
plt.show()

# %% [markdown]
# Whatever the fit concludes, the curve answers one question only: would
# more of the *same* data help? Whether the set covers *another* simulation
# is the next question.
#
# ## 3. Does the set cover the hot run?
#
# dH of every environment of the 1200 K run against the 300 K set. dH <= 0:
# the environment is inside the set's domain; dH > 0: it is new. No
# calibration is needed for that sign.

# %%
ref = atominfo.Reference(X, h)  # built once, queried many times
dH_hot = ref.delta_entropy(Y)
fresh = md_frames(fcc_cu(2), 300, n_frames=10, interval=10, seed=2)  # a new 300 K run
dH_self = ref.delta_entropy(atominfo.descriptors(fresh))
print(f"novel at 1200 K: {ref.novelty(Y):.1%}")
print(f"novel in a new 300 K run: {np.mean(dH_self > 0):.1%}")

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
bins = np.linspace(min(dH_hot.min(), dH_self.min()), dH_hot.max(), 60)
ax.hist(dH_self, bins, alpha=0.7, label="300 K, a new run")
ax.hist(dH_hot, bins, alpha=0.7, label="1200 K")
ax.axvline(0, color="k", lw=1, ls="--")
ax.set(xlabel="dH against the 300 K training set (nats)", ylabel="environments")
ax.legend()
plt.show()

# %% [markdown]
# The environments of a new 300 K run are inside the domain (dH <= 0): for
# a 300 K simulation the set is complete. At 1200 K a large share of the
# environments is new: the set is **not** complete for the hot run.
#
# ## 4. Filling the gap
#
# Add the first half of the hot snapshots to the training set and test the
# second half against it.

# %%
train_more = atominfo.load_frames(cold + hot[:10])
ref_more = atominfo.Reference(train_more.X, h)
Y_later = atominfo.descriptors(hot[10:])
print(
    f"novel in the later hot snapshots: {ref.novelty(Y_later):.1%} against the 300 K set, "
    f"{ref_more.novelty(Y_later):.1%} with the first hot snapshots added"
)
print(f"H: {atominfo.entropy(X, h):.3f} -> {atominfo.entropy(train_more.X, h):.3f} nats")

# %% [markdown]
# The same questions from the command line, on files (see the
# [Datasets](../datasets.md) and [Simulations](../simulations.md) guides):
#
# ```bash
# atominfo entropy train.extxyz
# atominfo curve train.extxyz --plot curve.png
# atominfo dh hot.extxyz --ref train.extxyz --table frames.csv --plot frames.png
# ```
