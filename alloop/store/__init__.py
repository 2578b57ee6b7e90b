"""The Zarr campaign store: frames, labels, checkpoints, replica states; crash-safe commits."""
