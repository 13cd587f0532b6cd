"""Tools built on the rest: the benchmarks (`bench`: throughput beside the peers, time
to accuracy, the busy-core run), one training run as a function (`experiment`) and many
(`sweep`), figures (`plot`) and the HTML `report`."""
