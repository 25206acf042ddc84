"""Ingest stage: sources -> validated Documents -> Kafka `finpulse.docs.raw`."""
