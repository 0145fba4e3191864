"""The experiment record: model recipes, the results store, the runner of each record kind,
pruning-cost and notebook studies, and tables built from records. The only layer that rebuilds
models from recipes and writes records; imports every layer below it."""
