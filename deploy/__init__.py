"""Commands around a stack: the preflight and `make verify` (verify), the identity check
(permissions), `make recover` (recover), the review environments (review), and `make outputs`
(outputs). Never imports `runs`."""
