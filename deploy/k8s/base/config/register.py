"""Register one deployment of a shop service with Restate, as a step of its rollout.

Run by the service's registration Job, in the service's own image (standard library only).
It POSTs {"uri": DEPLOYMENT_URI, "force": false} to Restate's admin API. `force` is sent
explicitly because Restate's default is true, which would replace a deployment already
registered at that URI and strand the invocations pinned to it.

- Retries while the deployment's pods are starting or Restate is unreachable; the Job's
  activeDeadlineSeconds bounds the wait.
- A URI Restate already knows is answered with the deployment registered there (200),
  without asking the service again: the Job may run on every apply, and new code behind an
  old URI is never picked up. New code gets a new version, at a new URI (README).
- A 409 (the services found are incompatible with the registered revisions, e.g. a changed
  service type) is not retried: exit 2, which the Job's podFailurePolicy turns into a failed
  Job at once. Registering it anyway (`breaking`) is a decision for a person.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

CONFLICT_EXIT = 2


def main() -> int:
    admin = os.environ["RESTATE_ADMIN_URL"].rstrip("/")
    uri = os.environ["DEPLOYMENT_URI"]
    metadata = {
        "shop.dev/service": os.environ["SERVICE"],
        "shop.dev/version": os.environ["VERSION"],
    }
    body = json.dumps({"uri": uri, "force": False, "metadata": metadata}).encode()
    delay = 1.0
    while True:
        request = urllib.request.Request(
            f"{admin}/deployments",
            data=body,
            method="POST",
            headers={"content-type": "application/json", "accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                reply = json.load(response)
            services = ", ".join(s["name"] for s in reply.get("services", []))
            print(f"registered {uri} as {reply['id']}: {services}", flush=True)
            return 0
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            if e.code == 409:
                print(f"Restate refused {uri} (409, not retried): {detail}", file=sys.stderr)
                return CONFLICT_EXIT
            problem = f"HTTP {e.code}: {detail}"
        except (urllib.error.URLError, OSError) as e:
            problem = repr(e)
        print(f"{uri} not registered yet ({problem}); retrying in {delay:.0f}s", flush=True)
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


if __name__ == "__main__":
    sys.exit(main())
