"""Classification tasks' evaluation: metrics of class probabilities, calibration, thresholds, 2-D projections."""
