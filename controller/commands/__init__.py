"""CLI command groups too large for `controller.cli`, each registered there by name."""
