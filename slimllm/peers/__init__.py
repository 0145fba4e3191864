"""The baselines of Table 1 in SlimLLM's harness (each a score and an allocation rule) and the
registry of every pruning method by name. Imports the layers below, `method` included."""
