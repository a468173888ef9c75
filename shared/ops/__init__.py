"""What operators see: the deployment's counters, the worker registry, and the machine's GPUs."""
