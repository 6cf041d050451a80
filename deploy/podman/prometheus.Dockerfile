# Local stand-in for the upstream Prometheus image, for machines that reach no container
# registry: deploy/podman/images.py builds it and tags it with the exact name compose.yaml pins
# (docker.io/prom/prometheus:v<version>), after checking that the Prometheus in it is that
# <version>. Debian bookworm's `prometheus` package, the release `./task apt` installs for the
# dev stack (whose promtool tests the alert rules): the whole package, with apt-get from
# deb.debian.org, not the host's binary alone, because Debian's build reads its web UI
# (templates, scripts of other packages) from /usr/share/prometheus/web; and the image does not
# depend on what the host has installed. Bookworm keeps that one upstream release, with
# Debian's fixes, for its whole life, so the pinned tag holds.
#
# Laid out like the upstream image: /bin/prometheus the entrypoint (/bin is /usr/bin here),
# the same default arguments (upstream's also name its console folders; Debian's binary
# defaults to its own), /prometheus the data volume and working folder, owned by nobody
# (65534), the user it runs as; `wget` for health checks, as upstream's busybox has.
FROM docker.io/library/python:3.11-slim-bookworm

# Security updates too (the local base lists bookworm main only; the upstream one lists all).
# No service started by the package's scripts while it is installed (policy-rc.d: 101).
# Without the data folder of libjs-moment-timezone, a dependency (210 MB of time zone data in
# every format; the web UI loads moment-timezone-with-data.min.js, which holds its own).
# hadolint ignore=DL3008
RUN if ! grep -qrs bookworm-security /etc/apt/sources.list /etc/apt/sources.list.d/; then \
        echo 'deb http://deb.debian.org/debian-security bookworm-security main' \
            > /etc/apt/sources.list.d/bookworm-security.list; \
    fi \
    && echo 'path-exclude=/usr/share/javascript/moment-timezone/data/*' \
        > /etc/dpkg/dpkg.cfg.d/no-moment-timezone-data \
    && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends prometheus wget \
    && rm -f /usr/sbin/policy-rc.d \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && mkdir -p /prometheus \
    && chown nobody:nogroup /prometheus
RUN /bin/prometheus --version && test -x /usr/bin/wget \
    && test -f /usr/share/prometheus/web/static/moment-timezone/moment-timezone-with-data.min.js

USER 65534:65534
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
