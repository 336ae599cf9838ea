"""Course-staff checks of a lab's graders: `labgrade audit` (how many plausible mistakes
the graders catch: known-wrong overlays and mutants of the solution, labgrade.audit.run)
and `labgrade calibrate` (thresholds for this host from the reference solution,
labgrade.audit.calibrate)."""
