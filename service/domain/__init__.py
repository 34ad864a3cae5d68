"""The pure core: values and decisions. No I/O, no clock, no third-party imports."""
