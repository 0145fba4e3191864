"""Looking inside the method on a dense model: per-layer statistics, rankings and searches that
the stage notebooks plot. Imports the layers below; writes no records."""
