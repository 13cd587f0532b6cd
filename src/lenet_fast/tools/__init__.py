"""Tools built on the rest: benchmarks (`bench`, `busy`, `time_to_accuracy`), one
training run as a function (`experiment`) and many (`sweep`), figures (`plot`) and the
HTML `report`."""
