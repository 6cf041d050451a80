"""The services' wire contracts: one module per service, owned by its team (what its handlers
take and answer), and `common` for what several are made of. contracts/<Service>.json at the
repository's root records each one's shape; `./task contracts` checks the code against it."""
