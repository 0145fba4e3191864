"""Book tooling: run the notebooks in place (papermill) and check the built HTML."""
