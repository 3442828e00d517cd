"""Multi-source track fusion, shaped like Stone Soup: predictor, updater, hypothesiser, associator,
initiator and deleter as swappable parts; time is passed in and nothing here does I/O."""
