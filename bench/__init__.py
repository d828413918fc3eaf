"""The benchmarks (`make bench`, `make bench-real`), run as `python -m bench.<script>`: the program under
mocks against its floor (evaluate), the real engine against the plain-script way (real), a traced
`up`'s parts (trace), the synthetic catalogs both use (synthetic), and the figures' record (record).
Outside the product: nothing of the product imports them."""
