"""Models: loaders (embedded offline models, tiny test models, the hub), architecture adapters,
physical surgery of heads and channels, the pruned model classes, saving and loading, and the
dtype to run in. Imports `slimllm.util` and `slimllm.data.sources`."""
