"""Scale: the farm's jobs on Dask distributed -- a board is a worker resource, one job per board."""
