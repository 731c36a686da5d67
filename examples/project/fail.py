"""A demo script that fails the way real jobs do: some output, a traceback on stderr, exit 1."""

import time

print("loading data", flush=True)
time.sleep(0.3)
raise SystemExit("ValueError: column 'churned' is missing from the input table")
