"""finpulse: the command line and the composition roots that wire each process."""
