"""Stream stage: the Faust app that micro-batches documents through the model into ClickHouse."""
