"""The replay runtime: each thread's event loop, passes and their commits, the sticky cache,
the claim loop and activity execution. Sits between ``memflow.workflow`` and ``memflow.store``."""
