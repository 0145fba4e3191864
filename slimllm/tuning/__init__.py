"""Recovery fine-tuning with LoRA through peft: a pruned model in, a tuned model out.
Imports `util`, `data` and `models`."""
