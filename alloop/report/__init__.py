"""Status tables and plots of a campaign store."""
