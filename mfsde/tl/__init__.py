"""Tools on AnnData, scanpy-style: fit, velocities, interactions, predictions.

```pycon
>>> import mfsde, scanpy as sc
>>> mfsde.pp.preprocess(adata, "day", task="loo:2")          # obsm['X_pca'], fitted on training days
>>> model = mfsde.tl.fit(adata, "day", task="loo:2", train__iterations=500)
>>> mfsde.tl.velocity(adata, model)                          # obsm['velocity_pca'] (+ _intra, _inter)
>>> mfsde.tl.interactions(adata, model, groupby="cell_type")  # uns['mfsde']['interactions']
>>> pred = mfsde.tl.predict(adata, model, n_cells=1000)       # AnnData of simulated cells
```

Every key written is listed in the functions' docstrings and in docs/scanpy.md ("AnnData keys").
Hand-off to CellRank: ``sc.pp.neighbors(adata, use_rep="X_pca")`` then
``cellrank.kernels.VelocityKernel(adata, attr="obsm", xkey="X_pca", vkey="velocity_pca")``.
"""

from mfsde.tl._fitting import fit, load_model
from mfsde.tl._interactions import interactions
from mfsde.tl._predict import predict
from mfsde.tl._velocity import velocity

__all__ = ["fit", "load_model", "velocity", "interactions", "predict"]
