"""The book: notebook presets, the notebooks' plotting style and tables, and the tools that run
the notebooks and check the built HTML. Imports every layer below it."""
