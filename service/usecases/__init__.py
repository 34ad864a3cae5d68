"""The use cases and the ports they need: they reach storage, the model, the clock and the
policy file only through the protocols of `ports.py`."""
