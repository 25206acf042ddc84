"""`python -m bench e2e ...`: the same command as `finpulse bench e2e ...`."""

from bench.cli import app

app(prog_name="finpulse bench")
