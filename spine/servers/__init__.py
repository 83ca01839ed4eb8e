"""Server binaries the embedded stack starts, owns and stops."""
