"""Coverage-guided fuzz targets for every function that reads what a peer sent (see README.md)."""
