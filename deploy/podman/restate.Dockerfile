# Local stand-in for the upstream Restate server image, for machines that reach no container
# registry: deploy/podman/images.py builds it and tags it with the exact name compose.yaml pins
# (docker.io/restatedev/restate:<version>), after checking that <version> is the release of
# the pinned npm package. The build context is that package's bin/ folder: the same binary
# the dev stack runs (statically linked). Laid out like the upstream image: the binary in
# /usr/local/bin, started from /, so its data lands in /restate-data; curl for health checks.
FROM docker.io/library/python:3.11-slim-bookworm
COPY restate-server /usr/local/bin/restate-server
RUN restate-server --version && curl --version >/dev/null
WORKDIR /
EXPOSE 5122 8080 9070 9071
ENTRYPOINT ["/usr/local/bin/restate-server"]
