"""skmetric's private compute layer: array checks, the distance engine, backends."""
