"""One wrk run's output (the file named on the command line, `wrk --latency`) as the line
"req/s p99_ms[ errors[...]][ non2xx=N]" the head-to-head scripts collect."""
import re
import sys

t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s*([\d.]+)", t)
p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
errs = re.search(r"Socket errors: (.*)", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}
r = float(rps.group(1)) if rps else 0.0
p = float(p99.group(1)) * ms[p99.group(2)] if p99 else float("nan")
note = ""
if errs:
    note += " errors[" + errs.group(1).strip() + "]"
if non2xx:
    note += " non2xx=" + non2xx.group(1)
print(f"{r:.0f} {p:.2f}{note}")
