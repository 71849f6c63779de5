"""From AnnData to mfsde velocities, cell-type interactions and CellRank fates (EMT time course).

    python examples/anndata_cellrank.py [iterations] [figure.png]    # ~3 min on 2 cores

Needs ``pip install -e ".[dev,cellrank]"`` and ``../shared/data/emt/emt.csv`` (A549 cells,
TGF-β-induced EMT, 10-D embedding, 4 time points).
"""

import sys
from pathlib import Path

import anndata as ad
import cellrank as cr
import matplotlib
import numpy as np
import pandas as pd
import scanpy as sc
import torch
from sklearn.cluster import KMeans

import mfsde

matplotlib.use("Agg")
import matplotlib.pyplot as plt

torch.set_num_threads(1)
iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
figure = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).with_suffix(".png")
data = Path(__file__).resolve().parents[2] / "shared" / "data" / "emt" / "emt.csv"

# 1. an AnnData: cells x features, the sampling time in obs
df = pd.read_csv(data)
adata = ad.AnnData(
    X=df.drop(columns="samples").to_numpy(np.float32),
    obs=pd.DataFrame({"time": df["samples"].to_numpy()}, index=df.index.astype(str)),
)

# 2. mfsde: preprocessing fitted on the training times, a fit with time point 2 held out,
#    the drift at every cell (obsm['velocity_pca']) and the cluster x cluster interaction
mfsde.pp.preprocess(adata, "time", task="loo:2", kind="embedded", n_comps=10)
adata.obs["cluster"] = pd.Categorical(KMeans(4, n_init=4, random_state=0).fit_predict(adata.obsm["X_pca"]).astype(str))
model = mfsde.tl.fit(adata, "time", task="loo:2", train__iterations=iterations, seed=0)
mfsde.tl.velocity(adata, model)
inter = mfsde.tl.interactions(adata, model, groupby="cluster", n_cells=600)
pred = mfsde.tl.predict(adata, model, n_cells=800)

# 3. CellRank: a velocity kernel on mfsde's drift, mixed with the neighbour graph; macrostates
#    and the probability of each cell to reach each terminal state
sc.pp.neighbors(adata, use_rep="X_pca", n_neighbors=30, random_state=0)
vk = cr.kernels.VelocityKernel(adata, attr="obsm", xkey="X_pca", vkey="velocity_pca").compute_transition_matrix()
ck = cr.kernels.ConnectivityKernel(adata).compute_transition_matrix()
g = cr.estimators.GPCCA(0.8 * vk + 0.2 * ck)
g.compute_schur(n_components=6)
g.compute_macrostates(n_states=2, cluster_key="cluster")
g.set_terminal_states(list(g.macrostates.cat.categories))
g.compute_fate_probabilities()
fates = np.asarray(g.fate_probabilities)

# 4. figures and a summary
n_fates = fates.shape[1]  # GPCCA may return more macrostates than asked (it keeps conjugate eigenvalue pairs)
fig, axes = plt.subplots(1, 2 + n_fates, figsize=(5.3 * (2 + n_fates), 4.8))
mfsde.pl.velocity(adata, basis="pca", color="time", ax=axes[0], show=False)
mfsde.pl.interactions(adata, kind="heatmap", ax=axes[1], show=False)
x = adata.obsm["X_pca"]
for ax, j in zip(axes[2:], range(n_fates)):
    im = ax.scatter(x[:, 0], x[:, 1], c=fates[:, j], s=4, cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"CellRank fate probability: {g.fate_probabilities.names[j]}", fontsize=10)
    ax.set_xlabel("pca 1")
    fig.colorbar(im, ax=ax)
fig.tight_layout()
fig.savefig(figure, dpi=110)
print(f"macrostates {list(g.macrostates.cat.categories)}; terminal-state fates per time point:")
t = adata.obs["time"].to_numpy()
for k in np.unique(t):
    print(
        f"  time {k}: mean fate "
        + ", ".join(f"{n} {fates[t == k, j].mean():.2f}" for j, n in enumerate(g.fate_probabilities.names))
    )
print(
    f"cluster interaction asymmetry per time {np.round(inter['asymmetry'], 3).tolist()} "
    f"(shuffled-label q95 {np.round(inter['asymmetry_null_q95'], 3).tolist()})"
)
print(f"simulated cells: {pred.n_obs}; figure: {figure}")
