"""What the shop services share: models, Restate names, call helpers, settings."""
