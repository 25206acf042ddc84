"""Alert stage: event-time spike detection over stored buckets, signed webhook delivery."""
