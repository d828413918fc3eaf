"""Commands that run suites: `make run` (run: the command line alone) over the runner (runner), the
readiness gate (gate), Jobs from CronJobs (jobs), JUnit from logs (junit), whose a failure is
(classify), what a run ran with (provenance), replays (replay), and the rotation drill (rotate).
Never imports `deploy`."""
