"""The campaign loop and its Dask glue (the only package that imports distributed)."""
